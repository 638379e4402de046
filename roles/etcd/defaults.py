"""Paths and tunables of the etcd role (the contract in `roles/etcd/__init__.py` names the same paths). The
certificates' paths and etcd's system user are the PKI role's (`roles/pki/defaults.py`), which puts them there."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EtcdDefaults:
    config_file: str = "/etc/etcd/etcd.conf.yml"
    unit_name: str = "etcd.service"
    unit_file: str = "/etc/systemd/system/etcd.service"
    bin_dir: str = "/usr/local/bin"  # etcd, etcdctl, etcdutl from the artifact set (or etcd's own release)
    binary: str = "/usr/local/bin/etcd"
    binaries: tuple[str, ...] = ("etcd", "etcdctl", "etcdutl")
    min_version: tuple[int, int] = (3, 5)  # kubeadm 1.37 requires an external etcd of 3.5.24 or newer

    health_timeout_s: float = 90.0
    """How long the health gate polls `endpoint health --cluster` before failing the phase."""
    health_poll_s: float = 0.5

    applied_marker: str = "/etc/etcd/keelson-applied.sha256"
    """sha256 of the config, unit and certificates the running etcd was (re)started with; a mismatch means restart."""
    pre_restart_snapshot: str = "/var/lib/keelson/etcd-pre-restart.db"
    """A snapshot taken right before a rolling restart of a member (kept: one file, overwritten each time)."""


DEFAULTS = EtcdDefaults()
