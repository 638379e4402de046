"""kubespray `inventory/<name>/hosts.yaml` (Ansible YAML inventory) → keelson inventory.

Groups: kube_control_plane → master, kube_node → worker, etcd → etcd members (on the masters when the groups match,
else dedicated). Address: `ip` (the address kubespray binds services to), else `access_ip`, else `ansible_host`.
Cluster settings come from `all.vars` when present (kubespray's group_vars names): `loadbalancer_apiserver`,
`kube_version`, `kube_network_plugin`, `kube_pods_subnet`, `kube_service_addresses`, `cluster_name`.
"""

from __future__ import annotations

from typing import Any

from inventory.importers.common import FormatError, as_mapping, dns_label, kube_version, vip_with_prefix

__all__ = ["FormatError", "convert"]

CNI = {"flannel": "flannel", "calico": "calico", "canal": "canal", "cilium": "cilium"}


def convert(data: Any, *, vip: str | None, name: str) -> dict[str, Any]:
    root = as_mapping(as_mapping(data, "the document").get("all"), "all")
    if not root:
        raise FormatError("no top-level 'all' group", hint="a kubespray hosts.yaml starts with 'all: {hosts: …}'")
    hosts = as_mapping(root.get("hosts"), "all.hosts")
    if not hosts:
        raise FormatError("all.hosts is empty")
    children = as_mapping(root.get("children"), "all.children")
    masters = _group(children, "kube_control_plane") or _group(children, "kube-master")
    workers = _group(children, "kube_node") or _group(children, "kube-node")
    etcd = _group(children, "etcd")
    if not masters:
        raise FormatError("the kube_control_plane group is empty")
    gvars = as_mapping(root.get("vars"), "all.vars")
    dedicated = bool(etcd) and set(etcd) != set(masters)

    out_hosts = []
    for host_name, raw in hosts.items():
        hv = as_mapping(raw, f"all.hosts.{host_name}")
        roles = []
        if host_name in masters:
            roles.append("master")
        if host_name in workers:
            roles.append("worker")
        if dedicated and host_name in etcd:
            roles.append("etcd")
        if not roles:
            continue
        address = hv.get("ip") or hv.get("access_ip") or hv.get("ansible_host")
        if not address:
            raise FormatError(f"host {host_name!r} has no ip, access_ip or ansible_host")
        entry: dict[str, Any] = {"name": dns_label(str(host_name)), "address": str(address), "roles": roles}
        ssh = {
            k: v
            for k, v in (
                ("user", hv.get("ansible_user")),
                ("port", hv.get("ansible_port")),
                ("key", hv.get("ansible_ssh_private_key_file")),
            )
            if v is not None
        }
        if ssh:
            entry["ssh"] = ssh
        out_hosts.append(entry)

    lb = as_mapping(gvars.get("loadbalancer_apiserver"), "all.vars.loadbalancer_apiserver")
    vip_text = vip or lb.get("address")
    if not vip_text:
        raise FormatError(
            "no VIP: all.vars.loadbalancer_apiserver.address is not set",
            hint="pass --vip ADDRESS/PREFIX (a free address in the masters' subnet)",
        )
    control_plane: dict[str, Any] = {
        "vip": vip_with_prefix(str(vip_text)),
        "load_balancer": "keepalived+haproxy",
    }
    if lb.get("port") is not None:
        control_plane["port"] = lb["port"]
    inventory: dict[str, Any] = {"name": dns_label(str(gvars.get("cluster_name") or name).split(".")[0])}
    version = kube_version(gvars.get("kube_version"))
    if version:
        inventory["kubernetes_version"] = version
    inventory["hosts"] = out_hosts
    inventory["control_plane"] = control_plane
    if dedicated:
        inventory["etcd"] = {"placement": "dedicated"}
    network: dict[str, Any] = {}
    plugin = gvars.get("kube_network_plugin")
    if plugin is not None:
        network["cni"] = CNI.get(str(plugin), str(plugin))
    if gvars.get("kube_pods_subnet"):
        network["pod_cidr"] = str(gvars["kube_pods_subnet"])
    if gvars.get("kube_service_addresses"):
        network["service_cidr"] = str(gvars["kube_service_addresses"])
    if network:
        inventory["network"] = network
    return inventory


def _group(children: dict[str, Any], name: str) -> list[str]:
    group = as_mapping(children.get(name), f"all.children.{name}")
    return [str(h) for h in as_mapping(group.get("hosts"), f"all.children.{name}.hosts")]
