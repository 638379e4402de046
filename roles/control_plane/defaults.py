"""Defaults of the `control_plane` role: paths on the masters and the apiserver's hardening settings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ControlPlaneDefaults:
    config_dir: str = "/etc/kubernetes/keelson"  # kubeadm configs keelson renders (0600: they hold the token)
    init_marker: str = "/etc/kubernetes/keelson/init.done"  # kubeadm init finished here
    join_marker: str = "/etc/kubernetes/keelson/join.done"  # kubeadm join finished here
    # sha256 of the apiserver config files (authn, audit, encryption) the running apiserver was started with
    apiserver_marker: str = "/etc/kubernetes/keelson/apiserver-files.sha256"
    restart_timeout_s: int = 120  # a restarted apiserver's new container is running within this
    pki_dir: str = "/etc/kubernetes/pki"
    manifests_dir: str = "/etc/kubernetes/manifests"
    admin_conf: str = "/etc/kubernetes/admin.conf"
    kubelet_conf: str = "/etc/kubernetes/kubelet.conf"
    cri_socket: str = "unix:///run/containerd/containerd.sock"
    audit_dir: str = "/etc/kubernetes/audit"
    audit_log_dir: str = "/var/log/kubernetes/audit"
    audit_max_age_days: int = 30
    audit_max_backups: int = 10
    audit_max_size_mb: int = 100
    encryption_dir: str = "/etc/kubernetes/encryption"
    authn_dir: str = "/etc/kubernetes/authn"
    # anonymous requests allowed: the health endpoints (load balancer checks) and the cluster-info ConfigMap that
    # `kubeadm join` reads before it has credentials (its content is signed with the bootstrap token)
    anonymous_paths: tuple[str, ...] = (
        "/healthz",
        "/livez",
        "/readyz",
        "/api/v1/namespaces/kube-public/configmaps/cluster-info",
    )
    token_ttl_hours: int = 24
    token_min_left_hours: int = 2  # a token with less left is replaced before a join
    join_timeout_s: int = 600
    health_timeout_s: float = 300.0
    kubectl: str = "kubectl --kubeconfig /etc/kubernetes/admin.conf"
    extra_sans: tuple[str, ...] = field(default=("localhost", "127.0.0.1"))


DEFAULTS = ControlPlaneDefaults()
