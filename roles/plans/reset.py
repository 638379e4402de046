"""The reset: what keelson and kubeadm did on the hosts undone (`roles/reset`), on the hosts named or on all of them.

Read it top to bottom: the reset role's phases (node, load balancer, backup timer, etcd), narrowed to the hosts.
A master of a running cluster is refused unless the whole cluster is reset (`--all`) or `force` is given: resetting
one stops an etcd member and an apiserver under the others (take it out with `keelson remove` first).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles import reset
from roles.engine.phase import Phase, Plan
from roles.reset.phases import LOAD_BALANCER


class ResetRefused(KeelsonError):
    """The hosts named cannot be reset this way (exit 2: nothing was touched)."""

    exit_code = 2


def chosen(cluster: Cluster, names: Sequence[str], *, everything: bool, force: bool) -> list[Host]:
    """The hosts to reset. Raises ResetRefused for no/unknown names, names with --all, or a lone master."""
    if everything and names:
        raise ResetRefused("name hosts or give --all, not both")
    if everything:
        return list(cluster.hosts)
    if not names:
        raise ResetRefused("name the hosts to reset, or --all for the whole cluster", hint="keelson reset -i INV w3")
    by_name = {h.name: h for h in cluster.hosts}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ResetRefused(f"not in the inventory: {', '.join(unknown)}", hint="see keelson inventory show")
    hosts = [by_name[n] for n in dict.fromkeys(names)]
    quorum_hosts = [h.name for h in hosts if h in cluster.masters or h in cluster.etcd_members]
    if quorum_hosts and not force:
        raise ResetRefused(
            f"{', '.join(quorum_hosts)}: a master or etcd member of the cluster; resetting it alone stops an etcd "
            "member and an apiserver under the others",
            hint="reset the whole cluster with --all, or --force if it is already out of the cluster",
        )
    return hosts


def _narrowed(phase: Phase, names: frozenset[str]) -> Phase:
    selector = phase.hosts
    return dataclasses.replace(phase, hosts=lambda c: [h for h in selector(c) if h.name in names])


def plan(cluster: Cluster, hosts: Sequence[Host], *, load_balancer_only: bool = False) -> Plan:
    """The reset of `hosts`; `load_balancer_only`: only keepalived and the proxy stopped there (the VIP leaves them at
    once: what a removal does before the other load balancers drop them)."""
    names = frozenset(h.name for h in hosts)
    phases = []
    for phase in reset.phases(cluster):
        narrowed = _narrowed(phase, names)
        if narrowed.hosts(cluster) and (not load_balancer_only or phase.title == LOAD_BALANCER):
            phases.append(narrowed)
    return Plan("reset", phases)
