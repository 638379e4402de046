"""The little the backup operations need from a host connection, and running one action on many hosts at once.

`HostShell` is satisfied by an adapter over the engine's `Transport` (`shells_from_pool`); procedures here are
written against it so they read as plain sequences of shell steps and can be exercised with a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from inventory.errors import KeelsonError

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


class HostShell(Protocol):
    """One host: run a bash script as root, upload a file."""

    @property
    def name(self) -> str: ...

    def sh(self, script: str, *, timeout: float = 120.0) -> Outcome: ...

    def upload(self, local: Path, remote: str, *, mode: int = 0o600) -> None: ...


class RemoteStepError(KeelsonError):
    """A step failed on a host; the message names the host and the step."""


def must(shell: HostShell, script: str, what: str, *, timeout: float = 120.0) -> str:
    out = shell.sh(script, timeout=timeout)
    if not out.ok:
        detail = (out.stderr or out.stdout).strip()[-400:]
        raise RemoteStepError(f"{shell.name}: {what} failed (exit {out.rc}): {detail}")
    return out.stdout


def on_all(shells: Sequence[HostShell], action: Callable[[HostShell], T]) -> dict[str, T]:
    """Run `action` on every host in parallel; every host finishes before the first error is raised."""
    if not shells:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(shells))) as pool:
        futures = {s.name: pool.submit(action, s) for s in shells}
    errors = [f.exception() for f in futures.values() if f.exception() is not None]
    if errors:
        if len(errors) == 1:
            raise errors[0]  # type: ignore[misc]
        raise RemoteStepError("; ".join(str(e) for e in errors)) from errors[0]
    return {name: f.result() for name, f in futures.items()}
