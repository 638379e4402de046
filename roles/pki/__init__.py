"""PKI role: the etcd CA and certificates, made with `cryptography` on the operator side and kept in the cluster's
state dir (`roles/pki/store.py`); the "PKI | …" phases (`roles/pki/role.py`) check that the hosts trust that CA,
issue what is missing or stale, and upload the files when their sha256 differs.

`cert_expiries(state) -> list[CertInfo(name, host, not_after, path)]` is what a cert-check command reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roles.pki.store import CertInfo, PKIError, PKIReport, cert_expiries, ensure_etcd_pki, plan_etcd_pki

if TYPE_CHECKING:
    from inventory.model import Cluster
    from roles.engine.phase import AnyPhase

__all__ = ["CertInfo", "PKIError", "PKIReport", "cert_expiries", "ensure_etcd_pki", "phases", "plan_etcd_pki"]


def phases(cluster: Cluster) -> list[AnyPhase]:
    """The "PKI | …" phases, in order, for `roles/plan.py`."""
    from roles.pki.role import phases as build

    return build(cluster)
