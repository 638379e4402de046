"""k0sctl `k0sctl.yaml` (apiVersion k0sctl.k0sproject.io/v1beta1, kind Cluster) → keelson inventory.

Roles: controller → master, worker → worker, controller+worker → master+worker, single → master+worker (non_ha).
Hosts with `winRM` are Windows workers. The VIP is k0s's control-plane load balancing VIP
(`network.controlPlaneLoadBalancing.keepalived.vrrpInstances[0].virtualIPs[0]`) or `api.externalAddress`.
"""

from __future__ import annotations

from typing import Any

from inventory.importers.common import FormatError, as_mapping, dns_label, kube_version, vip_with_prefix

ROLES = {
    "controller": ["master"],
    "worker": ["worker"],
    "controller+worker": ["master", "worker"],
    "single": ["master", "worker"],
}
CNI = {"calico": "calico", "kuberouter": "flannel", "custom": "flannel"}


def convert(data: Any, *, vip: str | None, name: str) -> dict[str, Any]:
    doc = as_mapping(data, "the document")
    if doc.get("kind") != "Cluster" or not str(doc.get("apiVersion", "")).startswith("k0sctl.k0sproject.io/"):
        raise FormatError(
            "expected apiVersion k0sctl.k0sproject.io/v1beta1 and kind Cluster",
            hint="this importer reads k0sctl.yaml files",
        )
    spec = as_mapping(doc.get("spec"), "spec")
    raw_hosts = spec.get("hosts")
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise FormatError("spec.hosts must be a non-empty list")
    k0s = as_mapping(spec.get("k0s"), "spec.k0s")
    k0s_spec = as_mapping(as_mapping(k0s.get("config"), "spec.k0s.config").get("spec"), "spec.k0s.config.spec")
    net = as_mapping(k0s_spec.get("network"), "spec.k0s.config.spec.network")
    api = as_mapping(k0s_spec.get("api"), "spec.k0s.config.spec.api")

    hosts: list[dict[str, Any]] = []
    single = False
    counters: dict[str, int] = {}
    for i, raw in enumerate(raw_hosts):
        h = as_mapping(raw, f"spec.hosts[{i}]")
        role = str(h.get("role", ""))
        if role not in ROLES:
            raise FormatError(f"spec.hosts[{i}].role {role!r} is not one of {', '.join(ROLES)}")
        single = single or role == "single"
        windows = "winRM" in h or str(h.get("os", "")).lower() == "windows"
        conn = as_mapping(h.get("ssh") or h.get("winRM"), f"spec.hosts[{i}].ssh")
        address = h.get("privateAddress") or conn.get("address")
        if not address:
            raise FormatError(f"spec.hosts[{i}] has no ssh.address")
        base = "worker" if role == "worker" else "controller"
        counters[base] = counters.get(base, 0) + 1
        host_name = dns_label(str(h.get("hostname") or f"{base}-{counters[base]}"))
        entry: dict[str, Any] = {"name": host_name, "address": str(address), "roles": list(ROLES[role])}
        if windows:
            entry["os"] = "windows"
        ssh = {
            k: v
            for k, v in (("user", conn.get("user")), ("port", conn.get("port")), ("key", conn.get("keyPath")))
            if v is not None
        }
        if ssh:
            entry["ssh"] = ssh
        hosts.append(entry)

    vip_text = vip or _cplb_vip(net) or api.get("externalAddress")
    if not vip_text:
        raise FormatError(
            "no VIP: neither controlPlaneLoadBalancing nor api.externalAddress is set",
            hint="pass --vip ADDRESS/PREFIX (a free address in the controllers' subnet)",
        )
    metadata = as_mapping(doc.get("metadata"), "metadata")
    inventory: dict[str, Any] = {"name": dns_label(str(metadata.get("name") or name))}
    version = kube_version(k0s.get("version"))
    if version:
        inventory["kubernetes_version"] = version
    if single:
        inventory["non_ha"] = True
    inventory["hosts"] = hosts
    control_plane: dict[str, Any] = {
        "vip": vip_with_prefix(str(vip_text)),
        "load_balancer": "keepalived+haproxy",
    }
    inventory["control_plane"] = control_plane
    network: dict[str, Any] = {}
    if net.get("provider"):
        network["cni"] = CNI.get(str(net["provider"]), "flannel")
    if net.get("podCIDR"):
        network["pod_cidr"] = str(net["podCIDR"])
    if net.get("serviceCIDR"):
        network["service_cidr"] = str(net["serviceCIDR"])
    if network:
        inventory["network"] = network
    return inventory


def _cplb_vip(net: dict[str, Any]) -> str | None:
    cplb = as_mapping(net.get("controlPlaneLoadBalancing"), "network.controlPlaneLoadBalancing")
    keepalived = as_mapping(cplb.get("keepalived"), "controlPlaneLoadBalancing.keepalived")
    instances = keepalived.get("vrrpInstances")
    if isinstance(instances, list) and instances:
        first = as_mapping(instances[0], "vrrpInstances[0]")
        vips = first.get("virtualIPs")
        if isinstance(vips, list) and vips:
            return str(vips[0])
    return None
