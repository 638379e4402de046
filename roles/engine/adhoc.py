"""Ad-hoc commands: one command of the user's on many hosts at once, through the engine's connections.

`keelson exec` is the `ansible -m shell` people reach for, on keelson's transport: the same strict host keys, sudo,
bastions and `--trust-on-first-use` as a plan. It is not a plan: nothing is planned or converged, every selected host
gets the command even when another is down, and each host's own output and exit code is the result.

The command is the user's argv, joined with `shlex.join` into the one `bash -c` argument the transport sends (never
stdin), wrapped in coreutils' `timeout` so a command that outlives `--timeout` is stopped on the host too.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from inventory.errors import KeelsonError
from inventory.model import OS, Cluster, Host
from roles.engine import events as ev
from roles.engine.errors import HostUnreachable
from roles.engine.parallel import on_hosts

if TYPE_CHECKING:
    from roles.engine.transport import Transport


class Connections(Protocol):
    """What exec needs of the engine's ConnectionPool (tests give it a stand-in)."""

    def get(self, host: Host) -> Transport: ...
    def drop(self, host: Host) -> None: ...
    def close(self) -> None: ...


TIMEOUT_RC = 124  # coreutils `timeout`: the command ran out of time (it was sent SIGTERM)
KILLED_RC = 137  # … and 128 + SIGKILL when it ignored the SIGTERM for KILL_AFTER_S
KILL_AFTER_S = 5
GRACE_S = 15  # the local deadline is the remote one plus this: the host's own `timeout` should answer first
ROLES = {"master": "masters", "worker": "workers", "etcd": "etcd_members", "lb": "lb_hosts"}
PHASE = "exec"


class UsageError(KeelsonError):
    """The command line asks for something impossible (no such host or role): exit 2, like any usage error."""

    exit_code = 2


class Status(StrEnum):
    OK = "ok"  # exit 0
    FAILED = "failed"  # ran, exit non-zero
    TIMEOUT = "timeout"  # ran out of --timeout (stopped on the host)
    UNREACHABLE = "unreachable"  # never ran: no connection (down, host key refused, authentication)


@dataclass(frozen=True)
class HostResult:
    host: str
    status: Status
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class ExecReport:
    command: str
    results: dict[str, HostResult] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.status is Status.OK for r in self.results.values())

    def by_status(self, status: Status) -> list[str]:
        return [name for name, r in self.results.items() if r.status is status]

    def summary(self) -> str:
        """`3 hosts: 2 ok, 1 failed (m2 exit 3), 0 timed out, 1 unreachable (w1) in 0.42 s`."""
        count = len(self.results)
        parts = [f"{count} host{'s' if count != 1 else ''}: {len(self.by_status(Status.OK))} ok"]
        failed = [f"{n} exit {self.results[n].rc}" for n in self.by_status(Status.FAILED)]
        parts.append(f"{len(failed)} failed" + (f" ({', '.join(failed)})" if failed else ""))
        for status, word in ((Status.TIMEOUT, "timed out"), (Status.UNREACHABLE, "unreachable")):
            names = self.by_status(status)
            parts.append(f"{len(names)} {word}" + (f" ({', '.join(names)})" if names else ""))
        return ", ".join(parts) + f" in {self.seconds:.2f} s"


# -- events (the --json stream): one per host as it finishes, then the summary ---------------------------------


@dataclass(frozen=True)
class ExecStarted(ev.Event):
    command: str
    hosts: list[str]
    timeout_s: float


@dataclass(frozen=True)
class HostOutput(ev.Event):
    host: str
    status: str
    rc: int | None
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class ExecFinished(ev.Event):
    ok: bool
    summary: str
    hosts: dict[str, dict[str, Any]]
    seconds: float


# -- what to run where (pure) ----------------------------------------------------------------------------------


def remote_command(argv: Sequence[str]) -> str:
    """The user's argv as one shell command line: each word stays one word (`shlex.join`)."""
    if not argv or not any(a.strip() for a in argv):
        raise UsageError("no command given", hint="keelson exec -i INV -- COMMAND [ARG…], e.g. -- uptime")
    return shlex.join(argv)


def host_script(command: str, timeout_s: float, os: OS = OS.LINUX) -> str:
    """What the transport runs on a host: the command under coreutils `timeout` (POSIX hosts; PowerShell hosts get
    the command itself and only the local deadline)."""
    if os is OS.WINDOWS:
        return command
    return f"timeout --kill-after={KILL_AFTER_S} {timeout_s:g} {command}"


