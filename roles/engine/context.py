"""What a step sees (HostContext) and what a run is told (RunContext). Passed explicitly: no hidden globals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from inventory.model import Cluster, Host
from roles.state import StateDir

if TYPE_CHECKING:
    from roles.engine.events import Event


@dataclass(frozen=True)
class HostContext:
    cluster: Cluster
    host: Host
    state_dir: Path

    @property
    def state(self) -> StateDir:
        return StateDir(self.state_dir)

    @property
    def masters(self) -> list[Host]:
        return self.cluster.masters


def _drop(event: Event) -> None:
    return None


@dataclass(frozen=True)
class RunContext:
    cluster: Cluster
    state_dir: Path
    dry_run: bool = False
    concurrency: int = 32
    only: frozenset[str] | None = None  # phase titles (or their first word, case-insensitive)
    host_names: frozenset[str] | None = None
    trust_on_first_use: bool = False
    events: Callable[[Event], None] = field(default=_drop)

    def host_context(self, host: Host) -> HostContext:
        return HostContext(self.cluster, host, self.state_dir)

    def selected(self, hosts: list[Host]) -> list[Host]:
        return [h for h in hosts if self.host_names is None or h.name in self.host_names]
