"""Role `backups`: etcd snapshots on a timer, copied offsite and verified. The last phases of the apply.

On every etcd member: the self-contained agent (`backups/agent.py` → /usr/local/lib/keelson/backup_agent.py, the
host's python3 + boto3), its JSON config (no secrets), the S3 credentials in a 0600 EnvironmentFile, an SSH key and a
pinned known_hosts for the SSH backup host, `keelson-etcd-backup.service` + `.timer` (OnCalendar = backups.schedule).
On an inventory host that is an SSH backup target: keelson's backup key in the target user's authorized_keys.
With `backups.enabled: false` the timer is disabled instead. Paths in `defaults.py`.

backups is a top-level package (DESIGN.md: the agent, the operations `keelson backup now|list`, the restore); its
role part is this folder, the same skeleton as every role under `roles/`.
"""

from __future__ import annotations

from backups.role.phases import phases

__all__ = ["phases"]
