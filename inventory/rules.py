"""Cross-field rules of an inventory, checked with no network (kubespray's validate_inventory, keyed by field).

Each rule yields `Violation(path, message)`; the loader turns the path into file:line:field.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from inventory.model import OS, Cluster, Host, IPAddress, Role
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


NodeIPOf = Callable[[Host], IPAddress | None]
"""The node IP of a host as far as it is known: the inventory alone (`Cluster.spec_node_ip`) offline, or every
host's after the run discovered them (`roles.engine.nodes.NodeIPs`). None: not known yet, the check skips it."""


def unique_names_and_addresses(cluster: Cluster) -> Iterator[Violation]:
    """Names are unique; SSH targets are unique per (address, port): several hosts may sit behind one address on
    different SSH ports (a NAT or a bastion's port forwards), as k0sctl allows. Internal addresses are unique."""
    names: dict[str, int] = {}
    targets: dict[tuple[str, int], int] = {}
    internal: dict[IPAddress, int] = {}
    for i, host in enumerate(cluster.hosts):
        if host.name in names:
            yield Violation(("hosts", i, "name"), f"duplicate host name {host.name!r} (also hosts[{names[host.name]}])")
        names.setdefault(host.name, i)
        port = cluster.ssh_for(host).port
        target = (str(host.address), port)
        if target in targets:
            on = "" if port == 22 else f" on SSH port {port}"
            yield Violation(
                ("hosts", i, "address"),
                f"duplicate address {host.address}{on} (also hosts[{targets[target]}]); hosts may share an address "
                "only on different SSH ports",
            )
        targets.setdefault(target, i)
        ip = host.internal_address
        if ip is not None:
            if ip in internal:
                yield Violation(
                    ("hosts", i, "internal_address"), f"duplicate internal_address {ip} (also hosts[{internal[ip]}])"
                )
            internal.setdefault(ip, i)


def unique_node_ips(cluster: Cluster, node_ip: NodeIPOf) -> Iterator[Violation]:
    """Two hosts never share a node IP (an internal_address equal to another host's address, or two DNS names that
    lead to one machine). Duplicate internal addresses are `unique_names_and_addresses`' message already."""
    seen: dict[IPAddress, int] = {}
    for i, host in enumerate(cluster.hosts):
        ip = node_ip(host)
        if ip is None:
            continue
        if ip in seen:
            other = cluster.hosts[seen[ip]]
            both_internal = host.internal_address == other.internal_address == ip
            if not both_internal:
                field = "internal_address" if host.internal_address is not None else "address"
                yield Violation(
                    ("hosts", i, field),
                    f"host {host.name!r} has node IP {ip}, the node IP of {other.name!r} (hosts[{seen[ip]}]) too: "
                    "every host needs its own (set internal_address)",
                )
        seen.setdefault(ip, i)


def windows_only_workers(cluster: Cluster) -> Iterator[Violation]:
    for i, host in enumerate(cluster.hosts):
        if host.os is OS.WINDOWS and host.roles != [Role.WORKER]:
            bad = ", ".join(r.value for r in host.roles if r is not Role.WORKER)
            yield Violation(("hosts", i, "roles"), f"Windows host {host.name!r} can only be a worker (not {bad})")


def vip_placement(cluster: Cluster) -> Iterator[Violation]:
    """What the inventory alone tells about the VIP; where it sits against the node IPs is `vip_against_node_ips`."""
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
    if vip in (subnet.network_address, subnet.broadcast_address) and subnet.prefixlen < 31:
        yield Violation(("control_plane", "vip"), f"VIP {vip} is the network or broadcast address of {subnet}")
    lbs = cluster.with_role(Role.LB)
    if len(lbs) == 1 and not cluster.non_ha:
        yield Violation(("hosts", _first_index(cluster, Role.LB) or 0, "roles"), "1 'lb' host is not HA: use 2 or more")


