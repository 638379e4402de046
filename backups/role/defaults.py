"""Paths and tunables of the backups role: where the agent, its config, its secrets and its snapshots live on every
etcd member. `keelson backup …` and the restore read the same paths from here; the agent's own defaults
(`backups/agent.py`, self-contained) are the same values."""

from __future__ import annotations

from dataclasses import dataclass

from roles.pki.defaults import DEFAULTS as PKI


@dataclass(frozen=True)
class BackupDefaults:
    agent_path: str = "/usr/local/lib/keelson/backup_agent.py"
    config_path: str = "/etc/keelson/backup.json"
    env_path: str = "/etc/keelson/backup.env"
    # beside the agent's etcd client certificate, which the PKI role puts in the same folder
    ssh_key_path: str = f"{PKI.backup_dir}/id_ed25519"
    known_hosts_path: str = f"{PKI.backup_dir}/known_hosts"
    local_dir: str = "/var/backups/keelson/etcd"
    status_dir: str = "/var/lib/keelson/backup"
    service: str = "keelson-etcd-backup.service"
    timer: str = "keelson-etcd-backup.timer"
    unit_dir: str = "/etc/systemd/system"
    randomized_delay_s: int = 20
    ssh_key_state: str = "backup/id_ed25519"
    """The backup SSH key on the operator side, in the cluster's state dir (made once)."""


DEFAULTS = BackupDefaults()
