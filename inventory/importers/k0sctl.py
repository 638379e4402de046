"""k0sctl `k0sctl.yaml` → keelson inventory, accepting what k0sctl accepts.

Documents: the one with `apiVersion: k0sctl.k0sproject.io/v1beta1` and `kind: Cluster` (or `cluster`: k0sctl takes
both); a k0s `ClusterConfig` document in the same file stands in for `spec.k0s.config`; other documents are left out.
Hosts: `ssh`, `openSSH`, `winRM` or `localhost` connections. Roles: controller → master, worker → worker,
controller+worker → master+worker, single → master+worker (non_ha); `--single`/`--enable-worker` in installFlags
change the role as k0sctl does. `privateAddress` → internal_address. Several hosts on one address with different
ports are fine (their node IPs are then discovered). A `winRM` host is a Windows worker that keelson reaches over
OpenSSH (port 22, not the WinRM port): a note says so. Names: `hostname`, else the address's first label, else
controller-N / worker-N. The VIP is k0s's control-plane load balancing VIP
(`network.controlPlaneLoadBalancing.keepalived.vrrpInstances[0].virtualIPs[0]`) or `api.externalAddress`.
"""

from __future__ import annotations

from typing import Any

from inventory.importers.common import (
    Conversion,
    FormatError,
    as_mapping,
    dns_label,
    hoist_ssh,
    is_ip,
    kube_version,
    name_for,
    ssh_section,
    unique_names,
    vip_with_prefix,
)

API_GROUP = "k0sctl.k0sproject.io/"
ROLES = {
    "controller": ["master"],
    "worker": ["worker"],
    "controller+worker": ["master", "worker"],
    "single": ["master", "worker"],
}
CNI = {"calico": "calico", "kuberouter": "flannel", "custom": "flannel"}
CONNECTIONS = ("ssh", "openSSH", "winRM", "localhost")


def _kind(doc: dict[str, Any]) -> tuple[str, str]:
    return str(doc.get("apiVersion", "")), str(doc.get("kind", "")).lower()


def pick_documents(docs: list[Any]) -> tuple[dict[str, Any], dict[str, Any] | None, list[str]]:
    """(the k0sctl Cluster document, a separate k0s ClusterConfig document if any, notes)."""
    notes: list[str] = []
    cluster: dict[str, Any] | None = None
    k0s_config: dict[str, Any] | None = None
    for i, raw in enumerate(d for d in docs if d is not None):
        doc = as_mapping(raw, f"document {i + 1}")
        api, kind = _kind(doc)
        if api.startswith(API_GROUP) and kind == "cluster" and cluster is None:
            cluster = doc
        elif api.startswith("k0s.k0sproject.io/") and kind == "clusterconfig" and k0s_config is None:
            k0s_config = doc
        else:
            notes.append(f"document {i + 1} ({doc.get('kind') or 'no kind'}) left out: not a k0sctl Cluster")
    if cluster is None:
        raise FormatError(
            "expected apiVersion k0sctl.k0sproject.io/v1beta1 and kind Cluster",
            hint="this importer reads k0sctl.yaml files",
        )
    api = _kind(cluster)[0]
    if api != f"{API_GROUP}v1beta1":
        notes.append(f"apiVersion {api}: read as {API_GROUP}v1beta1 (the version k0sctl accepts)")
    return cluster, k0s_config, notes


def _role(h: dict[str, Any], i: int) -> str:
    role = str(h.get("role", ""))
    flags = [str(f) for f in h.get("installFlags") or []]
    if any(f.split("=")[0] == "--single" and not f.endswith("=false") for f in flags):
        role = "single"
    elif any(f.split("=")[0] == "--enable-worker" and not f.endswith("=false") for f in flags) and role == "controller":
        role = "controller+worker"
    if role not in ROLES:
        raise FormatError(f"spec.hosts[{i}].role {role!r} is not one of {', '.join(ROLES)}")
    return role


