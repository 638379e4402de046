"""PKI role: the etcd CA and certificates, made with `cryptography` on the operator side and kept in the cluster's
state dir; the "PKI | …" phases check that the hosts trust that CA, issue what is missing or stale, and upload the
files when their sha256 differs.

Modules: `certs.py` (X.509, pure), `store.py` (the operator-side store: layout, issue/reuse, expiries),
`issue.py` (the operator-side CustomPhase), `steps.py` (host checks and uploads), `phases.py` (the order),
`expiry.py` (every certificate on the hosts and in the state dir with its expiry: `keelson certs check`).
`roles.pki.store.cert_expiries(state) -> list[CertInfo(name, host, not_after, path)]` is what it reads of the state.
"""

from __future__ import annotations

from roles.pki.phases import phases

__all__ = ["phases"]
