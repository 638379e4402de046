"""The removal of workers: the cluster forgets them, then each host that still answers is reset.

Read it top to bottom: that is what `keelson remove HOST…` does.
1. `Remove | Cordon and drain` — from a master that stays, through the eviction API (PodDisruptionBudgets respected;
   `--force` deletes the pods instead);
2. `Remove | Delete the node`;
3. the reset plan (`roles/plans/reset.py`) on the removed hosts that answer SSH. A host that does not (powered off,
   dead) is said so and skipped: its cluster-side traces are gone, and `keelson reset HOST` cleans it if it comes
   back. Both parts skip what is already done, so a rerun converges.

Masters are refused for now (`RemoveRefused`): their removal is an etcd `member remove` with quorum checks and every
load balancer's backends updated, which this version does not do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.control_plane.node_ops import DeleteNodes, DrainNodes
from roles.engine import events as ev
from roles.engine.context import RunContext
from roles.engine.phase import Plan
from roles.engine.runner import RunReport, run_plan
from roles.engine.transport import ConnectionPool
from roles.plans import reset


class RemoveRefused(KeelsonError):
    exit_code = 2


def removing(cluster: Cluster, names: Sequence[str]) -> list[Host]:
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
    masters = [h.name for h in hosts if h in cluster.masters or h in cluster.etcd_members]
    if masters:
        raise RemoveRefused(
            f"{', '.join(masters)}: removing a master or etcd member is not supported yet (it needs an etcd member "
            "remove with quorum checks and every load balancer's backends updated)",
            hint="remove workers only with this version",
        )
    return hosts


def cluster_plan(cluster: Cluster, hosts: Sequence[Host], *, force: bool = False) -> Plan:
    names = [h.name for h in hosts]
    return Plan("remove", [DrainNodes(names, force=force), DeleteNodes(names, force=force)])


@dataclass
class Removal:
    cluster_side: RunReport
    reset: RunReport | None = None
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> why it was not reset

    @property
    def ok(self) -> bool:
        return self.cluster_side.ok and (self.reset is None or self.reset.ok)


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


def remove(rc: RunContext, names: Sequence[str], *, force: bool = False) -> Removal:
    cluster = rc.cluster
    hosts = removing(cluster, names)
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
    if up:
        done.reset = run_plan(reset.plan(cluster, up), rc)
    return done
