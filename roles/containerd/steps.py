"""containerd: the package, its config (validated before it is installed), registry mirrors, the service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inventory.model import Cluster
from roles.containerd import render
from roles.containerd.defaults import DEFAULTS
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import Fact, FactValues, FileInfo
from roles.engine.step import FileStep, PackagesStep, ServiceStep, Step
from roles.kubernetes_node.facts import CapabilityBounds, can_lower_oom_score


@dataclass
class ConfigStep(Step):
    """config.toml for the cluster's release and cgroup driver, validated before it replaces the live one; on a host
    whose root cannot lower an oom_score_adj (no CAP_SYS_RESOURCE in its bounding set) with
    `restrict_oom_score_adj`, else every pod sandbox fails to start."""

    name: str = "containerd | config"
    notifies: tuple[str, ...] = ("restart containerd",)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileInfo(DEFAULTS.config_path), CapabilityBounds())

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        restrict = not can_lower_oom_score(facts.get(CapabilityBounds()))
        text = render.config_toml(ctx.cluster, restrict_oom_score_adj=restrict)
        step = FileStep(DEFAULTS.config_path, text, validate="containerd --config %s config dump >/dev/null")
        return step.check(ctx, facts)


def steps(cluster: Cluster) -> list[Step]:
    mirrors = [
        FileStep(
            f"{DEFAULTS.registry_config_path}/{registry}/hosts.toml",
            render.hosts_toml(registry, urls),
            name=f"containerd | mirrors of {registry}",
        )
        for registry, urls in sorted(cluster.kubernetes.artifacts.registry_mirrors.items())
    ]
    return [
        PackagesStep(("containerd",), name="containerd | package"),
        ConfigStep(),
        *mirrors,
        ServiceStep("containerd", name="containerd | service"),
    ]
