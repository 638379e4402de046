"""A kubespray inventory (`inventory.ini` or `hosts.yaml`, read by `importers/ansible.py`) → keelson inventory.

Groups (a '-' reads as '_', as Ansible's safe group names do): `kube_control_plane` (legacy `kube-master`) → master,
`kube_node` (`kube-node`) → worker, `etcd` → the etcd members: on the masters when the two groups match, else
dedicated (`etcd` role). `k8s_cluster` is only their parent. `calico_rr` and `bastion` are left out with a note.

Per host (its variables as Ansible resolves them, `all:vars` included): `ansible_host` → address (else the
inventory name itself, an IP or a DNS name); `ip` (what kubespray binds services to) → internal_address, else
`access_ip`; `ansible_port`/`ansible_user`/`ansible_ssh_private_key_file` → ssh (SSH settings all hosts share
go to the cluster's `ssh:`). Cluster settings, from the variables of `all` or `k8s_cluster`: `loadbalancer_apiserver`
(`address` → VIP, `port`), `kube_version`, `kube_network_plugin`, `kube_pods_subnet`, `kube_service_addresses`,
`cluster_name`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from inventory.importers.ansible import AnsibleInventory
from inventory.importers.common import (
    Conversion,
    FormatError,
    as_mapping,
    dns_label,
    hoist_ssh,
    kube_version,
    name_for,
    ssh_section,
    unique_names,
    vip_with_prefix,
)

__all__ = ["FormatError", "convert"]

CNI = {"flannel": "flannel", "calico": "calico", "canal": "canal", "cilium": "cilium"}
MASTER_GROUPS = ("kube_control_plane", "kube_master", "kube_controlplane")
WORKER_GROUPS = ("kube_node",)
KNOWN = {*MASTER_GROUPS, *WORKER_GROUPS, "etcd", "k8s_cluster", "all", "ungrouped"}


def _normalised(inv: AnsibleInventory) -> AnsibleInventory:
    out = AnsibleInventory(host_vars=inv.host_vars)
    for name, group in inv.groups.items():
        target = out.group(name.replace("-", "_").lower())
        target.hosts += [h for h in group.hosts if h not in target.hosts]
        target.children += [c.replace("-", "_").lower() for c in group.children]
        target.vars.update(group.vars)
    return out


def _first(inv: AnsibleInventory, names: tuple[str, ...]) -> list[str]:
    for name in names:
        if inv.members(name):
            return inv.members(name)
    return []


def _ip(value: Any, what: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise FormatError(f"{what} {value!r} is not an IP address") from None


def convert(source: AnsibleInventory, *, vip: str | None, name: str) -> Conversion:
    inv = _normalised(source)
    notes: list[str] = []
    if not inv.host_vars:
        raise FormatError("no hosts", hint="kubespray lists hosts in [all] or under kube_control_plane/kube_node/etcd")
    masters = _first(inv, MASTER_GROUPS)
    if not masters:
        raise FormatError(
            "no control-plane host: the kube_control_plane group (or legacy kube-master) is missing or empty",
            hint="list the masters under [kube_control_plane]",
        )
    workers = _first(inv, WORKER_GROUPS)
    etcd = inv.members("etcd")
    if not etcd:
        notes.append("no etcd group: etcd runs on the masters (etcd.placement: masters)")
    dedicated = bool(etcd) and set(etcd) != set(masters)
    for group, why in (("calico_rr", "calico route reflectors are not a keelson role"),
                       ("bastion", "keelson connects to each host directly, with no jump host")):  # fmt: skip
        if inv.members(group):
            notes.append(f"group {group} left out ({why}): {', '.join(inv.members(group))}")
    other = sorted(g for g in inv.groups if g not in KNOWN | {"calico_rr", "bastion"} and inv.members(g))
    if other:
        notes.append(f"groups keelson does not use: {', '.join(other)}")

    chosen = [h for h in inv.host_vars if h in masters or h in workers or (dedicated and h in etcd)]
    left = [h for h in inv.host_vars if h not in chosen and h not in inv.members("calico_rr") + inv.members("bastion")]
    if left:
        notes.append(f"hosts in no kube_control_plane, kube_node or etcd group, left out: {', '.join(left)}")
    names = unique_names([name_for(h) for h in chosen])
    everyone = inv.groups["all"].vars
    defaults = _ssh(everyone)  # `all:vars` SSH settings are the cluster's defaults; hosts keep what differs
    hosts: list[dict[str, Any]] = []
    for inventory_name, host_name in zip(chosen, names, strict=True):
        hv = inv.vars_for(inventory_name)
        roles = [r for r, group in (("master", masters), ("worker", workers)) if inventory_name in group]
        if dedicated and inventory_name in etcd:
            roles.append("etcd")
        address = hv.get("ansible_host") or hv.get("ansible_ssh_host") or inventory_name
        entry: dict[str, Any] = {"name": host_name, "address": str(address)}
        ip = _ip(hv.get("ip"), f"host {inventory_name}: ip")
        access = _ip(hv.get("access_ip"), f"host {inventory_name}: access_ip")
        if ip and access and ip != access:
            notes.append(f"{inventory_name}: ip {ip} and access_ip {access} differ: keelson uses one node IP ({ip})")
        if ip or access:
            entry["internal_address"] = ip or access
        entry["roles"] = roles
        ssh = {k: v for k, v in _ssh(hv).items() if defaults.get(k) != v}
        if ssh:
            entry["ssh"] = ssh
        if hv.get("ansible_become_password") or hv.get("ansible_become_pass"):
            notes.append(
                f"{inventory_name}: ansible_become_password not imported: keelson reads a sudo password from the "
                "environment variable named by ssh.sudo_password_env"
            )
        hosts.append(entry)

    gvars = {**inv.groups["k8s_cluster"].vars} if "k8s_cluster" in inv.groups else {}
    gvars = {**everyone, **gvars}
    cluster = _cluster(gvars, hosts, defaults, vip=vip, name=name, dedicated=dedicated, notes=notes)
    return Conversion(cluster, notes)


def _ssh(hv: dict[str, Any]) -> dict[str, Any]:
    port = hv.get("ansible_port", hv.get("ansible_ssh_port"))
    user = hv.get("ansible_user", hv.get("ansible_ssh_user"))
    return ssh_section(user, port, hv.get("ansible_ssh_private_key_file"))


def _cluster(
    gvars: dict[str, Any],
    hosts: list[dict[str, Any]],
    defaults: dict[str, Any],
    *,
    vip: str | None,
    name: str,
    dedicated: bool,
    notes: list[str],
) -> dict[str, Any]:
    lb = as_mapping(gvars.get("loadbalancer_apiserver"), "loadbalancer_apiserver")
    vip_text = vip or lb.get("address")
    if not vip_text:
        raise FormatError(
            "no VIP: loadbalancer_apiserver.address is not set",
            hint="pass --vip ADDRESS/PREFIX (a free address in the masters' subnet)",
        )
    if gvars.get("apiserver_loadbalancer_domain_name"):
        notes.append(
            f"apiserver_loadbalancer_domain_name {gvars['apiserver_loadbalancer_domain_name']} is not imported: "
            "keelson's API endpoint is the VIP"
        )
    control_plane: dict[str, Any] = {"vip": vip_with_prefix(str(vip_text)), "load_balancer": "keepalived+haproxy"}
    port = lb.get("port", gvars.get("loadbalancer_apiserver_port"))
    if port is not None:
        control_plane["port"] = port
    inventory: dict[str, Any] = {"name": dns_label(str(gvars.get("cluster_name") or name).split(".")[0])}
    version = kube_version(gvars.get("kube_version"))
    if version:
        inventory["kubernetes"] = {"version": version}
    ssh = {**defaults, **hoist_ssh(hosts)}
    if ssh:
        inventory["ssh"] = ssh
    inventory["hosts"] = hosts
    inventory["control_plane"] = control_plane
    if dedicated:
        inventory["etcd"] = {"placement": "dedicated"}
    network: dict[str, Any] = {}
    plugin = gvars.get("kube_network_plugin")
    if plugin is not None:
        network["cni"] = CNI.get(str(plugin), "flannel")
        if str(plugin) not in CNI:
            notes.append(f"kube_network_plugin {plugin} is not one keelson installs ({', '.join(CNI)}): flannel")
    if gvars.get("kube_pods_subnet"):
        network["pod_cidr"] = str(gvars["kube_pods_subnet"])
    if gvars.get("kube_service_addresses"):
        network["service_cidr"] = str(gvars["kube_service_addresses"])
    if network:
        inventory["network"] = network
    return inventory