def select_hosts(cluster: Cluster, hosts: str | None = None, role: str | None = None) -> list[Host]:
    """`--hosts a,b` (inventory names, in the given order) or `--role master|worker|etcd|lb` (the cluster's view of
    that role: etcd members are the masters when etcd runs there, lb hosts the masters when there is no dedicated
    one), or every host. Unknown names, both options at once, or an empty selection are errors."""
    if hosts is not None and role is not None:
        raise UsageError("--hosts and --role both given", hint="choose hosts by name or by role, not both")
    if hosts is not None:
        names = [n.strip() for n in hosts.split(",") if n.strip()]
        if not names:
            raise UsageError("--hosts names no host", hint="--hosts m1,m2")
        known = {h.name for h in cluster.hosts}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(
                f"--hosts names unknown hosts: {', '.join(unknown)}", hint="hosts: " + ", ".join(sorted(known))
            )
        return [cluster.host(n) for n in dict.fromkeys(names)]
    if role is not None:
        key = role.strip().lower().removesuffix("s")
        if key not in ROLES:
            raise UsageError(f"--role {role}: no such role", hint="roles: " + ", ".join(ROLES))
        chosen: list[Host] = getattr(cluster, ROLES[key])
        if not chosen:
            raise UsageError(f"--role {role}: no host of the inventory has it")
        return list(chosen)
    return list(cluster.hosts)


def classify(rc: int, stdout: str, stderr: str, seconds: float, host: str) -> HostResult:
    """A finished command's result: exit 0 ok, 124/137 from `timeout` a time-out, anything else a failure."""
    if rc == 0:
        return HostResult(host, Status.OK, rc, stdout, stderr, seconds)
    if rc in (TIMEOUT_RC, KILLED_RC):
        return HostResult(host, Status.TIMEOUT, rc, stdout, stderr, seconds, error="ran out of time on the host")
    return HostResult(host, Status.FAILED, rc, stdout, stderr, seconds)


# -- running ---------------------------------------------------------------------------------------------------


def run_exec(
    cluster: Cluster,
    hosts: Sequence[Host],
    argv: Sequence[str],
    *,
    timeout_s: float = 60.0,
    concurrency: int = 32,
    trust_on_first_use: bool = False,
    events: Callable[[ev.Event], None] = lambda e: None,
    pool: Connections | None = None,
) -> ExecReport:
    """Run `argv` on every host in `hosts` at once; every host finishes (a host that cannot be reached is its own
    result, not the others' end). Events: exec_started, host_warning (a key trusted on first use), host_output per
    host that ran it, host_failed per host that did not, exec_finished."""
    from roles.engine.transport import ConnectionPool

    command = remote_command(argv)
    if timeout_s <= 0:
        raise UsageError(f"--timeout {timeout_s:g}: must be more than 0 seconds")
    started = time.monotonic()
    own = pool is None
    pool = pool or ConnectionPool(
        cluster,
        trust_on_first_use=trust_on_first_use,
        notice=lambda host, message: events(ev.HostWarning("Connect", host, message)),
    )
    events(ExecStarted(command, [h.name for h in hosts], timeout_s))

    def one(host: Host) -> HostResult:
        begun = time.monotonic()
        try:
            transport = pool.get(host)
        except KeelsonError as exc:
            return HostResult(host.name, Status.UNREACHABLE, error=str(exc), seconds=time.monotonic() - begun)
        try:
            result = transport.run(host_script(command, timeout_s, host.os), timeout=timeout_s + GRACE_S)
        except HostUnreachable as exc:  # the connection went away, or the host's own `timeout` did not answer
            pool.drop(host)
            spent = time.monotonic() - begun
            if isinstance(exc.__cause__, TimeoutError):
                return HostResult(host.name, Status.TIMEOUT, error=f"{host.name}: no result after {spent:.0f} s")
            return HostResult(host.name, Status.UNREACHABLE, error=str(exc), seconds=spent)
        except KeelsonError as exc:  # e.g. a Windows host refusing what it cannot run
            return HostResult(host.name, Status.FAILED, error=str(exc), seconds=time.monotonic() - begun)
        return classify(result.rc, result.stdout, result.stderr, time.monotonic() - begun, host.name)

    def reported(host: Host) -> HostResult:
        result = one(host)
        if result.rc is None:
            events(ev.HostFailed(PHASE, host.name, result.error))
        else:
            events(HostOutput(host.name, result.status.value, result.rc, result.stdout, result.stderr,
                              round(result.seconds, 3)))  # fmt: skip
        return result

    try:
        outcomes = on_hosts(hosts, reported, workers=concurrency)
    finally:
        if own:
            pool.close()
    results = {
        name: r if isinstance(r, HostResult) else HostResult(name, Status.FAILED, error=str(r))
        for name, r in outcomes.items()
    }
    report = ExecReport(command, results, time.monotonic() - started)
    events(
        ExecFinished(
            ok=report.ok,
            summary=report.summary(),
            hosts={n: {"status": r.status.value, "rc": r.rc, "error": r.error} for n, r in results.items()},
            seconds=round(report.seconds, 3),
        )
    )
    return report
