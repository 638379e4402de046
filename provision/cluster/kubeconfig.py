"""The admin kubeconfig as a resource: made on the operator side from the cluster CA in the operator state (the
same function as `keelson kubeconfig`: roles/control_plane/kubeconfig.py), kept in the stack as a secret output,
and made again only when the CA or the API endpoint changes or the client certificate has less than 30 days left."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import yaml
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from inventory.errors import KeelsonError
from provision.cluster.workdir import cluster_from, private_dir, write_state
from roles.state import StateDir

# The roles are imported where they are used: the program process only pickles this provider (and starts faster);
# the provider process imports them on its first call.


class KubeconfigFailed(Exception):
    """No kubeconfig could be made (the cluster CA is not in the operator state yet)."""


def identity(props: dict[str, Any]) -> str:
    """What the kubeconfig depends on: the API endpoint and the cluster CA certificate."""
    from roles.control_plane.kubeconfig import server_url
    from roles.pki import kubernetes as k8s_pki

    cluster = cluster_from(props["inventory"])
    with private_dir() as work:
        pki = k8s_pki.load(write_state(work / "state", props.get("state") or {}))
        ca = pki.ca.cert_pem if pki is not None else b""
    return hashlib.sha256(server_url(cluster).encode() + b"\0" + ca).hexdigest()


def expires(kubeconfig: str) -> dt.datetime | None:
    from cryptography import x509  # here: the program process imports this module but never reads a certificate

    try:
        user = yaml.safe_load(kubeconfig)["users"][0]["user"]
        cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    except (KeyError, IndexError, TypeError, ValueError, yaml.YAMLError):
        return None
    return cert.not_valid_after_utc


def make(props: dict[str, Any]) -> dict[str, Any]:
    from roles.control_plane.kubeconfig import admin_kubeconfig

    cluster = cluster_from(props["inventory"])
    with private_dir() as work:
        state = write_state(work / "state", props.get("state") or {})
        try:
            text = admin_kubeconfig(cluster, StateDir(state.path))
        except KeelsonError as exc:
            raise KubeconfigFailed(str(exc)) from None
    return {**props, "kubeconfig": text, "identity": identity(props)}


class KubeconfigProvider(ResourceProvider):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        from provision.cluster.provider import has_unknown
        from roles.control_plane.kubeconfig import RENEW_BEFORE

        if has_unknown(news):
            return DiffResult(changes=True, replaces=[], stables=[], delete_before_replace=False)
        left = expires(str(olds.get("kubeconfig") or ""))
        renew = left is None or left - dt.datetime.now(dt.UTC) < RENEW_BEFORE
        changed = renew or identity(news) != olds.get("identity")
        return DiffResult(changes=changed, replaces=[], stables=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="admin-kubeconfig", outs=make(props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=make(news))
