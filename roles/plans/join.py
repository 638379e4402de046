"""The join: new hosts of the inventory become nodes of the running cluster, and nothing else changes.

Read it top to bottom: that is what `keelson join HOST…` does. The phases are the apply's own (`roles/plans/apply.py`)
that run on a worker, each narrowed to the joining hosts — so a joined host ends exactly as `keelson apply` would
leave it, and a later apply has nothing to do on it — plus the two cluster-side steps a worker's join needs, both
run from a master without touching it: a join token with time left, and the approval of the new kubelets' serving
certificates (then the new nodes and the masters Ready, and CoreDNS up). Both see only the masters and the joining
hosts: another worker being down does not stop a join. No phase of another host runs, so nothing is written or
restarted anywhere else; the other hosts' `/etc/hosts` block learns the new names on their next `keelson apply`
(a file, no restart).

Refused before anything is connected to: a name not in the inventory, a master (`JoinRefused`: a master's join
changes etcd's membership and every load balancer; use `keelson apply` on a new cluster), a Windows worker (its
phases are Windows-only: `keelson apply --hosts NAME`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from inventory.errors import KeelsonError
from inventory.model import OS, Cluster, Host
from roles.control_plane.cluster_ops import JoinToken
from roles.control_plane.nodes import ServingCertsAndReady
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.phase import AnyPhase, HostOutcome, Phase, Plan
from roles.engine.transport import ConnectionPool
from roles.plans import apply


class JoinRefused(KeelsonError):
    """The hosts named cannot be joined this way (exit 2: a usage error, nothing was touched)."""

    exit_code = 2


def masters_and(cluster: Cluster, names: Collection[str]) -> Cluster:
    """The cluster as the join's cluster-side phases see it: the masters and the joining hosts only, so that they
    never ask another worker anything (one may be down: it is not the join's business)."""
    return cluster.model_copy(update={"hosts": [h for h in cluster.hosts if h in cluster.masters or h.name in names]})


def _seeing(rc: RunContext, names: Collection[str]) -> RunContext:
    """`rc` with the cluster of `masters_and`, keeping the node IPs the run discovered."""
    narrowed = dataclasses.replace(rc, cluster=masters_and(rc.cluster, names))
    object.__setattr__(narrowed, "nodes", rc.nodes)
    return narrowed


class JoinTokenFor(JoinToken):
    """The apply's join-token phase, listed under the joining hosts (it runs on a master; the token is the only
    thing it may change there, and only when the stored one has too little time left)."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = frozenset(names)

    def hosts(self, cluster: Cluster) -> list[Host]:
        return [h for h in cluster.hosts if h.name in self.names]

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return super().dry_run(_seeing(rc, self.names), pool)

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        return super().run(_seeing(rc, self.names), pool)


class ReadyFor(ServingCertsAndReady):
    """The apply's last node phase, listed under the joining hosts: approve their serving certificates (each checked
    against the inventory), then wait until every node is Ready."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = frozenset(names)

    def hosts(self, cluster: Cluster) -> list[Host]:
        return [h for h in super().hosts(cluster) if h.name in self.names]

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return super().dry_run(_seeing(rc, self.names), pool)

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        """Approve the joining kubelets' serving certificates, wait until they and the masters are Ready."""
        return super().run(_seeing(rc, self.names), pool)


def joining(cluster: Cluster, names: Sequence[str]) -> list[Host]:
    """The inventory's hosts named `names`, checked to be joinable Linux workers. Raises JoinRefused."""
    if not names:
        raise JoinRefused("name at least one host to join", hint="keelson join -i INVENTORY w3 [w4 …]")
    by_name = {h.name: h for h in cluster.hosts}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise JoinRefused(
            f"not in the inventory: {', '.join(unknown)}",
            hint="add the host to the inventory first (name, address, roles: [worker]), then join it",
        )
    hosts = [by_name[n] for n in dict.fromkeys(names)]
    masters = [h.name for h in hosts if h in cluster.masters]
    if masters:
        raise JoinRefused(
            f"{', '.join(masters)}: joining a master to a running cluster is not supported yet (it needs an etcd "
            "member add and every load balancer's backends updated)",
            hint="join workers only; masters come from `keelson apply` of the whole inventory",
        )
    not_nodes = [h.name for h in hosts if h not in cluster.workers]
    if not_nodes:
        raise JoinRefused(f"{', '.join(not_nodes)}: not a worker (only hosts with role worker join as nodes)")
    windows = [h.name for h in hosts if h.os is OS.WINDOWS]
    if windows:
        raise JoinRefused(
            f"{', '.join(windows)}: Windows workers join through their own phases",
            hint=f"keelson apply -i INVENTORY --hosts {','.join(windows)}",
        )
    return hosts


def _narrowed(phase: Phase, names: frozenset[str]) -> Phase:
    selector = phase.hosts
    return dataclasses.replace(phase, hosts=lambda c: [h for h in selector(c) if h.name in names])


def phases(cluster: Cluster, names: Sequence[str]) -> list[AnyPhase]:
    chosen = frozenset(h.name for h in joining(cluster, names))
    out: list[AnyPhase] = []
    for phase in apply.phases(cluster):
        if isinstance(phase, JoinToken):
            out.append(JoinTokenFor(chosen))
        elif isinstance(phase, ServingCertsAndReady):
            out.append(ReadyFor(chosen))
        elif isinstance(phase, Phase) and any(h.name in chosen for h in phase.hosts(cluster)):
            out.append(_narrowed(phase, chosen))
        # the other custom phases (PKI issuing, etcd start, kubeadm init, manifests) are the cluster's, not a node's
    for phase in out:
        phase.role = phase.role or "join"
    return out


def plan(cluster: Cluster, names: Sequence[str]) -> Plan:
    return Plan("join", phases(cluster, names))
