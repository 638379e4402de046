"""The removal of workers and masters: the cluster forgets them, then each host that still answers is reset.

Read it top to bottom: that is what `keelson remove HOST…` does.
0. Refused before anything is connected to (`removing`): a name not in the inventory; every master; and, for etcd
   members (the masters with `etcd.placement: masters`), a count the cluster would not be safe at
   (`roles/etcd/members.py`, `count_problem`): below a majority of the members there are now (3 → 1, 5 → 2) or an
   even count (3 → 2, 5 → 4) — unless `--force` — and never every member;
1. `etcd | The members that stay are healthy` — when etcd members leave; else refused, nothing done;
2. `Remove | Cordon and drain` — from a master that stays, through the eviction API (PodDisruptionBudgets respected;
   `--force` deletes the pods instead);
3. `Remove | Delete the node`;
4. `etcd | Remove members` — `etcdctl member remove` from a member that stays (a dead host's member too), then every
   member that stays healthy;
5. on the removed hosts that answer SSH and run a load balancer: keepalived and the proxy stopped (the reset's own
   phase: the VIP leaves them at once, with keepalived's priority-0 advert);
6. when masters (or load balancers) left: `Load balancer | The other hosts' backends and VRRP peers (reload)` on the
   LB hosts that stay, rendered from the inventory without the removed hosts — so an apply of that inventory
   afterwards has nothing to do there. Only now do the removed apiservers stop: no request goes to them any more,
   and a removed keepalived never holds the VIP beside the others;
7. the reset plan (`roles/plans/reset.py`) on the removed hosts that answer SSH: kubeadm reset, etcd stopped, its
   data and config removed. A host that does not answer (powered off, dead) is said so and skipped: its
   cluster-side traces are gone, and `keelson reset HOST` cleans it if it comes back.
Every part skips what is already done, so a rerun converges. The inventory given still lists the removed hosts (the
reset needs their addresses); take them out of it afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.control_plane.node_ops import DeleteNodes, DrainNodes
from roles.engine import events as ev
from roles.engine.context import RunContext
from roles.engine.phase import AnyPhase, Plan
from roles.engine.runner import RunReport, run_plan
from roles.engine.transport import ConnectionPool
from roles.etcd.members import count_problem, without
from roles.etcd.membership import RemoveMembers, StayingMembersHealthy
from roles.loadbalancer.phases import others_phases
from roles.plans import reset


class RemoveRefused(KeelsonError):
    exit_code = 2


def removing(cluster: Cluster, names: Sequence[str], *, force: bool = False) -> list[Host]:
    """The inventory's hosts named `names`, checked to be removable. Raises RemoveRefused (nothing touched)."""
    if not names:
        raise RemoveRefused("name at least one host to remove", hint="keelson remove -i INVENTORY w3")
    by_name = {h.name: h for h in cluster.hosts}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise RemoveRefused(
            f"not in the inventory: {', '.join(unknown)}",
            hint="remove takes hosts the inventory still lists (it needs their address to reset them); take them "
            "out of the inventory afterwards",
        )
    hosts = [by_name[n] for n in dict.fromkeys(names)]
    chosen = [h.name for h in hosts]
    if cluster.masters and all(m.name in chosen for m in cluster.masters):
        raise RemoveRefused(
            f"{', '.join(chosen)}: that is every master of the cluster",
            hint="keep at least one master; to take the whole cluster down: keelson reset -i INVENTORY --all",
        )
    members = [h.name for h in hosts if h in cluster.etcd_members]
    problem = count_problem(len(cluster.etcd_members), len(members), force=force)
    if problem:
        left = len(cluster.etcd_members) - len(members)
        raise RemoveRefused(
            f"{', '.join(members)}: refused, {problem}",
            hint="keep at least one etcd member; to take the whole cluster down: keelson reset -i INVENTORY --all"
            if left <= 0
            else "remove members so that an odd number, a majority of those there are now, stays (5 → 3: keelson "
            "remove -i INVENTORY m4 m5); --force does it anyway (e.g. a dead master to rebuild and join again)",
        )
    return hosts


def cluster_plan(cluster: Cluster, hosts: Sequence[Host], *, force: bool = False) -> Plan:
    """What the cluster forgets: the nodes (drained, deleted) and the etcd members, from hosts that stay."""
    nodes = [h.name for h in hosts if h in cluster.masters or h in cluster.workers]
    members = [h.name for h in hosts if h in cluster.etcd_members]
    phases: list[AnyPhase] = [StayingMembersHealthy(members)] if members else []
    if nodes:
        phases += [DrainNodes(nodes, force=force), DeleteNodes(nodes, force=force)]
    if members:
        phases.append(RemoveMembers(members))
    return Plan("remove", phases)


def balancer_plan(cluster: Cluster, hosts: Sequence[Host]) -> Plan | None:
    """The load balancers that stay, rendered from the cluster without the removed hosts (None: nothing to do)."""
    names = {h.name for h in hosts}
    if not any(h.name in names for h in [*cluster.masters, *cluster.lb_hosts]):
        return None
    phases = others_phases(without(cluster, names), names)
    return Plan("remove", phases) if phases else None


@dataclass
class Removal:
    cluster_side: RunReport
    reset: RunReport | None = None
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> why it was not reset
    vip_off: RunReport | None = None  # keepalived and the proxy stopped on the removed hosts
    balancers: RunReport | None = None  # the other load balancers without them

    @property
    def ok(self) -> bool:
        return all(r is None or r.ok for r in (self.cluster_side, self.vip_off, self.balancers, self.reset))


def answering(cluster: Cluster, hosts: Sequence[Host], rc: RunContext) -> tuple[list[Host], dict[str, str]]:
    """The hosts that accept an SSH login now, and why the others do not."""
    pool = ConnectionPool(cluster, trust_on_first_use=rc.trust_on_first_use)
    up, down = [], {}
    try:
        for host in hosts:
            try:
                pool.get(host)
                up.append(host)
            except KeelsonError as exc:
                down[host.name] = str(exc)
    finally:
        pool.close()
    return up, down


def staying(rc: RunContext, hosts: Sequence[Host]) -> RunContext:
    """`rc` for the cluster without `hosts` (what the load balancers are rendered from), keeping the run's node IPs."""
    narrowed = dataclasses.replace(rc, cluster=without(rc.cluster, {h.name for h in hosts}))
    object.__setattr__(narrowed, "nodes", rc.nodes)
    return narrowed


def remove(rc: RunContext, names: Sequence[str], *, force: bool = False) -> Removal:
    cluster = rc.cluster
    hosts = removing(cluster, names, force=force)
    done = Removal(run_plan(cluster_plan(cluster, hosts, force=force), rc))
    if not done.cluster_side.ok:
        return done
    up, done.unreachable = answering(cluster, hosts, rc)
    for name, why in done.unreachable.items():
        rc.events(
            ev.HostWarning(
                "Remove | Reset the host",
                name,
                f"not reset, it does not answer ({why}); its node is gone from the cluster — when it is back: "
                f"keelson reset -i INVENTORY {name}",
            )
        )
    vip_off = reset.plan(cluster, up, load_balancer_only=True)
    if vip_off.phases:
        done.vip_off = run_plan(vip_off, rc)
        if not done.vip_off.ok:
            return done
    balancers = balancer_plan(cluster, hosts)
    if balancers is not None:
        done.balancers = run_plan(balancers, staying(rc, hosts))
        if not done.balancers.ok:
            return done
    if up:
        done.reset = run_plan(reset.plan(cluster, up), rc)
    return done
