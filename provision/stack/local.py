"""A stack of this project on a local file backend, driven through the real `pulumi` CLI keelson built (the bench and
the lab tests use it; it is what the README's laptop workflow does by hand).

Everything lives in one folder: the file backend (`pulumi login file://…`), PULUMI_HOME, and a project whose
`__main__.py` runs keelson's program (provision/stack/program.py, importable wherever keelson is installed, so this
works from a wheel), with the stack's config file beside it. Secrets use the passphrase provider.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inventory.errors import KeelsonError
from provision.artifacts.pulumi_tools.build import Toolset
from provision.artifacts.pulumi_tools.environ import pulumi_env
from provision.stack.settings import PROJECT_ROOT


class PulumiFailed(KeelsonError):
    """A `pulumi` command failed: its output's tail is in the message."""


PROJECT = """name: keelson
description: keelson's Pulumi program (provision/stack/program.py), run from a local folder
runtime: python
"""
MAIN = """from keelson.codecache import install

install()  # the code of the dataclasses imported next, compiled once and kept (keelson/codecache.py)

from provision.stack.program import main

main()
"""


@dataclass
class LocalStack:
    toolset: Toolset
    folder: Path
    stack: str
    passphrase: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def project(self) -> Path:
        return self.folder / "project"

    @property
    def backend(self) -> Path:
        return self.folder / "backend"

    @property
    def config_file(self) -> Path:
        return self.project / f"Pulumi.{self.stack}.yaml"

    @property
    def state_file(self) -> Path:
        """The file backend's checkpoint of the stack (what `grep` for key material reads)."""
        return self.backend / ".pulumi" / "stacks" / "keelson" / f"{self.stack}.json"

    def env(self) -> dict[str, str]:
        env = pulumi_env(self.toolset)
        env.update(
            PULUMI_HOME=str(self.folder / "home"),
            PULUMI_CONFIG_PASSPHRASE=self.passphrase,
            PULUMI_BACKEND_URL=f"file://{self.backend}",
            PULUMI_SKIP_CONFIRMATIONS="true",
            **self.extra_env,
        )
        return env

    def run(
        self, *args: str, after: tuple[str, ...] = (), check: bool = True, timeout: float = 1800
    ) -> subprocess.CompletedProcess[str]:
        """`pulumi ARGS --non-interactive AFTER` (AFTER: what follows a `--`)."""
        argv = [str(self.toolset.pulumi), *args, "--non-interactive", *after]
        proc = subprocess.run(
            argv,
            cwd=self.project,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=interruptible(),  # only when SIGINT is ignored here (see interruptible)
        )
        if check and proc.returncode != 0:
            lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            tail = "\n".join(lines[:5] + (["…"] if len(lines) > 35 else []) + lines[-30:] if len(lines) > 35 else lines)
            raise PulumiFailed(f"`pulumi {' '.join(args)}` exited {proc.returncode}:\n{tail}")
        return proc

    def _stack_args(self) -> tuple[str, ...]:
        return ("--stack", self.stack)

    def init(self, config: dict[str, str], secrets: dict[str, str] | None = None) -> None:
        """A new stack (passphrase secrets) with `config` (`--path` keys allowed: "keelson:lab.name"); a relative
        keelson:inventory is taken from keelson's own folder (where Pulumi.yaml is in a checkout)."""
        inventory = config.get("keelson:inventory")
        if inventory is not None and not Path(inventory).is_absolute():
            config = {**config, "keelson:inventory": str(PROJECT_ROOT / inventory)}
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.backend.mkdir(exist_ok=True)
        self.project.mkdir(exist_ok=True)
        (self.project / "Pulumi.yaml").write_text(PROJECT)
        (self.project / "__main__.py").write_text(MAIN)
        self.run("stack", "init", self.stack, "--secrets-provider", "passphrase")
        for key, value in config.items():
            self.set(key, value)
        for key, value in (secrets or {}).items():
            self.set(key, value, secret=True)

    def set(self, key: str, value: str, secret: bool = False) -> None:
        self.run(
            "config", "set", *self._stack_args(), "--path", *(["--secret"] if secret else []), key, after=("--", value)
        )

    def unset(self, key: str) -> None:
        self.run("config", "rm", *self._stack_args(), "--path", key)

    def up(self) -> subprocess.CompletedProcess[str]:
        return self.run("up", *self._stack_args(), "--yes", "--skip-preview")

    def refresh(self) -> subprocess.CompletedProcess[str]:
        return self.run("refresh", *self._stack_args(), "--yes", "--skip-preview")

    def preview(self) -> dict[str, Any]:
        """`pulumi preview --json`: the steps (op, urn) and the change summary."""
        proc = self.run("preview", *self._stack_args(), "--json")
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def changes(self) -> dict[str, str]:
        """Resource name -> operation, for every step of a preview that is not `same`."""
        return {s["urn"].split("::")[-1]: s["op"] for s in self.preview().get("steps", []) if s["op"] != "same"}

    def outputs(self, show_secrets: bool = False) -> dict[str, Any]:
        flags = ("--show-secrets",) if show_secrets else ()
        proc = self.run("stack", "output", "--stack", self.stack, "--json", *flags)
        data: dict[str, Any] = json.loads(proc.stdout)
        return data

    def destroy(self) -> subprocess.CompletedProcess[str]:
        return self.run("destroy", *self._stack_args(), "--yes", "--skip-preview")

    def remove(self) -> None:
        self.run("stack", "rm", self.stack, "--yes", "--force", check=False)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interruptible() -> Callable[[], None] | None:
    """What `pulumi` needs in its child when this process ignores SIGINT (a background job of a script, `cmd &`,
    inherits SIGINT ignored, and an ignored signal stays ignored across exec): SIGINT back to its default. The CLI
    stops each plugin it started (language host, providers) with SIGINT and waits up to 5 s for it to exit before
    killing it; plugins that ignore SIGINT made every such stop wait the 5 s (one of them, the language host asked
    for the runtime's metadata, before the update starts: +5 s on every `pulumi up`). None otherwise (no preexec_fn)."""
    return _default_sigint if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else None


def passphrase() -> str:
    return os.urandom(18).hex()
