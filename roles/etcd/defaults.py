"""Paths and tunables of the etcd role (the contract in `roles/etcd/__init__.py` names the same paths)."""

from __future__ import annotations

PKI_DIR = "/etc/etcd/pki"
CA_CERT = f"{PKI_DIR}/ca.crt"
SERVER_CERT = f"{PKI_DIR}/server.crt"
SERVER_KEY = f"{PKI_DIR}/server.key"
PEER_CERT = f"{PKI_DIR}/peer.crt"
PEER_KEY = f"{PKI_DIR}/peer.key"
HEALTHCHECK_CERT = f"{PKI_DIR}/healthcheck-client.crt"
HEALTHCHECK_KEY = f"{PKI_DIR}/healthcheck-client.key"

BACKUP_DIR = "/etc/keelson/backup"
BACKUP_CA = f"{BACKUP_DIR}/etcd-ca.crt"
BACKUP_CERT = f"{BACKUP_DIR}/etcd-client.crt"
BACKUP_KEY = f"{BACKUP_DIR}/etcd-client.key"

# kubeadm's layout for an external etcd (the control-plane role points ClusterConfiguration.etcd.external here)
KUBE_ETCD_CA = "/etc/kubernetes/pki/etcd/ca.crt"
KUBE_APISERVER_ETCD_CERT = "/etc/kubernetes/pki/apiserver-etcd-client.crt"
KUBE_APISERVER_ETCD_KEY = "/etc/kubernetes/pki/apiserver-etcd-client.key"

CONFIG_FILE = "/etc/etcd/etcd.conf.yml"
UNIT_NAME = "etcd.service"
UNIT_FILE = "/etc/systemd/system/etcd.service"
ETCD_USER = "etcd"
ETCD_BINARY = "/usr/bin/etcd"

PACKAGES = ("etcd-server", "etcd-client")

HEALTH_TIMEOUT_S = 90.0
"""How long the health gate polls `endpoint health --cluster` before failing the phase."""
HEALTH_POLL_S = 0.5

APPLIED_MARKER = "/etc/etcd/keelson-applied.sha256"
"""sha256 of the config, unit and certificates the running etcd was (re)started with; a mismatch means restart."""
PRE_RESTART_SNAPSHOT = "/var/lib/keelson/etcd-pre-restart.db"
"""A snapshot taken right before a rolling restart of a member (kept: one file, overwritten each time)."""
MIN_VERSION = (3, 4)