def vip_against_node_ips(cluster: Cluster, node_ip: NodeIPOf) -> Iterator[Violation]:
    """The VIP is no host's node IP and lies in the subnet of the hosts that hold it. Hosts whose node IP is not
    known yet are skipped, and the message names them (the run checks them again once it knows their IPs)."""
    cp = cluster.control_plane
    if cp.load_balancer == "external":
        return
    subnet = cp.vip.network
    vip = cp.vip.ip
    for i, host in enumerate(cluster.hosts):
        if node_ip(host) == vip:
            yield Violation(("control_plane", "vip"), f"VIP {vip} is the node IP of host {host.name!r} (hosts[{i}])")
    holders = cluster.lb_hosts
    kind = "load-balancer hosts'" if cluster.lb_dedicated else "masters'"
    known = [(h, node_ip(h)) for h in holders]
    outside = [f"{h.name} ({ip})" for h, ip in known if ip is not None and ip not in subnet]
    unknown = [h.name for h, ip in known if ip is None]
    if outside:
        later = f"; not checked yet: {', '.join(unknown)} (node IP discovered at run time)" if unknown else ""
        yield Violation(
            ("control_plane", "vip"),
            f"VIP {cp.vip} is not in the {kind} subnet: {', '.join(outside)} lie outside {subnet}{later}",
        )


def cidrs_disjoint(cluster: Cluster, node_ip: NodeIPOf) -> Iterator[Violation]:
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
            ip = node_ip(host)
            if isinstance(ip, ipaddress.IPv4Address) and ip in cidr:
                yield Violation(
                    ("network", field),
                    f"{field} {cidr} contains the node IP {ip} of host {host.name!r} (hosts[{i}])",
                )


def backup_targets(cluster: Cluster) -> Iterator[Violation]:
    by_name = {h.name: str(h.address) for h in cluster.hosts}
    folders: dict[tuple[str, int, str], tuple[int, str]] = {}  # (host, port, user) -> first (index, path)
    for i, target in enumerate(cluster.backups.targets):
        if target.kind != "ssh":
            continue
        if not target.path.startswith("/"):
            yield Violation(("backups", "targets", i, "path"), f"path {target.path!r} must be absolute")
        # one key per cluster: a user's authorized_keys can pin it to one folder only
        account = (by_name.get(target.host, target.host), target.port, target.user)
        first = folders.setdefault(account, (i, target.path))
        if first[1] != target.path:
            yield Violation(
                ("backups", "targets", i, "path"),
                f"backups.targets[{first[0]}] already sends {target.user}@{target.host} to {first[1]}: "
                "the backup key is pinned to one folder per user (use another user for another folder)",
            )


def nfs_settings(cluster: Cluster) -> Iterator[Violation]:
    addons = cluster.addons
    if addons.storage == "nfs" and addons.nfs is None:
        yield Violation(("addons", "storage"), "storage: nfs needs addons.nfs: {server: <address>, path: <export>}")
    if addons.storage != "nfs" and addons.nfs is not None:
        yield Violation(("addons", "nfs"), f"addons.nfs is only read with storage: nfs (storage is {addons.storage})")


def kubernetes_release(cluster: Cluster) -> Iterator[Violation]:
    from provision.artifacts.catalog import RELEASES

    version = cluster.kubernetes.release_version
    if version not in RELEASES:
        supported = ", ".join(sorted(RELEASES))
        yield Violation(
            ("kubernetes", "version"), f"keelson does not install Kubernetes {version} (supported: {supported})"
        )


NODE_IP_RULES: tuple[Callable[[Cluster, NodeIPOf], Iterator[Violation]], ...] = (
    unique_node_ips,
    vip_against_node_ips,
    cidrs_disjoint,
)
"""Rules on node IPs: checked offline with what the inventory tells, and again by the run once it discovered the
node IPs of hosts addressed by DNS name (`roles.engine.nodes`)."""

RULES: tuple[Rule, ...] = (
    kubernetes_release,
    master_count,
    etcd_members,
    unique_names_and_addresses,
    windows_only_workers,
    vip_placement,
    backup_targets,
    nfs_settings,
)


def node_ip_violations(cluster: Cluster, node_ip: NodeIPOf) -> list[Violation]:
    return [v for rule in NODE_IP_RULES for v in rule(cluster, node_ip)]


def violations(cluster: Cluster) -> list[Violation]:
    """Every rule, on the inventory alone (no network)."""
    found = [v for rule in RULES for v in rule(cluster)]
    return found + node_ip_violations(cluster, cluster.spec_node_ip)


def notes(cluster: Cluster) -> list[str]:
    """What an offline check cannot tell yet (not errors): hosts whose node IP the run discovers."""
    later = [h.name for h in cluster.hosts if cluster.spec_node_ip(h) is None]
    if not later:
        return []
    return [
        f"node IP discovered from the host at the start of each run (not set in the inventory): {', '.join(later)}; "
        "the VIP subnet and unique node IP rules are checked for them then"
    ]
