"""Backup and restore figures for `keelson bench etcd`: `backup_s`, `backup_cli_s`, `restore3_s`, `keys_lost`.

Run on a lab whose etcd the etcd role already set up (3 members): installs the backup agent with an S3 target (moto's
server on the lab bridge's gateway, `provision.lab.s3_endpoint`) and an SSH target (a worker, or the last master when
there is no worker), writes 10 000 keys and reads the whole keyspace back (the snapshot's, since nothing writes in
between), takes a backup with `keelson backup now`, then changes the cluster the way a bad day would — deletes 100 of
the keys and writes 500 new ones — restores the snapshot, and compares what each member serves with it.

backup_s      the agent's own timer: snapshot, both verifications, gzip, both uploads verified
backup_cli_s  wall time of the `keelson backup now` process, as a user runs it
restore3_s    the restore plan (`roles.plans.restore`) from a local snapshot file to every member healthy at the
              snapshot's revision
keys_lost     keys that differ from the snapshot on the worst member after the restore (missing, changed, or written
              after it and still there: `etcd_keys.keys_lost`); 0 when every member's keyspace digest is the snapshot's
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.bench import BenchError, etcd_keys
from provision.bench.cli import run_keelson
from provision.bench.etcd_keys import Keyspace
from provision.lab import Lab
from provision.lab.s3_endpoint import moto_s3, s3_env

KEYS = 10_000
DELETED = 100  # keys /bench/0000xx: written before the snapshot, deleted after it
ADDED = 500  # keys /bench/x…: written after the snapshot
PREFIX = "/bench/"
BUCKET = "etcd-bench"


def keyspace(lab: Lab, cluster: Cluster, member: str) -> Keyspace:
    address = str(cluster.host(member).address)
    return Keyspace.parse(lab.run(member, etcd_keys.get_script(address, PREFIX), timeout=120).stdout)


def members_keyspace(lab: Lab, cluster: Cluster) -> dict[str, Keyspace]:
    return {m.name: keyspace(lab, cluster, m.name) for m in cluster.etcd_members}


def damage(lab: Lab, cluster: Cluster) -> None:
    """What happens after the snapshot: some keys deleted, new keys written."""
    first = cluster.etcd_members[0]
    address = str(first.address)
    deleted = lab.run(first.name, etcd_keys.etcdctl_on(address, "del", f"{PREFIX}0000", "--prefix")).stdout.strip()
    if deleted != str(DELETED):
        raise BenchError(f"expected to delete {DELETED} keys after the snapshot, etcd deleted {deleted!r}")
    lab.run(first.name, etcd_keys.put_keys_script(f"{PREFIX}x", 0, ADDED, address), timeout=300)


def restore_and_compare(
    snapshot: Keyspace,
    damage: Callable[[], None],
    restore: Callable[[], object],
    read: Callable[[], dict[str, Keyspace]],
) -> tuple[float, int, dict[str, Keyspace]]:
    """Damage the cluster, restore, read every member: (restore seconds, keys_lost, what each member serves).

    The damage is checked to show before the restore (else keys_lost could not fail), and the figure is the pure
    `etcd_keys.keys_lost` of what the members serve afterwards."""
    damage()
    if etcd_keys.keys_lost(snapshot, read()) == 0:
        raise BenchError("the cluster still matches the snapshot after the damage: keys_lost could not fail")
    started = time.monotonic()
    restore()
    seconds = time.monotonic() - started
    after = read()
    return seconds, etcd_keys.keys_lost(snapshot, after), after


def _with_backups(lab: Lab, s3_url: str, ssh_host: str, out: Path) -> Path:
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["backups"] = {
        "schedule": "daily",
        "retention": 3,
        "targets": [
            {"kind": "s3", "bucket": BUCKET, "endpoint_url": s3_url},
            {"kind": "ssh", "host": ssh_host, "path": "/var/backups/keelson-bench"},
        ],
    }
    out.write_text(yaml.safe_dump(data))
    return out


def bench_backup_restore(lab: Lab, state_dir: Path) -> dict[str, Any]:
    """Needs etcd up on `lab` (state in `state_dir`). Returns the DESIGN.md fields plus what they measured."""
    from backups import role
    from roles.engine.context import RunContext
    from roles.engine.runner import run_plan
    from roles.plans.restore import restore

    names = [h.name for h in lab.hosts]
    ssh_host = next((h.name for h in lab.hosts if h.role == "worker"), names[-1])
    with moto_s3(lab.gateway) as s3, s3_env(s3), tempfile.TemporaryDirectory() as work:
        s3.client().create_bucket(Bucket=BUCKET)
        inventory = _with_backups(lab, s3.url, ssh_host, Path(work) / "inventory.yaml")
        cluster = load_inventory(inventory)
        report = run_plan(role.phases(cluster), RunContext(cluster=cluster, state_dir=state_dir))
        if not report.ok:
            raise BenchError(f"backups role failed: { {h: s.errors for h, s in report.hosts.items() if s.errors} }")
        first = cluster.etcd_members[0]
        lab.run(first.name, etcd_keys.put_keys_script(PREFIX, 0, KEYS, str(first.address)), timeout=300)
        snapshot_keys = keyspace(lab, cluster, first.name)  # nothing writes until the snapshot is taken

        cli = run_keelson("backup", "now", "-i", str(inventory), "--json", env=os.environ).check()
        result = json.loads(cli.stdout.strip().splitlines()[-1])
        run = result["runs"][result["taken_by"][0]]
        snapshot = Path(work) / run["snapshot"]
        snapshot.write_bytes(s3.client().get_object(Bucket=BUCKET, Key=run["snapshot"])["Body"].read())

        restore_s, lost, after = restore_and_compare(
            snapshot_keys,
            damage=lambda: damage(lab, cluster),
            restore=lambda: restore(cluster, str(snapshot), state_dir=state_dir),
            read=lambda: members_keyspace(lab, cluster),
        )
        snapshot_bytes = os.path.getsize(snapshot)
    return {
        "backup_s": round(float(run["duration_s"]), 3),
        "backup_cli_s": round(cli.wall_s, 3),
        "restore3_s": round(restore_s, 3),
        "keys_lost": lost,
        "backup_keys": len(snapshot_keys.values),
        "keys_deleted_after_snapshot": DELETED,
        "keys_added_after_snapshot": ADDED,
        "digests_match": all(k.digest == snapshot_keys.digest for k in after.values()),
        "snapshot_bytes": snapshot_bytes,
    }
