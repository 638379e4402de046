"""The "Workers | …" and "Nodes | …" phases, in order, for the apply plan (after the control plane and the CNI)."""

from __future__ import annotations

from inventory.model import OS, Cluster, Host
from roles.control_plane.nodes import ServingCertsAndReady
from roles.engine.phase import AnyPhase, Phase, of_role
from roles.worker.steps import steps


def linux_workers(cluster: Cluster) -> list[Host]:
    return [w for w in cluster.workers if w.os is OS.LINUX and w not in cluster.masters]


def phases(cluster: Cluster) -> list[AnyPhase]:
    return of_role("worker", [Phase("Workers | Join (in parallel)", linux_workers, steps()), ServingCertsAndReady()])
