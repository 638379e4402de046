"""The "Upgrade | …" phases, in order (the plan around them, with the --to check: roles/plans/upgrade.py)."""

from __future__ import annotations

from inventory.model import Cluster
from provision.artifacts.catalog import release
from provision.artifacts.sources import Resolver, ca_step
from roles.control_plane.phases import masters
from roles.control_plane.steps import KubeadmConfigStep
from roles.engine.phase import AnyPhase, Phase, of_role
from roles.engine.step import Step
from roles.upgrade.nodes import UpgradeNodes, UpgradeSpec, linux_workers
from roles.upgrade.preflight import Options, Preflight, node_hosts
from roles.upgrade.steps import PinnedImagesStep, stage_kubeadm
from roles.upgrade.versions import Version


def phases(
    cluster: Cluster, target: Version, options: Options | None = None, drain_timeout_s: int = 300
) -> list[AnyPhase]:
    artifacts = cluster.kubernetes.artifacts
    resolver = Resolver(artifacts, release(str(target)))
    spec = UpgradeSpec(target, resolver, drain_timeout_s=drain_timeout_s)
    ca = ca_step(artifacts)
    stage: list[Step] = [*([ca] if ca else []), stage_kubeadm(resolver)]
    if artifacts.image_mode == "import":
        stage.append(PinnedImagesStep(resolver))
    return of_role(
        "upgrade",
        [
            Preflight(spec, options or Options()),
            # one node at a time: an image import is heavy disk I/O beside a running etcd member (the drill's five
            # lab nodes importing at once, one disk, made two apiservers' etcd readiness check fail together)
            Phase(
                "Upgrade | Stage the target's kubeadm, kubectl and images (nothing restarts; one node at a time)",
                node_hosts,
                stage,
                serial=True,
            ),
            UpgradeNodes(spec, "first"),
            UpgradeNodes(spec, "masters"),
            UpgradeNodes(spec, "workers"),
            Phase(
                "Upgrade | kubeadm configuration files at the new version (masters)",
                masters,
                [KubeadmConfigStep("init"), KubeadmConfigStep("join-control-plane")],
            ),
            Phase(
                "Upgrade | kubeadm configuration files at the new version (workers)",
                linux_workers,
                [KubeadmConfigStep("join-worker")],
            ),
        ],
    )
