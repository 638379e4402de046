"""Steps: a fact check plus the fix. `check` returns the commands that close the gap, [] when the host matches.

The same call is the plan (dry run) and the apply: nothing here runs anything.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from roles.engine.command import Command, FileWrite, sha256_hex
from roles.engine.context import HostContext
from roles.engine.errors import HostCheckFailed
from roles.engine.facts import Fact, FactValues, FileInfo, PackagesInstalled, ServiceState

q = shlex.quote


class Step(ABC):
    name: str  # "Component | Action"
    notifies: tuple[str, ...] = ()

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return ()

    @abstractmethod
    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]: ...

    def warnings(self, ctx: HostContext, facts: FactValues) -> list[str]:
        """Things the user should know that no command can fix (reported, not failed)."""
        return []


@dataclass(frozen=True)
class Handler:
    """Commands run once at the end of a phase on a host when a step that notifies it changed something."""

    name: str
    commands: Callable[[HostContext, FactValues], list[Command]]


def _was_running(unit: str, facts: FactValues) -> bool:
    """A unit this phase starts (it was not active) comes up with the new config: no restart on top of that."""
    key = ServiceState(unit).key
    return key not in facts or facts.get(ServiceState(unit)).active == "active"


def restart(unit: str) -> Handler:
    return Handler(
        f"restart {unit}",
        lambda ctx, facts: [Command(f"systemctl restart {q(unit)}")] if _was_running(unit, facts) else [],
    )


def reload(unit: str, check: str | None = None) -> Handler:
    """Reload `unit` if it was already running; `check` (e.g. `nginx -t -q`) must pass first."""
    script = f"systemctl reload-or-restart {q(unit)}"
    script = f"{check} && {script}" if check else script
    return Handler(f"reload {unit}", lambda ctx, facts: [Command(script)] if _was_running(unit, facts) else [])


Content = bytes | str | Callable[[HostContext], bytes | str]


@dataclass
class FileStep(Step):
    """A file with this content, mode and owner. Compared by sha256 first: an equal file is never uploaded."""

    path: str
    content: Content
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False
    validate: str | None = None
    notifies: tuple[str, ...] = ()
    daemon_reload: bool = False  # a systemd unit or drop-in: reload systemd right after writing it
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"file | {self.path}"

    def render(self, ctx: HostContext) -> bytes:
        value = self.content(ctx) if callable(self.content) else self.content
        return value.encode() if isinstance(value, str) else value

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileInfo(self.path),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        data = self.render(ctx)
        state = facts.get(FileInfo(self.path))
        if state is not None and state.sha256 == sha256_hex(data):
            if (state.mode, state.owner, state.group) == (self.mode, self.owner, self.group):
                return []
            return [
                Command(f"chown {q(self.owner)}:{q(self.group)} {q(self.path)} && chmod {self.mode:04o} {q(self.path)}")
            ]
        write = FileWrite(self.path, data, self.mode, self.owner, self.group, self.secret, self.validate).to_command()
        return [write, Command("systemctl daemon-reload")] if self.daemon_reload else [write]


@dataclass
class ServiceStep(Step):
    """A systemd unit enabled and/or running."""

    unit: str
    running: bool = True
    enabled: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"service | {self.unit}"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (ServiceState(self.unit),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        state = facts.get(ServiceState(self.unit))
        out = []
        if self.enabled and state.enabled not in ("enabled", "static", "alias", "indirect", "generated"):
            # the unit file exists: enabling needs no daemon reload (a reload costs every host ~0.1 s of CPU)
            out.append(Command(f"systemctl enable --no-reload {q(self.unit)}"))
        if self.running and state.active != "active":
            out.append(Command(f"systemctl start {q(self.unit)}"))
        return out


@dataclass
class PackagesStep(Step):
    """Debian packages installed (apt-get only for those missing)."""

    packages: tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or "packages | " + " ".join(self.packages)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (PackagesInstalled(self.packages),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        missing = [p for p in self.packages if p not in facts.get(PackagesInstalled(self.packages))]
        if not missing:
            return []
        return [
            Command(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends " + shlex.join(missing)
            )
        ]


@dataclass
class CommandStep(Step):
    """Run `run` unless `satisfied(facts)` says the host already matches."""

    name: str
    needs: tuple[Fact[Any], ...]
    satisfied: Callable[[HostContext, FactValues], bool]
    run: Callable[[HostContext, FactValues], list[Command]]
    notifies: tuple[str, ...] = field(default=())

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return self.needs

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        return [] if self.satisfied(ctx, facts) else self.run(ctx, facts)


@dataclass
class HostCheck(Step):
    """A live check: raises HostCheckFailed with `problem(ctx, facts)` when it returns a message. Changes nothing."""

    name: str
    needs: tuple[Fact[Any], ...]
    problem: Callable[[HostContext, FactValues], str | None]
    hint: str | None = None

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return self.needs

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        message = self.problem(ctx, facts)
        if message:
            raise HostCheckFailed(ctx.host.name, message, hint=self.hint)
        return []
