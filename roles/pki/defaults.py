"""Tunables of the PKI role. Keys are ECDSA P-256 (fast to make, accepted by etcd and Kubernetes)."""

from __future__ import annotations

import datetime as dt

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
"""A leaf certificate closer than this to its expiry is re-issued on the next apply."""
BACKDATE = dt.timedelta(minutes=5)
"""notBefore is set this far in the past so a host whose clock lags a little accepts a fresh certificate."""

STATE_ROOT = "pki"
ETCD_DIR = f"{STATE_ROOT}/etcd"
INVENTORY = f"{STATE_ROOT}/inventory.json"
