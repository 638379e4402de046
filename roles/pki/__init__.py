"""PKI role: the etcd CA and certificates, made with `cryptography` on the operator side and kept in the cluster's
state dir (`roles/pki/store.py`); the "PKI | …" phases upload them to the hosts when their sha256 differs.

`cert_expiries(state) -> list[CertInfo(name, host, not_after, path)]` is what a cert-check command reads.
"""

from __future__ import annotations

from roles.pki.store import CertInfo, PKIError, PKIReport, cert_expiries, ensure_etcd_pki

__all__ = ["CertInfo", "PKIError", "PKIReport", "cert_expiries", "ensure_etcd_pki"]
