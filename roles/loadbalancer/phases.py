"""The load-balancer role's phases, in order."""

from __future__ import annotations

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
