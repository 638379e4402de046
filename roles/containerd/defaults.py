"""Defaults of the `containerd` role."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerdDefaults:
    config_path: str = "/etc/containerd/config.toml"
    # The pause image kubeadm 1.31 expects; override per cluster when images come from a private registry.
    sandbox_image: str = "registry.k8s.io/pause:3.10"
    systemd_cgroup: bool = True


DEFAULTS = ContainerdDefaults()
