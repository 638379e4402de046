"""Cross-field rules of an inventory, checked with no network (kubespray's validate_inventory, keyed by field).

Each rule yields `Violation(path, message)`; the loader turns the path into file:line:field.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from inventory.model import OS, Cluster, Role
from inventory.positions import Path


@dataclass(frozen=True)
class Violation:
    path: Path
    message: str


Rule = Callable[[Cluster], Iterator[Violation]]


def _first_index(cluster: Cluster, role: Role) -> int | None:
    return next((i for i, h in enumerate(cluster.hosts) if role in h.roles), None)


def master_count(cluster: Cluster) -> Iterator[Violation]:
    n = len(cluster.masters)
    allowed = "3 or 5 (or 1 with non_ha: true)"
    if n in (3, 5) or (n == 1 and cluster.non_ha):
        return
    if n == 1:
        yield Violation(
            ("non_ha",) if cluster.non_ha else ("hosts",),
            f"1 master is not HA: set non_ha: true, or use {allowed}",
        )
    else:
        yield Violation(("hosts",), f"{n} masters: the control plane needs {allowed} masters (odd, for etcd quorum)")


def etcd_members(cluster: Cluster) -> Iterator[Violation]:
    members = cluster.etcd_members
    n = len(members)
    if cluster.etcd.placement == "dedicated" and n == 0:
        yield Violation(("etcd", "placement"), "placement is 'dedicated' but no host has the 'etcd' role")
    elif cluster.etcd.placement == "masters" and cluster.with_role(Role.ETCD):
        i = _first_index(cluster, Role.ETCD)
        yield Violation(("hosts", i or 0, "roles"), "the 'etcd' role needs etcd.placement: dedicated")
    elif cluster.etcd.placement == "masters":
        return  # the members are the masters: master_count already holds them to 1, 3 or 5
    elif n % 2 == 0:
        yield Violation(("etcd", "placement"), f"{n} etcd members: the count must be odd (3 or 5) to keep quorum")
    elif n == 1 and not cluster.non_ha:
        yield Violation(("etcd", "placement"), "1 etcd member is not HA: use 3 or 5, or set non_ha: true")


def unique_names_and_addresses(cluster: Cluster) -> Iterator[Violation]:
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    for i, host in enumerate(cluster.hosts):
        if host.name in names:
            yield Violation(("hosts", i, "name"), f"duplicate host name {host.name!r} (also hosts[{names[host.name]}])")
        names.setdefault(host.name, i)
        addr = str(host.address)
        if addr in addresses:
            yield Violation(("hosts", i, "address"), f"duplicate address {addr} (also hosts[{addresses[addr]}])")
        addresses.setdefault(addr, i)


def windows_only_workers(cluster: Cluster) -> Iterator[Violation]:
    for i, host in enumerate(cluster.hosts):
        if host.os is OS.WINDOWS and host.roles != [Role.WORKER]:
            bad = ", ".join(r.value for r in host.roles if r is not Role.WORKER)
            yield Violation(("hosts", i, "roles"), f"Windows host {host.name!r} can only be a worker (not {bad})")


def vip_placement(cluster: Cluster) -> Iterator[Violation]:
    cp = cluster.control_plane
    if cp.load_balancer == "external":
        if not cp.endpoint:
            yield Violation(("control_plane", "endpoint"), "load_balancer: external needs endpoint: host:port")
        if cluster.with_role(Role.LB):
            i = _first_index(cluster, Role.LB) or 0
            yield Violation(("hosts", i, "roles"), "'lb' hosts make no sense with load_balancer: external")
        return
    subnet = cp.vip.network
    vip = cp.vip.ip
    for i, host in enumerate(cluster.hosts):
        if host.address == vip:
            yield Violation(("control_plane", "vip"), f"VIP {vip} is the address of host {host.name!r} (hosts[{i}])")
    holders = cluster.lb_hosts
    kind = "load-balancer hosts'" if cluster.lb_dedicated else "masters'"
    outside = [h.name for h in holders if h.address not in subnet]
    if outside:
        yield Violation(
            ("control_plane", "vip"),
            f"VIP {cp.vip} is not in the {kind} subnet: {', '.join(outside)} lie outside {subnet}",
        )
    if vip in (subnet.network_address, subnet.broadcast_address) and subnet.prefixlen < 31:
        yield Violation(("control_plane", "vip"), f"VIP {vip} is the network or broadcast address of {subnet}")
    lbs = cluster.with_role(Role.LB)
    if len(lbs) == 1 and not cluster.non_ha:
        yield Violation(("hosts", _first_index(cluster, Role.LB) or 0, "roles"), "1 'lb' host is not HA: use 2 or more")


def cidrs_disjoint(cluster: Cluster) -> Iterator[Violation]:
    net = cluster.network
    if net.pod_cidr.overlaps(net.service_cidr):
        yield Violation(
            ("network", "service_cidr"), f"service_cidr {net.service_cidr} overlaps pod_cidr {net.pod_cidr}"
        )
    cp_net = cluster.control_plane.vip.network
    for field, cidr in (("pod_cidr", net.pod_cidr), ("service_cidr", net.service_cidr)):
        if cidr.overlaps(cp_net):
            yield Violation(("network", field), f"{field} {cidr} overlaps the hosts' network {cp_net}")
        for i, host in enumerate(cluster.hosts):
            if isinstance(host.address, ipaddress.IPv4Address) and host.address in cidr:
                yield Violation(
                    ("network", field),
                    f"{field} {cidr} contains the address of host {host.name!r} (hosts[{i}])",
                )


def backup_targets(cluster: Cluster) -> Iterator[Violation]:
    for i, target in enumerate(cluster.backups.targets):
        if target.kind == "ssh" and not target.path.startswith("/"):
            yield Violation(("backups", "targets", i, "path"), f"path {target.path!r} must be absolute")
    nfs = cluster.addons
    if nfs.storage == "nfs" and nfs.nfs is None:
        yield Violation(("addons", "storage"), "storage: nfs needs addons.nfs: {server, path}")


RULES: tuple[Rule, ...] = (
    master_count,
    etcd_members,
    unique_names_and_addresses,
    windows_only_workers,
    vip_placement,
    cidrs_disjoint,
    backup_targets,
)


def violations(cluster: Cluster) -> list[Violation]:
    return [v for rule in RULES for v in rule(cluster)]
