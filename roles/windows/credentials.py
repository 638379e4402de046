"""Operator-side credentials a Windows worker's own services use (they run as Windows services, not as pods with a
service account): kube-proxy's client certificate, `system:kube-proxy` — the user Kubernetes' default
ClusterRoleBinding `system:node-proxier` grants what kube-proxy reads — signed by keelson's cluster CA, made once and
kept in the state dir like the rest of the PKI (`pki/kubernetes/windows-kube-proxy.{crt,key}`, 0600).
flanneld uses the kubelet's own credentials (C:\\etc\\kubernetes\\kubelet.conf): a node may read nodes and patch its
own node's status, which is all flannel's kube subnet manager does."""

from __future__ import annotations

import datetime as dt

from inventory.model import Cluster
from roles.pki import kubernetes as k8s_pki
from roles.pki.certs import CertSpec, KeyPair, Usage, issue
from roles.state import StateDir
from roles.windows import render

KUBE_PROXY = f"{k8s_pki.PREFIX}/windows-kube-proxy"
KUBE_PROXY_USER = "system:kube-proxy"


def kube_proxy_pair(state: StateDir, pki: k8s_pki.KubernetesPKI, now: dt.datetime | None = None) -> KeyPair:
    crt, key = f"{KUBE_PROXY}.crt", f"{KUBE_PROXY}.key"
    if state.exists(crt) and state.exists(key):
        return KeyPair(state.read(crt), state.read(key))
    spec = CertSpec(name="windows-kube-proxy", host=None, common_name=KUBE_PROXY_USER, usages=frozenset({Usage.CLIENT}))
    pair = issue(pki.ca, spec, now or dt.datetime.now(dt.UTC))
    state.write(key, pair.key_pem)
    state.write(crt, pair.cert_pem)
    return pair


def kube_proxy_kubeconfig(cluster: Cluster, node_name: str, state: StateDir) -> str:
    """kube-proxy's kubeconfig for one Windows worker. Before the cluster's PKI exists (a fresh cluster's dry run)
    it says so instead: the PKI phase makes the CA on the first apply, before this file is written."""
    pki = k8s_pki.load(state)
    if pki is None:
        return "# the cluster CA does not exist yet: keelson's PKI phase makes it before this file is written\n"
    pair = kube_proxy_pair(state, pki)
    return render.kubeconfig(cluster, node_name, KUBE_PROXY_USER, pki.ca.cert_pem, pair.cert_pem, pair.key_pem)
