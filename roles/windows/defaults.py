"""Defaults of the `windows` role: where a Windows worker keeps its binaries, configs and state, the pinned
versions of what only Windows needs, and the overlay network's fixed values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowsDefaults:
    kube_dir: str = r"C:\k"  # kubelet.exe, kube-proxy.exe, kubeadm.exe, kubectl.exe, flanneld.exe
    containerd_dir: str = r"C:\Program Files\containerd"  # containerd.exe, ctr.exe, containerd-shim-runhcs-v1.exe
    containerd_config: str = r"C:\Program Files\containerd\config.toml"
    containerd_version: str = "v2.3.4"  # the Windows release archive (containerd/containerd)
    containerd_pipe: str = "npipe:////./pipe/containerd-containerd"
    cni_bin_dir: str = r"C:\opt\cni\bin"
    cni_conf_dir: str = r"C:\etc\cni\net.d"
    cni_conf: str = r"C:\etc\cni\net.d\10-flannel.conf"
    kubelet_dir: str = r"C:\var\lib\kubelet"
    kubernetes_dir: str = r"C:\etc\kubernetes"
    keelson_dir: str = r"C:\etc\kubernetes\keelson"  # kubeadm's join config (the token: admins only), markers
    join_marker: str = r"C:\etc\kubernetes\keelson\join.done"
    kubelet_conf: str = r"C:\etc\kubernetes\kubelet.conf"  # written by the join: flanneld's credentials too
    marker_dir: str = r"C:\ProgramData\keelson\artifacts"  # what each installed archive put where
    download_dir: str = r"C:\Windows\Temp"  # private temp folders for downloads, removed after each install
    log_dir: str = r"C:\var\log"
    flannel_dir: str = r"C:\etc\kube-flannel"
    flannel_net_conf: str = r"C:\etc\kube-flannel\net-conf.json"
    flannel_subnet_file: str = r"C:\run\flannel\subnet.env"
    flannel_task: str = "flanneld"  # a scheduled task: flanneld has no Windows service entry point
    flannel_start: str = r"C:\k\keelson\start-flanneld.ps1"
    kube_proxy_dir: str = r"C:\etc\kube-proxy"
    kube_proxy_config: str = r"C:\etc\kube-proxy\config.yaml"
    kube_proxy_kubeconfig: str = r"C:\etc\kube-proxy\kubeconfig"  # client certificate system:kube-proxy (secret)
    cni_ipam_dir: str = r"C:\var\lib\cni\networks"  # host-local's leases (kube-proxy's source VIP is one)
    serving_cert: str = r"C:\var\lib\kubelet\pki\kubelet-server-current.pem"
    # flannel's vxlan backend on Windows (win-overlay): VNI 4096 and UDP 4789 are what Windows accepts, so the
    # Linux nodes' flannel must use them too (roles/cni renders them when the cluster has Windows workers)
    vxlan_vni: int = 4096
    vxlan_port: int = 4789
    network_name: str = "flannel.4096"  # flannel's default HNS network name for VNI 4096
    feature: str = "Containers"  # the Windows Server feature containerd needs (enabling it needs a reboot)
    firewall_rules: tuple[tuple[str, str, int], ...] = (
        ("keelson-kubelet", "TCP", 10250),
        ("keelson-vxlan", "UDP", 4789),
    )
    join_timeout_s: int = 600
    network_timeout_s: int = 300  # how long kube-proxy's step waits for flanneld's network
    service_restart_ms: int = 10000  # a crashed kubelet or kube-proxy comes back after this


DEFAULTS = WindowsDefaults()
