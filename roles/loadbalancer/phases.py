"""The load-balancer role's phases, in order."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from inventory.model import Cluster, Host
from roles.engine.phase import Phase, of_role
from roles.engine.step import Handler, reload
from roles.loadbalancer import render
from roles.loadbalancer.steps import steps


def lb_hosts(cluster: Cluster) -> list[Host]:
    return cluster.lb_hosts


def handlers(cluster: Cluster) -> list[Handler]:
    proxy = reload("nginx", check="nginx -t -q") if render.proxy_kind(cluster) == "nginx" else reload("haproxy")
    return [proxy, reload("keepalived")]


def phases(cluster: Cluster) -> list[Phase]:
    if cluster.control_plane.load_balancer == "external":
        return []
    return of_role("loadbalancer", [Phase("Load balancer", lb_hosts, steps(cluster), handlers=handlers(cluster))])


def others_phases(cluster: Cluster, changing: Collection[str]) -> list[Phase]:
    """When masters join or leave a running cluster: the load balancer on every other LB host, rendered from the
    cluster as it is afterwards — the proxy's backends (every apiserver) and keepalived's VRRP peers change there, and
    each is reloaded, never restarted (the VIP stays where it is: `nopreempt`). The same steps as the apply's phase,
    so an apply afterwards has nothing to do there."""
    names = frozenset(changing)
    return [
        dataclasses.replace(
            phase,
            title="Load balancer | The other hosts' backends and VRRP peers (reload)",
            hosts=lambda c: [h for h in lb_hosts(c) if h.name not in names],
        )
        for phase in phases(cluster)
    ]
