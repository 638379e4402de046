"""Defaults of the `common` role: what every Kubernetes host needs before a container runtime."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CommonDefaults:
    modules: tuple[str, ...] = ("overlay", "br_netfilter")
    sysctl: dict[str, str] = field(
        default_factory=lambda: {
            "net.bridge.bridge-nf-call-iptables": "1",
            "net.bridge.bridge-nf-call-ip6tables": "1",
            "net.ipv4.ip_forward": "1",
        }
    )
    packages: tuple[str, ...] = ("conntrack", "socat", "iptables", "iproute2", "kmod", "curl", "ca-certificates")
    modules_file: str = "/etc/modules-load.d/keelson.conf"
    sysctl_file: str = "/etc/sysctl.d/99-keelson-kubernetes.conf"
    hosts_marker: str = "keelson"


DEFAULTS = CommonDefaults()
