"""The Kubernetes control plane's shared PKI, made once on the operator side (like the etcd CA) and uploaded to
every master before kubeadm runs: kubeadm then makes each master's own leaf certificates from it.

Why keelson's own, not `kubeadm init --upload-certs`: the CA never leaves keelson's state dir and the masters, no
certificate secret with a 2-hour life sits in kube-system, any master can be (re)joined at any time, and the
discovery hash that joins pin is known before the cluster exists.

State layout (dirs 0700, files 0600):
    pki/kubernetes/ca.crt, ca.key                         the cluster CA (ECDSA P-256, 10 years)
    pki/kubernetes/front-proxy-ca.crt, front-proxy-ca.key the aggregation layer's CA
    pki/kubernetes/sa.key, sa.pub                         the service-account token signing key
    pki/kubernetes/encryption-key                         32 random bytes (base64) for Secrets at rest
    pki/kubernetes/bootstrap-token                        the current join token (abcdef.0123456789abcdef)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import secrets
import string
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from roles.pki.certs import CertSpec, KeyPair, Usage, issue, make_ca
from roles.state import StateDir

PREFIX = "pki/kubernetes"
CA = f"{PREFIX}/ca"
FRONT_PROXY_CA = f"{PREFIX}/front-proxy-ca"
SA_KEY = f"{PREFIX}/sa.key"
SA_PUB = f"{PREFIX}/sa.pub"
ENCRYPTION_KEY = f"{PREFIX}/encryption-key"
BOOTSTRAP_TOKEN = f"{PREFIX}/bootstrap-token"
ADMIN_GROUP = "kubeadm:cluster-admins"  # kubeadm binds it to cluster-admin


@dataclass(frozen=True)
class KubernetesPKI:
    ca: KeyPair
    front_proxy_ca: KeyPair
    sa_key: bytes = field(repr=False)
    sa_pub: bytes

    @property
    def discovery_hash(self) -> str:
        """What `kubeadm join --discovery-token-ca-cert-hash` pins: sha256 of the CA's SubjectPublicKeyInfo."""
        spki = self.ca.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "sha256:" + hashlib.sha256(spki).hexdigest()


def _pair(state: StateDir, name: str) -> KeyPair | None:
    crt, key = f"{name}.crt", f"{name}.key"
    if state.exists(crt) and state.exists(key):
        return KeyPair(state.read(crt), state.read(key))
    return None


def load(state: StateDir) -> KubernetesPKI | None:
    """The stored PKI, or None when it was never made (a fresh cluster's dry run)."""
    ca, front = _pair(state, CA), _pair(state, FRONT_PROXY_CA)
    if ca is None or front is None or not state.exists(SA_KEY) or not state.exists(SA_PUB):
        return None
    return KubernetesPKI(ca, front, state.read(SA_KEY), state.read(SA_PUB))


def ensure(state: StateDir, now: dt.datetime | None = None) -> KubernetesPKI:
    """Make whatever part is missing (each piece once; an existing piece is never replaced), return the whole."""
    now = now or dt.datetime.now(dt.UTC)
    for name, common_name in ((CA, "kubernetes"), (FRONT_PROXY_CA, "front-proxy-ca")):
        if _pair(state, name) is None:
            pair = make_ca(common_name, now)
            state.write(f"{name}.key", pair.key_pem)
            state.write(f"{name}.crt", pair.cert_pem)
    if not state.exists(SA_KEY) or not state.exists(SA_PUB):
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        state.write(SA_KEY, pem)
        state.write(SA_PUB, pub)
    found = load(state)
    assert found is not None
    return found


def encryption_key(state: StateDir) -> str:
    """The key that encrypts Secrets in etcd: 32 random bytes, base64, made once."""
    return state.secret(ENCRYPTION_KEY, lambda: base64.b64encode(os.urandom(32)).decode())


_TOKEN_ALPHABET = string.ascii_lowercase + string.digits


def new_token() -> str:
    pick = secrets.choice
    return "".join(pick(_TOKEN_ALPHABET) for _ in range(6)) + "." + "".join(pick(_TOKEN_ALPHABET) for _ in range(16))


def bootstrap_token(state: StateDir) -> str:
    return state.secret(BOOTSTRAP_TOKEN, new_token)


def rotate_bootstrap_token(state: StateDir) -> str:
    token = new_token()
    state.write(BOOTSTRAP_TOKEN, token.encode() + b"\n")
    return token


def admin_credentials(pki: KubernetesPKI, user: str, now: dt.datetime | None = None, days: int = 365) -> KeyPair:
    """A client certificate for `user` in kubeadm's cluster-admins group, signed by the cluster CA."""
    now = now or dt.datetime.now(dt.UTC)
    spec = CertSpec(
        name="admin", host=None, common_name=user, usages=frozenset({Usage.CLIENT}), organization=ADMIN_GROUP, days=days
    )
    return issue(pki.ca, spec, now)
