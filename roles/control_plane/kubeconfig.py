"""The admin kubeconfig, made on the operator side from keelson's cluster CA: a client certificate in kubeadm's
cluster-admins group, pointing at the API through the VIP. Kept in the state dir and reused while it has more than
30 days left."""

from __future__ import annotations

import base64
import datetime as dt

import yaml

from inventory.errors import KeelsonError
from inventory.model import Cluster
from roles.pki import kubernetes as k8s_pki
from roles.pki.certs import KeyPair
from roles.state import StateDir

USER = "keelson-admin"
ADMIN = f"{k8s_pki.PREFIX}/{USER}"
RENEW_BEFORE = dt.timedelta(days=30)


def admin_pair(state: StateDir, now: dt.datetime | None = None) -> KeyPair:
    now = now or dt.datetime.now(dt.UTC)
    pki = k8s_pki.load(state)
    if pki is None:
        raise KeelsonError(
            f"the cluster's Kubernetes CA is not in the state dir {state.path}", hint="run keelson apply first"
        )
    if state.exists(f"{ADMIN}.crt") and state.exists(f"{ADMIN}.key"):
        pair = KeyPair(state.read(f"{ADMIN}.crt"), state.read(f"{ADMIN}.key"))
        if pair.cert.not_valid_after_utc - now > RENEW_BEFORE and pair.cert.issuer == pki.ca.cert.subject:
            return pair
    pair = k8s_pki.admin_credentials(pki, USER, now)
    state.write(f"{ADMIN}.key", pair.key_pem)
    state.write(f"{ADMIN}.crt", pair.cert_pem)
    return pair


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def server_url(cluster: Cluster) -> str:
    return f"https://{cluster.api_endpoint}"


def admin_kubeconfig(cluster: Cluster, state: StateDir) -> str:
    pair = admin_pair(state)
    pki = k8s_pki.load(state)
    assert pki is not None
    context = f"{USER}@{cluster.name}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster.name,
                "cluster": {"server": server_url(cluster), "certificate-authority-data": _b64(pki.ca.cert_pem)},
            }
        ],
        "users": [
            {
                "name": USER,
                "user": {"client-certificate-data": _b64(pair.cert_pem), "client-key-data": _b64(pair.key_pem)},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster.name, "user": USER}}],
        "current-context": context,
        "preferences": {},
    }
    text: str = yaml.safe_dump(doc, sort_keys=False)
    return text
