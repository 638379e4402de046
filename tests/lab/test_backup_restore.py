"""Backups and restore on real lab hosts: TLS etcd on 3 masters, a real S3 endpoint (moto's server bound to the lab
bridge's gateway, this machine's own test network) and a worker as the SSH backup host."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from backups import config
from backups.operations import backup_list, backup_now
from backups.restore import restore_cluster
from backups.snapshots import SnapshotRejected
from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.lab import Lab
from tests.backup_helpers import S3Endpoint, digest_script, etcdctl_on, moto_s3, put_keys_script, s3_env

pytestmark = pytest.mark.lab

BUCKET = "etcd-backups"
PREFIX = "bk-main/"
BACKUP_PATH = "/var/backups/keelson"


@dataclass
class BackupLab:
    lab: Lab
    cluster: Cluster
    s3: S3Endpoint
    state_dir: Path

    def run(self, host: str, command: str) -> str:
        return self.lab.run(host, command, timeout=300).stdout

    def address(self, host: str) -> str:
        return str(self.cluster.host(host).address)

    def digest(self, host: str, prefix: str = "/bk/") -> str:
        return self.run(host, digest_script(self.address(host), prefix)).strip()


def with_backups(lab: Lab, s3: S3Endpoint, out: Path) -> Path:
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["backups"] = {
        "schedule": "*:0/30",
        "retention": 3,
        "targets": [
            {"kind": "s3", "bucket": BUCKET, "prefix": PREFIX, "endpoint_url": s3.url},
            {"kind": "ssh", "host": "w1", "path": BACKUP_PATH},
        ],
    }
    out.write_text(yaml.safe_dump(data))
    return out


def apply(cluster: Cluster, state_dir: Path) -> None:
    from backups import role
    from roles import etcd, pki
    from roles.engine.context import RunContext
    from roles.engine.runner import run_plan

    plan = [*pki.phases(cluster), *etcd.phases(cluster), *role.phases(cluster)]
    report = run_plan(plan, RunContext(cluster=cluster, state_dir=state_dir))
    assert report.ok, {h: s.errors for h, s in report.hosts.items() if s.errors}


@pytest.fixture(scope="module")
def bk(lab_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackupLab]:
    lab = lab_factory("bk-main", masters=3, workers=1)
    work = tmp_path_factory.mktemp("bk-main")
    with moto_s3(lab.gateway) as s3, s3_env(s3):
        s3.client().create_bucket(Bucket=BUCKET)
        cluster = load_inventory(with_backups(lab, s3, work / "inventory.yaml"))
        apply(cluster, work / "state")
        yield BackupLab(lab, cluster, s3, work / "state")


def test_timer_is_installed_and_the_backup_succeeds_with_a_member_down(bk: BackupLab) -> None:
    assert bk.run("m1", f"systemctl is-enabled {config.TIMER}; systemctl is-active {config.TIMER}").split() == [
        "enabled",
        "active",
    ]
    bk.lab.kill("m3")
    try:
        result = backup_now(bk.cluster)  # `systemctl start` of the timer's own service on each reachable member
        assert result.ok, result.describe()
        assert "m3" in result.unreachable
        [taker] = result.taken_by
        run = result.runs[taker]
        name = run["snapshot"]
        assert set(run["copies"]) == {t for t in (config.target_id(x) for x in bk.cluster.backups.targets)}
        for other in {"m1", "m2"} - {taker}:
            assert result.runs[other]["outcome"] == "skipped"
        local = bk.run(taker, f"cat {config.LOCAL_DIR}/{name}.sha256").split()[0]
        head = bk.s3.client().head_object(Bucket=BUCKET, Key=f"{PREFIX}{name}")
        assert head["Metadata"]["sha256"] == local
        body = bk.s3.client().get_object(Bucket=BUCKET, Key=f"{PREFIX}{name}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == local
        remote = bk.run("w1", f"cd {BACKUP_PATH} && sha256sum -c {name}.sha256 && sha256sum < {name}")
        assert "OK" in remote and local in remote
    finally:
        bk.lab.start("m3")
    listing = backup_list(bk.cluster)
    targets = listing.targets()
    assert all(t["last_success"] is not None for t in targets.values()), listing.describe()


def test_restore_brings_back_exactly_the_snapshot_on_every_member(bk: BackupLab, tmp_path: Path) -> None:
    bk.run("m1", put_keys_script("/bk/", 0, 10_000, bk.address("m1")))
    expected = bk.digest("m1")
    assert expected.startswith("10000 ")
    result = backup_now(bk.cluster)
    assert result.ok, result.describe()
    name = result.runs[result.taken_by[0]]["snapshot"]

    bk.run("m2", put_keys_script("/bk/", 10_000, 1_000, bk.address("m2")))  # written after the snapshot
    assert bk.run("m1", etcdctl_on(bk.address("m1"), "del", "/bk/0000", "--prefix")).strip() == "100"
    assert bk.digest("m1") != expected

    lines: list[str] = []
    restore_cluster(bk.cluster, f"s3://{BUCKET}/{PREFIX}{name}", lines.append)
    assert any("healthy" in line for line in lines), lines
    for member in ("m1", "m2", "m3"):
        assert bk.digest(member) == expected, member  # exactly the snapshot's keys and values, on each member
        assert bk.run(member, f"ls -d {bk.cluster.etcd.data_dir}.pre-restore-*").strip()  # the old data is kept


def test_corrupt_or_truncated_snapshot_is_refused_and_the_cluster_untouched(bk: BackupLab, tmp_path: Path) -> None:
    result = backup_now(bk.cluster)
    assert result.ok, result.describe()
    name = result.runs[result.taken_by[0]]["snapshot"]
    good = bk.s3.client().get_object(Bucket=BUCKET, Key=f"{PREFIX}{name}")["Body"].read()
    before = {m: bk.digest(m) for m in ("m1", "m2", "m3")}
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF
    corrupt_db = bytearray(gzip.decompress(good))
    corrupt_db[8192] ^= 0x01  # valid gzip around a damaged db: only etcd's own trailer hash can tell
    cases = {
        "flipped.db.gz": bytes(flipped),
        "truncated.db.gz": good[: len(good) * 2 // 3],
        "damaged-db.db.gz": gzip.compress(bytes(corrupt_db)),
    }
    for file_name, data in cases.items():
        path = tmp_path / file_name
        path.write_bytes(data)
        with pytest.raises(SnapshotRejected, match="not a valid etcd snapshot"):
            restore_cluster(bk.cluster, str(path), lambda line: None)
    for member in ("m1", "m2", "m3"):
        assert bk.run(member, "systemctl is-active etcd").strip() == "active"
        assert bk.digest(member) == before[member]
