"""Role `worker`: the Linux workers join the cluster, all at once, after the control plane and the pod network; then
every kubelet's serving certificate is approved (each checked against the inventory) and every node must be Ready.

The join itself — the per-node kubeadm config, `kubeadm join` with its markers — is the control-plane role's
(`roles/control_plane/steps.py`), shared with the masters' join. Windows workers are a later role.
"""

from __future__ import annotations

from roles.worker.phases import phases

__all__ = ["phases"]
