"""What `reset` removes and stops (the paths are the other roles' own: kubeadm's, the CNI's, keelson's markers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResetDefaults:
    node_paths: tuple[str, ...] = (
        "/etc/kubernetes",  # kubeadm's configs and PKI, keelson's kubeadm configs and join/init markers
        "/var/lib/kubelet",
        "/etc/cni/net.d",
        "/var/lib/cni",
        "/run/flannel",
    )
    node_links: tuple[str, ...] = ("cni0", "flannel.1", "kube-ipvs0")
    node_units: tuple[str, ...] = ("kubelet.service",)
    etcd_units: tuple[str, ...] = ("etcd.service",)
    lb_units: tuple[str, ...] = ("keepalived.service", "haproxy.service", "nginx.service")
    backup_units: tuple[str, ...] = ("keelson-etcd-backup.timer",)
    kubeadm_timeout_s: int = 300


DEFAULTS = ResetDefaults()
