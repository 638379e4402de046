"""Which of the apply plan's phases each Pulumi resource of the cluster runs (roles/plans/apply.py is the one list).

A group is a run of consecutive phases of the plan, selected by title. A per-host group has one resource per host
(named `<cluster>-<group>-<host>`), so a change to one host touches only that host's resources; the others have one
resource for the cluster. Every phase of the apply plan belongs to exactly one group (a unit test checks it), so a
role added to the plan is never skipped silently under Pulumi.

The groups that need Kubernetes (its artifacts, the control plane) are switched on by ONE line,
`KUBERNETES_PROVEN`, once the control plane is proven in the lab.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inventory.model import Cluster, Host
    from roles.engine.phase import AnyPhase

KUBERNETES_PROVEN = True  # True adds node, control-plane, network, worker, nodes, windows-worker: the whole cluster


@dataclass(frozen=True)
class Group:
    name: str  # part of the resource names: "<cluster>-<name>" or "<cluster>-<name>-<host>"
    titles: tuple[str, ...]  # the phases it runs: titles equal to, or starting with "<title> |"
    per_host: bool = False
    kubernetes: bool = False  # needs the Kubernetes artifacts or a running control plane
    drains: bool = False  # its per-host resource's delete takes the node out of the cluster (workers)
    os: str = "linux"  # the hosts a per-host group has a resource for: this OS …
    role: str | None = None  # … and, if set, this role
    serves_api: bool = False  # once its resource is done the API answers through the VIP (the addons' provider)
    for_addons: bool = True  # the addons' objects wait for its resources (nodes Ready, the pod network, …)

    def owns(self, phase: AnyPhase) -> bool:
        return any(phase.title == t or phase.title.startswith(f"{t} |") for t in self.titles)

    def phases(self, plan: Sequence[AnyPhase]) -> list[AnyPhase]:
        return [p for p in plan if self.owns(p)]

    def hosts(self, cluster: Cluster, plan: Sequence[AnyPhase]) -> list[Host]:
        """Every host one of its phases runs on, in inventory order."""
        names = {h.name for p in self.phases(plan) for h in p.hosts(cluster)}
        return [h for h in cluster.hosts if h.name in names]


GROUPS: tuple[Group, ...] = (
    Group("host", ("Prepare hosts", "Container runtime"), per_host=True, drains=True),
    Group("node", ("Kubernetes node",), per_host=True, kubernetes=True),
    Group("pki", ("PKI",)),
    Group("etcd", ("etcd",)),
    Group("lb", ("Load balancer",)),
    Group("control-plane", ("Control plane",), kubernetes=True, serves_api=True),
    Group("network", ("Cluster network",), kubernetes=True),
    Group("worker", ("Workers",), per_host=True, kubernetes=True, drains=True, role="worker"),
    Group("nodes", ("Nodes",), kubernetes=True),
    Group("windows-worker", ("Windows workers",), per_host=True, kubernetes=True, drains=True, os="windows"),
    Group("backups", ("backups",), for_addons=False),  # the etcd snapshot agent: no addon needs it
)
ALWAYS = ("Validate hosts",)  # the live validation: runs with every group (the runner's `always` phases)


def enabled(groups: Sequence[Group] = GROUPS, kubernetes: bool = KUBERNETES_PROVEN) -> list[Group]:
    return [g for g in groups if kubernetes or not g.kubernetes]


def by_name(name: str) -> Group:
    for group in GROUPS:
        if group.name == name:
            return group
    raise KeyError(f"no phase group {name!r}")
