"""Role `cni`: the pod network from the inventory's `network.cni`, applied from a master once the control plane
answers (server-side apply; skipped when the cluster already has this exact manifest)."""

from __future__ import annotations

from roles.cni.phases import phases

__all__ = ["phases"]
