"""What a step sees (HostContext) and what a run is told (RunContext). Passed explicitly: no hidden globals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from inventory.model import Cluster, Host
from roles.engine.nodes import NodeIPs
from roles.state import StateDir

if TYPE_CHECKING:
    from roles.engine.events import Event


@dataclass(frozen=True)
class HostContext:
    cluster: Cluster
    host: Host
    state_dir: Path
    run_nodes: InitVar[NodeIPs | None] = None
    nodes: NodeIPs = field(init=False, repr=False, compare=False)  # the run's node IPs, else the inventory's view

    def __post_init__(self, run_nodes: NodeIPs | None) -> None:
        object.__setattr__(self, "nodes", NodeIPs.of(self.cluster, run_nodes))

    @property
    def state(self) -> StateDir:
        return StateDir(self.state_dir)


def _drop(event: Event) -> None:
    return None


@dataclass(frozen=True)
class RunContext:
    cluster: Cluster
    state_dir: Path
    dry_run: bool = False
    concurrency: int = 32
    only: frozenset[str] | None = None  # role names, phase slugs or titles (roles.engine.phase.matches)
    host_names: frozenset[str] | None = None
    trust_on_first_use: bool = False
    events: Callable[[Event], None] = field(default=_drop)
    nodes: NodeIPs = field(init=False, repr=False, compare=False)  # the inventory's node IPs + those discovered

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", NodeIPs(self.cluster))

    def host_context(self, host: Host) -> HostContext:
        return HostContext(self.cluster, host, self.state_dir, self.nodes)

    def selected(self, hosts: list[Host]) -> list[Host]:
        return [h for h in hosts if self.host_names is None or h.name in self.host_names]
