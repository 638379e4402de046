"""The "Kubernetes node | …" phases, in order, for the apply plan (after the container runtime)."""

from __future__ import annotations

from inventory.model import OS, Cluster, Host
from provision.artifacts.catalog import release
from provision.artifacts.sources import Resolver, ca_step
from roles.engine.phase import Phase, of_role
from roles.engine.step import Step
from roles.kubernetes_node.steps import CgroupNote, ImagesStep, kubelet_unit_steps, node_artifacts


def node_hosts(cluster: Cluster) -> list[Host]:
    """Linux hosts that run a kubelet: the masters and the Linux workers."""
    return [h for h in cluster.hosts if h.os is OS.LINUX and (h in cluster.masters or h in cluster.workers)]


def phases(cluster: Cluster) -> list[Phase]:
    spec = cluster.kubernetes
    resolver = Resolver(spec.artifacts, release(spec.release_version))
    ca = ca_step(spec.artifacts)
    steps: list[Step] = [*([ca] if ca else []), node_artifacts(resolver), *kubelet_unit_steps(), CgroupNote()]
    out = [Phase("Kubernetes node | Binaries, CNI plugins, kubelet unit", node_hosts, steps)]
    if spec.artifacts.image_mode == "import":
        images = ImagesStep(resolver)
        out.append(Phase("Kubernetes node | Images (air-gapped import)", node_hosts, [images]))
    return of_role("kubernetes_node", out)
