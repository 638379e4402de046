"""Tunables and paths of the PKI role. Keys are ECDSA P-256 (fast to make, accepted by etcd and Kubernetes).

The host paths are where the PKI phases put each file; etcd, the backup agent and the apiserver read them there (the
contract in `roles/etcd/__init__.py` lists the same files). The PKI role sits below the roles that consume its
certificates: they import these paths, it imports none of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class PKIDefaults:
    ca_days: int = 3650
    leaf_days: int = 365
    renew_before: dt.timedelta = dt.timedelta(days=30)
    """A leaf certificate closer than this to its expiry is re-issued on the next apply."""
    backdate: dt.timedelta = dt.timedelta(minutes=5)
    """notBefore is set this far in the past so a host whose clock lags a little accepts a fresh certificate."""

    # operator side, relative to the cluster's state dir
    etcd_state_dir: str = "pki/etcd"
    inventory: str = "pki/inventory.json"

    # on every etcd member
    etcd_user: str = "etcd"
    """Owns etcd's own keys (the PKI phase creates it before etcd's package would); etcd runs as this user."""
    etcd_ca_cert: str = "/etc/etcd/pki/ca.crt"
    etcd_server_cert: str = "/etc/etcd/pki/server.crt"
    etcd_server_key: str = "/etc/etcd/pki/server.key"
    etcd_peer_cert: str = "/etc/etcd/pki/peer.crt"
    etcd_peer_key: str = "/etc/etcd/pki/peer.key"
    healthcheck_cert: str = "/etc/etcd/pki/healthcheck-client.crt"
    healthcheck_key: str = "/etc/etcd/pki/healthcheck-client.key"
    backup_dir: str = "/etc/keelson/backup"
    backup_ca: str = "/etc/keelson/backup/etcd-ca.crt"
    backup_cert: str = "/etc/keelson/backup/etcd-client.crt"
    backup_key: str = "/etc/keelson/backup/etcd-client.key"

    # on every master: the Kubernetes CAs and service-account key (kubeadm's layout), and kubeadm's layout for an
    # external etcd (ClusterConfiguration.etcd.external points here)
    kube_pki_dir: str = "/etc/kubernetes/pki"
    kube_ca_cert: str = "/etc/kubernetes/pki/ca.crt"
    kube_etcd_ca: str = "/etc/kubernetes/pki/etcd/ca.crt"
    kube_apiserver_etcd_cert: str = "/etc/kubernetes/pki/apiserver-etcd-client.crt"
    kube_apiserver_etcd_key: str = "/etc/kubernetes/pki/apiserver-etcd-client.key"


DEFAULTS = PKIDefaults()
