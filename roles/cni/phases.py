"""The "Cluster network | …" phase."""

from __future__ import annotations

from inventory.model import Cluster
from roles.cni.render import manifests
from roles.control_plane.manifests import ApplyManifests
from roles.engine.phase import AnyPhase, of_role


def phases(cluster: Cluster) -> list[AnyPhase]:
    return of_role("cni", [ApplyManifests(f"Cluster network | {cluster.network.cni}", manifests)])
