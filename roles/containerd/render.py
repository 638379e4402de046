"""Render containerd's files from the templates beside this module. Pure: inventory and defaults in, text out."""

from __future__ import annotations

from functools import lru_cache

from inventory.model import Cluster
from provision.artifacts.catalog import release
from roles.containerd.defaults import DEFAULTS, ContainerdDefaults
from roles.templating import render


def config_toml(cluster: Cluster, restrict_oom_score_adj: bool = False, d: ContainerdDefaults = DEFAULTS) -> str:
    return _config_toml(
        restrict_oom_score_adj,
        release(cluster.kubernetes.release_version).pause_image,
        cluster.kubernetes.cgroup_driver == "systemd",
        d.registry_config_path,
    )


@lru_cache(maxsize=16)
def _config_toml(
    restrict_oom_score_adj: bool, sandbox_image: str, systemd_cgroup: bool, registry_config_path: str
) -> str:
    """Rendered once per content (the same for every host of a run but those that cannot lower an oom_score_adj)."""
    return render(
        __file__,
        "config.toml.j2",
        restrict_oom_score_adj=restrict_oom_score_adj,
        sandbox_image=sandbox_image,
        systemd_cgroup=systemd_cgroup,
        registry_config_path=registry_config_path,
    )


def hosts_toml(registry: str, mirrors: list[str]) -> str:
    return render(__file__, "hosts.toml.j2", registry=registry, mirrors=mirrors)
