"""Defaults of the `containerd` role."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerdDefaults:
    config_path: str = "/etc/containerd/config.toml"
    registry_config_path: str = "/etc/containerd/certs.d"  # one <registry>/hosts.toml per mirrored registry


DEFAULTS = ContainerdDefaults()
