"""`keelson upgrade --to VERSION`: a rolling Kubernetes upgrade, one node at a time (the plan: roles/plans/upgrade.py).

    versions.py   pure: versions, the skew rules, what a node's host says about its own upgrade (a fact + parser)
    steps.py      the target's kubeadm/kubectl staged, its images imported and pinned
    phases.py     the phases in order
    preflight.py  refuse before touching anything: inventory, skew, nodes Ready, etcd healthy, target set, backup
    nodes.py      per node: drain, kubeadm upgrade apply|node, the kubelet at the target, health gate, uncordon

The inventory's `kubernetes.version` is the source of truth: the command upgrades the cluster TO what the inventory
says and refuses when `--to` differs from it (edit the inventory first; `keelson apply` then keeps that version).
Each node's done-state is read from its host (the kubelet binary and the running kubelet, the control-plane static
pod manifests): a rerun after a failure skips the nodes already at the target and resumes at the one that failed.
"""

from __future__ import annotations

from roles.upgrade.phases import phases

__all__ = ["phases"]
