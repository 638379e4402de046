"""Backup and restore figures for `keelson bench etcd`: `backup_s`, `restore3_s`, `keys_lost`.

Run on a lab whose etcd the etcd role already set up (3 members): installs the backup agent with an S3 target (moto's
server on the lab bridge's gateway) and an SSH target (a worker, or the last master when there is no worker), writes
10 000 keys, takes a backup, writes and deletes more, restores, and counts the snapshot's keys missing afterwards.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.lab import Lab
from tests.backup_helpers import moto_s3, put_keys_script, s3_env

KEYS = 10_000
BUCKET = "etcd-bench"


def _keys(lab: Lab, cluster: Cluster, member: str) -> set[str]:
    from roles.etcd import commands

    address = str(cluster.host(member).address)
    get = commands.etcdctl(
        ["get", "/bench/", "--prefix", "--keys-only", "--consistency=s"],
        endpoints=f"https://{address}:2379",
        tls=commands.HEALTHCHECK_TLS,
    )
    return {line for line in lab.run(member, get, timeout=120).stdout.splitlines() if line}


def bench_backup_restore(lab: Lab, state_dir: Path) -> dict[str, Any]:
    """Needs etcd up on `lab` (state in `state_dir`). Returns the three DESIGN.md fields plus what they measured."""
    from backups import role
    from backups.operations import backup_now
    from backups.restore import restore_cluster
    from roles.engine.context import RunContext
    from roles.engine.runner import run_plan

    names = [h.name for h in lab.hosts]
    ssh_host = next((h.name for h in lab.hosts if h.role == "worker"), names[-1])
    with moto_s3(lab.gateway) as s3, s3_env(s3), tempfile.TemporaryDirectory() as work:
        s3.client().create_bucket(Bucket=BUCKET)
        data = yaml.safe_load(lab.inventory_path.read_text())
        data["backups"] = {
            "schedule": "daily",
            "retention": 3,
            "targets": [
                {"kind": "s3", "bucket": BUCKET, "endpoint_url": s3.url},
                {"kind": "ssh", "host": ssh_host, "path": "/var/backups/keelson-bench"},
            ],
        }
        inventory = Path(work) / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(data))
        cluster = load_inventory(inventory)
        report = run_plan(role.phases(cluster), RunContext(cluster=cluster, state_dir=state_dir))
        if not report.ok:
            raise RuntimeError(f"backups role failed: {report.hosts}")
        first = cluster.etcd_members[0]
        lab.run(first.name, put_keys_script("/bench/", 0, KEYS, str(first.address)), timeout=300)
        expected = _keys(lab, cluster, first.name)

        result = backup_now(cluster)
        if not result.ok:
            raise RuntimeError(result.describe())
        run = result.runs[result.taken_by[0]]
        snapshot = Path(work) / run["snapshot"]
        body = s3.client().get_object(Bucket=BUCKET, Key=run["snapshot"])["Body"].read()
        snapshot.write_bytes(body)

        lab.run(first.name, put_keys_script("/bench/x", 0, 500, str(first.address)), timeout=300)
        started = time.monotonic()
        restore_cluster(cluster, str(snapshot), lambda line: None)
        restore_s = time.monotonic() - started
        lost = max(len(expected - _keys(lab, cluster, m.name)) for m in cluster.etcd_members)
        snapshot_bytes = os.path.getsize(snapshot)
    return {
        "backup_s": round(float(run["duration_s"]), 3),
        "restore3_s": round(restore_s, 3),
        "keys_lost": lost,
        "backup_keys": len(expected),
        "snapshot_bytes": snapshot_bytes,
    }