def _connection(h: dict[str, Any], i: int, notes: list[str]) -> tuple[str, dict[str, Any]]:
    given = [c for c in CONNECTIONS if c in h]
    if len(given) != 1:
        raise FormatError(f"spec.hosts[{i}] needs exactly one of {', '.join(CONNECTIONS)} (has {len(given)})")
    kind = given[0]
    if kind == "localhost":
        notes.append(f"spec.hosts[{i}] is k0sctl's localhost: keelson reaches it over SSH at localhost:22")
        return kind, {"address": "localhost"}
    conn = as_mapping(h.get(kind), f"spec.hosts[{i}].{kind}")
    if not conn.get("address"):
        raise FormatError(f"spec.hosts[{i}].{kind}.address is missing")
    if conn.get("bastion"):
        notes.append(f"spec.hosts[{i}]: the bastion is left out: keelson connects to each host directly")
    return kind, conn


def convert(docs: list[Any], *, vip: str | None, name: str) -> Conversion:
    doc, k0s_doc, notes = pick_documents(docs)
    spec = as_mapping(doc.get("spec"), "spec")
    raw_hosts = spec.get("hosts")
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise FormatError("no hosts: spec.hosts must be a non-empty list")
    k0s = as_mapping(spec.get("k0s"), "spec.k0s")
    k0s_config = as_mapping(k0s.get("config"), "spec.k0s.config") or (k0s_doc or {})
    k0s_spec = as_mapping(k0s_config.get("spec"), "spec.k0s.config.spec")
    net = as_mapping(k0s_spec.get("network"), "spec.k0s.config.spec.network")
    api = as_mapping(k0s_spec.get("api"), "spec.k0s.config.spec.api")

    hosts: list[dict[str, Any]] = []
    wanted: list[str] = []
    single = False
    counters: dict[str, int] = {}
    for i, raw in enumerate(raw_hosts):
        h = as_mapping(raw, f"spec.hosts[{i}]")
        role = _role(h, i)
        single = single or role == "single"
        kind, conn = _connection(h, i, notes)
        address = str(conn["address"]).strip()
        base = "worker" if role == "worker" else "controller"
        counters[base] = counters.get(base, 0) + 1
        if h.get("hostname"):
            wanted.append(str(h["hostname"]))
        elif kind != "localhost" and not is_ip(address):
            wanted.append(name_for(address))  # a DNS name's first label
        else:
            wanted.append(f"{base}-{counters[base]}")
        entry: dict[str, Any] = {"address": address}
        if h.get("privateAddress"):
            entry["internal_address"] = str(h["privateAddress"])
        entry["roles"] = list(ROLES[role])
        if kind == "winRM" or str(h.get("os", "")).lower() == "windows":
            entry["os"] = "windows"
        if kind == "winRM":
            user = conn.get("user") or "Administrator"
            ssh = ssh_section(user, None, None)
            notes.append(
                f"spec.hosts[{i}] ({address}) is a winRM host: imported as a Windows worker that keelson reaches "
                "over OpenSSH (port 22), not WinRM; enable the OpenSSH server on it (password and WinRM port "
                "not imported)"
            )
        else:
            ssh = ssh_section(conn.get("user"), conn.get("port"), conn.get("keyPath"))
            if kind == "openSSH" and conn.get("configPath"):
                notes.append(f"spec.hosts[{i}]: openSSH configPath {conn['configPath']} is not read by keelson")
        if ssh:
            entry["ssh"] = ssh
        hosts.append(entry)
    for entry, host_name in zip(hosts, unique_names(wanted), strict=True):
        entry["name"] = host_name
    hosts = [{"name": e.pop("name"), **e} for e in hosts]

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
        inventory["kubernetes"] = {"version": version}
    if single:
        inventory["non_ha"] = True
    shared = hoist_ssh(hosts)
    if shared:
        inventory["ssh"] = shared
    inventory["hosts"] = hosts
    inventory["control_plane"] = {"vip": vip_with_prefix(str(vip_text)), "load_balancer": "keepalived+haproxy"}
    network: dict[str, Any] = {}
    if net.get("provider"):
        network["cni"] = CNI.get(str(net["provider"]), "flannel")
    if net.get("podCIDR"):
        network["pod_cidr"] = str(net["podCIDR"])
    if net.get("serviceCIDR"):
        network["service_cidr"] = str(net["serviceCIDR"])
    if network:
        inventory["network"] = network
    return Conversion(inventory, notes)


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
