"""Everything the control-plane role renders: kubeadm's configuration per master or worker, and the apiserver's
audit policy, encryption config and authentication config. Pure: values in, text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from inventory.model import Cluster
from provision.artifacts.catalog import release
from roles.control_plane.defaults import DEFAULTS
from roles.templating import render

Mode = Literal["init", "join-control-plane", "join-worker"]


@dataclass(frozen=True)
class Volume:
    name: str
    host_path: str
    mount_path: str
    read_only: bool
    path_type: str = "DirectoryOrCreate"


@dataclass(frozen=True)
class NodeValues:
    """What differs per node: its name, node IP and what its host told us."""

    name: str
    ip: str
    cgroup_v1: bool
    conntrack_writable: bool  # the host may set the kernel's conntrack limits (not a container)
    labels: tuple[str, ...] = ()


def apiserver_args(cluster: Cluster) -> list[tuple[str, str]]:
    d = DEFAULTS
    args = [
        ("authentication-config", f"{d.authn_dir}/config.yaml"),
        ("profiling", "false"),
        ("service-account-lookup", "true"),
        ("kubelet-certificate-authority", f"{d.pki_dir}/ca.crt"),
    ]
    if cluster.security.audit:
        args += [
            ("audit-policy-file", f"{d.audit_dir}/policy.yaml"),
            ("audit-log-path", f"{d.audit_log_dir}/audit.log"),
            ("audit-log-maxage", str(d.audit_max_age_days)),
            ("audit-log-maxbackup", str(d.audit_max_backups)),
            ("audit-log-maxsize", str(d.audit_max_size_mb)),
        ]
    if cluster.security.encryption_at_rest:
        args.append(("encryption-provider-config", f"{d.encryption_dir}/config.yaml"))
    return args


def apiserver_volumes(cluster: Cluster) -> list[Volume]:
    d = DEFAULTS
    volumes = [Volume("keelson-authn", d.authn_dir, d.authn_dir, True)]
    if cluster.security.audit:
        volumes += [
            Volume("keelson-audit-policy", d.audit_dir, d.audit_dir, True),
            Volume("keelson-audit-log", d.audit_log_dir, d.audit_log_dir, False),
        ]
    if cluster.security.encryption_at_rest:
        volumes.append(Volume("keelson-encryption", d.encryption_dir, d.encryption_dir, True))
    return volumes


def cert_sans(cluster: Cluster, master_ips: dict[str, str]) -> list[str]:
    """The VIP (or external endpoint's host), every master's name and node IP, and loopback."""
    endpoint_host = cluster.api_endpoint.rsplit(":", 1)[0].strip("[]")
    sans = [str(cluster.control_plane.vip.ip), endpoint_host]
    for name, ip in master_ips.items():
        sans += [name, ip]
    sans += list(DEFAULTS.extra_sans)
    return list(dict.fromkeys(sans))


def kubeadm_config(
    cluster: Cluster,
    mode: Mode,
    node: NodeValues,
    *,
    token: str,
    ca_cert_hash: str,
    master_ips: dict[str, str],
    etcd_endpoints: list[str],
    cri_socket: str = DEFAULTS.cri_socket,
) -> str:
    """kubeadm's configuration for one node. `cri_socket`: a Windows worker's is containerd's named pipe."""
    net = cluster.network
    return render(
        __file__,
        "kubeadm.yaml.j2",
        mode=mode,
        node_name=node.name,
        node_ip=node.ip,
        node_labels=node.labels,
        cluster_name=cluster.name,
        kubernetes_version=cluster.kubernetes.release_version,
        # the release's CoreDNS (the image its artifact set holds), which may differ from the kubeadm's own default
        # (v1.36.3 shares v1.37.2's CoreDNS); kubeadm upgrade keeps it from the cluster's stored configuration
        coredns_tag=release(cluster.kubernetes.release_version).coredns,
        control_plane_endpoint=cluster.api_endpoint,
        apiserver_port=cluster.control_plane.apiserver_port,
        token=token,
        ca_cert_hash=ca_cert_hash,
        cri_socket=cri_socket,
        # kubeadm >= 1.35 fails SystemVerification on cgroup v1 unless it is skipped explicitly (with failCgroupV1:
        # false in the kubelet's configuration): the documented way to keep a v1 host
        ignore_preflight=("SystemVerification",) if node.cgroup_v1 else (),
        pod_cidr=str(net.pod_cidr),
        service_cidr=str(net.service_cidr),
        dns_domain=net.dns_domain,
        etcd_endpoints=etcd_endpoints,
        cert_sans=cert_sans(cluster, master_ips),
        apiserver_args=apiserver_args(cluster),
        apiserver_volumes=apiserver_volumes(cluster),
        cgroup_driver=cluster.kubernetes.cgroup_driver,
        cgroup_v1=node.cgroup_v1,
        conntrack_max_per_core=None if node.conntrack_writable else 0,
        eviction_hard=cluster.kubernetes.kubelet.eviction,
        image_gc_high=cluster.kubernetes.kubelet.image_gc_high_percent,
        image_gc_low=cluster.kubernetes.kubelet.image_gc_low_percent,
    )


def audit_policy() -> str:
    d = DEFAULTS
    return render(
        __file__,
        "audit-policy.yaml.j2",
        max_size_mb=d.audit_max_size_mb,
        max_backups=d.audit_max_backups,
        max_age_days=d.audit_max_age_days,
    )


def encryption_config(key: str) -> str:
    return render(__file__, "encryption-config.yaml.j2", key_name="keelson-1", key=key)


def authentication_config() -> str:
    return render(__file__, "authentication-config.yaml.j2", paths=DEFAULTS.anonymous_paths)
