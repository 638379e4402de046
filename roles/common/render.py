"""Render the `common` role's files from the templates beside it. Pure: inventory and defaults in, text out."""

from __future__ import annotations

from functools import lru_cache

from inventory.model import Cluster
from roles.common.defaults import DEFAULTS, CommonDefaults
from roles.engine.nodes import NodeIPs
from roles.templating import render


def modules_load_conf(d: CommonDefaults = DEFAULTS) -> str:
    return render(__file__, "modules-load.conf.j2", modules=d.modules)


def sysctl_conf(d: CommonDefaults = DEFAULTS) -> str:
    return render(__file__, "sysctl.conf.j2", sysctl=d.sysctl)


def hosts_block(cluster: Cluster, nodes: NodeIPs, d: CommonDefaults = DEFAULTS) -> str:
    """The managed block of /etc/hosts: the VIP as `<cluster>-api`, then every host of the inventory at its node IP."""
    hosts = tuple((h.name, str(nodes.ip(h))) for h in cluster.hosts)
    return _hosts_block(d.hosts_marker, str(cluster.control_plane.vip.ip), cluster.name, hosts)


@lru_cache(maxsize=16)
def _hosts_block(marker: str, vip: str, cluster: str, hosts: tuple[tuple[str, str], ...]) -> str:
    """Rendered once per content: every host of a run gets the same block, of every host (O(hosts) each)."""
    rows = [{"name": name, "address": address} for name, address in hosts]
    return render(__file__, "hosts-block.j2", marker=marker, vip=vip, cluster=cluster, hosts=rows)
