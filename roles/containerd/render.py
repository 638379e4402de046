"""Render containerd's files from the templates beside this module. Pure: inventory and defaults in, text out."""

from __future__ import annotations

from inventory.model import Cluster
from provision.artifacts.catalog import release
from roles.containerd.defaults import DEFAULTS, ContainerdDefaults
from roles.templating import render


def config_toml(cluster: Cluster, restrict_oom_score_adj: bool = False, d: ContainerdDefaults = DEFAULTS) -> str:
    return render(
        __file__,
        "config.toml.j2",
        restrict_oom_score_adj=restrict_oom_score_adj,
        sandbox_image=release(cluster.kubernetes.release_version).pause_image,
        systemd_cgroup=cluster.kubernetes.cgroup_driver == "systemd",
        registry_config_path=d.registry_config_path,
    )


def hosts_toml(registry: str, mirrors: list[str]) -> str:
    return render(__file__, "hosts.toml.j2", registry=registry, mirrors=mirrors)
