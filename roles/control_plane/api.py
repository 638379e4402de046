"""A small client of the Kubernetes API for the operator side (status, checks): HTTPS to the VIP with the admin
client certificate from keelson's state, the cluster CA pinned. GET only."""

from __future__ import annotations

import json
import ssl
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import Cluster
from roles.control_plane.kubeconfig import admin_pair, server_url
from roles.pki import kubernetes as k8s_pki
from roles.state import StateDir


class APIUnavailable(KeelsonError):
    """The Kubernetes API did not answer."""


class KubeAPI:
    def __init__(self, cluster: Cluster, state: StateDir, timeout: float = 5.0) -> None:
        pair = admin_pair(state)
        pki = k8s_pki.load(state)
        assert pki is not None
        self.base = server_url(cluster)
        self.timeout = timeout
        self.context = ssl.create_default_context(cadata=pki.ca.cert_pem.decode())
        with tempfile.TemporaryDirectory(prefix="keelson-api-") as tmp:  # 0700: the key is readable by us only
            cert, key = Path(tmp) / "admin.crt", Path(tmp) / "admin.key"
            cert.write_bytes(pair.cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(pair.key_pem)
            self.context.load_cert_chain(cert, key)

    def get(self, path: str) -> Any:
        url = self.base + path
        try:
            with urllib.request.urlopen(url, timeout=self.timeout, context=self.context) as response:  # noqa: S310 - https, our base
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise APIUnavailable(f"GET {url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise APIUnavailable(f"GET {url}: {exc}", hint="is the VIP up? keelson status shows who holds it") from exc
