"""The join: new hosts of the inventory become nodes — workers, or masters with their etcd members — of the running
cluster, and nothing else changes but what must: for masters, etcd's membership and the load balancers' backends.

Read it top to bottom: that is what `keelson join HOST…` does. The phases are the apply's own (`roles/plans/apply.py`)
that run on the joining hosts, each narrowed to them — so a joined host ends exactly as `keelson apply` would leave it,
and a later apply has nothing to do on it — plus the cluster-side steps a join needs, run from a master without
touching it: a join token with time left, and the approval of the new kubelets' serving certificates (then the new
nodes and the masters Ready, and CoreDNS up). Both see only the masters and the joining hosts: another worker being
down does not stop a join.

A master (and its etcd member, `etcd.placement: masters`) joins the same way, with three differences:
- the PKI's operator-side phases issue its etcd certificates (the others' are kept byte for byte);
- instead of the apply's "etcd | Start members", `AddMembers` (`roles/etcd/membership.py`): `etcdctl member add` from
  a healthy member, then the member starts with `initial-cluster-state: existing`, one at a time behind the health
  gate (its config is written there, not by "etcd | Configure members": only the running cluster knows its
  `initial-cluster`);
- after the control-plane join (serial, each master gated on its apiserver and the API through the VIP), the load
  balancer: first every other LB host's backends and VRRP peers (a reload of haproxy/nginx and keepalived, never a
  restart: `roles/loadbalancer/phases.py`, `others_phases`), then the joining hosts' own — in that order, so that a
  joining keepalived is a peer of the holder before it starts and never takes the VIP beside it.
No other phase runs on another host: their `/etc/hosts`, kubeadm configuration files (certSANs, etcd endpoints) and
backup agent config learn the new masters on their next `keelson apply` (files; nothing restarts). The apiservers keep
the etcd endpoints kubeadm stored at `kubeadm init` (kube-system/kubeadm-config), a joining master's too: see README
"Day-2".

Refused before anything is connected to: a name not in the inventory, a host that is neither a worker, a master nor
an etcd member (a dedicated load balancer: `keelson apply`), a Windows worker (its phases are Windows-only:
`keelson apply --hosts NAME`). Refused at the etcd phase, before any member is added: a running cluster that is not
healthy, or whose members are not the inventory's without the joining hosts (`roles/etcd/members.py`).
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
from roles.etcd.bootstrap import StartMembers
from roles.etcd.membership import AddMembers
from roles.etcd.steps import EtcdConfigStep
from roles.loadbalancer.phases import others_phases
from roles.pki.issue import IssueEtcdCertificates, IssueKubernetesPKI
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
    """The inventory's hosts named `names`, checked to be joinable: Linux workers, masters, etcd members. Raises
    JoinRefused."""
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
    joinable = [*cluster.workers, *cluster.masters, *cluster.etcd_members]
    not_nodes = [h.name for h in hosts if h not in joinable]
    if not_nodes:
        raise JoinRefused(
            f"{', '.join(not_nodes)}: neither a worker, a master nor an etcd member (a load-balancer host is set up "
            "by the apply)",
            hint=f"keelson apply -i INVENTORY --hosts {','.join(not_nodes)}",
        )
    windows = [h.name for h in hosts if h.os is OS.WINDOWS]
    if windows:
        raise JoinRefused(
            f"{', '.join(windows)}: Windows workers join through their own phases",
            hint=f"keelson apply -i INVENTORY --hosts {','.join(windows)}",
        )
    return hosts


def _narrowed(phase: Phase, names: frozenset[str]) -> Phase:
    """`phase` on the joining hosts only; a joining etcd member's config is left to `AddMembers`."""
    selector = phase.hosts
    steps = [s for s in phase.steps if not isinstance(s, EtcdConfigStep)]
    return dataclasses.replace(phase, hosts=lambda c: [h for h in selector(c) if h.name in names], steps=steps)


def phases(cluster: Cluster, names: Sequence[str]) -> list[AnyPhase]:
    chosen = frozenset(h.name for h in joining(cluster, names))
    masters = chosen & {h.name for h in cluster.masters}
    members = chosen & {h.name for h in cluster.etcd_members}
    out: list[AnyPhase] = []
    balancers: list[AnyPhase] = []  # after the control-plane join: the new apiservers answer before they are backends
    for phase in apply.phases(cluster):
        if isinstance(phase, JoinToken):
            out.append(JoinTokenFor(chosen))
        elif isinstance(phase, ServingCertsAndReady):
            out += balancers
            balancers = []
            out.append(ReadyFor(chosen))
        elif isinstance(phase, StartMembers):
            out += [AddMembers(members)] if members else []
        elif isinstance(phase, IssueEtcdCertificates | IssueKubernetesPKI):
            out += [phase] if masters or members else []  # issues the joining hosts' own; the rest stays as it is
        elif phase.role == "loadbalancer" and isinstance(phase, Phase):
            if masters or any(h.name in chosen for h in phase.hosts(cluster)):
                balancers = [*others_phases(cluster, chosen), _narrowed(phase, chosen)]
        elif isinstance(phase, Phase) and any(h.name in chosen for h in phase.hosts(cluster)):
            out.append(_narrowed(phase, chosen))
        # the other custom phases (kubeadm init, manifests) are the cluster's, not a node's
    out += balancers
    for phase in out:
        phase.role = phase.role or "join"
    return out


def plan(cluster: Cluster, names: Sequence[str]) -> Plan:
    return Plan("join", phases(cluster, names))
