"""A Linux worker's join: its kubeadm config, then `kubeadm join` (skipped once its marker says it joined)."""

from __future__ import annotations

from roles.control_plane.steps import JoinStep, KubeadmConfigStep
from roles.engine.step import Step


def steps() -> list[Step]:
    return [KubeadmConfigStep("join-worker"), JoinStep("worker")]
