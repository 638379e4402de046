"""Phases: a title, the hosts it runs on, and either steps (run by the generic runner) or its own orchestration.

A plan is an explicit ordered list of phases (k0sctl's apply), read top to bottom in `roles/plan.py`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from inventory.model import Cluster, Host
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.step import Handler, Step

if TYPE_CHECKING:
    from roles.engine.transport import ConnectionPool, Transport

HostSelector = Callable[[Cluster], list[Host]]
Gate = Callable[[HostContext, "Transport"], None]


def all_hosts(cluster: Cluster) -> list[Host]:
    return list(cluster.hosts)


def linux_hosts(cluster: Cluster) -> list[Host]:
    return [h for h in cluster.hosts if h.os.value == "linux"]


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@dataclass
class Phase:
    """Per-host steps. `serial` runs one host at a time; `gate` (a health check with a deadline) runs after each
    host's commands and must pass before the next host starts (serial) or before the phase ends."""

    title: str
    hosts: HostSelector
    steps: Sequence[Step]
    serial: bool = False
    gate: Gate | None = None
    handlers: Sequence[Handler] = field(default=())
    always: bool = False  # runs even when --only names other phases (live validation)

    @property
    def slug(self) -> str:
        return slug(self.title)


@dataclass(frozen=True)
class HostOutcome:
    changed: bool = False
    commands: tuple[Command, ...] = ()
    error: str | None = None


class CustomPhase(ABC):
    """Orchestration that is not per-host steps (a cluster bootstrap, a restore). k0sctl's Title/DryRun/Run."""

    title: str = ""

    @property
    def slug(self) -> str:
        return slug(self.title)

    @abstractmethod
    def hosts(self, cluster: Cluster) -> list[Host]: ...

    @abstractmethod
    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        """The commands each host would run (facts may be read through the pool; nothing is changed)."""

    @abstractmethod
    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]: ...


AnyPhase = Phase | CustomPhase
