"""Defaults of the `kubernetes_node` role: where the node's binaries, CNI plugins and kubelet unit go."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KubernetesNodeDefaults:
    bin_dir: str = "/usr/local/bin"
    cni_bin_dir: str = "/opt/cni/bin"
    cni_conf_dir: str = "/etc/cni/net.d"
    node_binaries: tuple[str, ...] = ("kubeadm", "kubelet", "kubectl")
    kubelet_unit: str = "/etc/systemd/system/kubelet.service"
    kubelet_dropin: str = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
    crictl_config: str = "/etc/crictl.yaml"
    containerd_socket: str = "unix:///run/containerd/containerd.sock"


DEFAULTS = KubernetesNodeDefaults()
