"""Backups and restore on real lab hosts: TLS etcd on 3 masters, a real S3 endpoint (moto's server bound to the lab
bridge's gateway, this machine's own test network) and a worker as the SSH backup host."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from backups import agent
from backups.operations import backup_list, backup_now
from backups.role import render
from backups.role.defaults import DEFAULTS
from backups.snapshots import SnapshotRejected
from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.bench.etcd_keys import digest_script, etcdctl_on, put_keys_script
from provision.lab import Lab, faults
from provision.lab.s3_endpoint import S3Endpoint, moto_s3, s3_env
from roles.engine.events import Event, PhaseFinished
from roles.plans import restore
from roles.state import StateDir

pytestmark = pytest.mark.lab

BUCKET = "etcd-backups"
PREFIX = "bk-main/"
BACKUP_PATH = "/var/backups/keelson"
RETENTION = 2


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
        "retention": RETENTION,
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
    assert bk.run("m1", f"systemctl is-enabled {DEFAULTS.timer}; systemctl is-active {DEFAULTS.timer}").split() == [
        "enabled",
        "active",
    ]
    faults.power_off(bk.lab, "m3")
    try:
        result = backup_now(bk.cluster)  # `systemctl start` of the timer's own service on each reachable member
        assert result.ok, result.describe()
        assert "m3" in result.unreachable
        [taker] = result.taken_by
        run = result.runs[taker]
        name = run["snapshot"]
        assert set(run["copies"]) == {t for t in (render.target_id(x) for x in bk.cluster.backups.targets)}
        for other in {"m1", "m2"} - {taker}:
            assert result.runs[other]["outcome"] == "skipped"
        local = bk.run(taker, f"cat {DEFAULTS.local_dir}/{name}.sha256").split()[0]
        head = bk.s3.client().head_object(Bucket=BUCKET, Key=f"{PREFIX}{name}")
        assert head["Metadata"]["sha256"] == local
        body = bk.s3.client().get_object(Bucket=BUCKET, Key=f"{PREFIX}{name}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == local
        remote = bk.run("w1", f"cd {BACKUP_PATH} && sha256sum -c {name}.sha256 && sha256sum < {name}")
        assert "OK" in remote and local in remote
    finally:
        faults.power_on(bk.lab, "m3")
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

    events: list[Event] = []
    report = restore.restore(bk.cluster, f"s3://{BUCKET}/{PREFIX}{name}", events.append, state_dir=bk.state_dir)
    assert report.ok, report.hosts
    finished = {e.phase: e for e in events if isinstance(e, PhaseFinished)}
    healthy = finished["restore | Start etcd, healthy at the snapshot's revision"]
    assert (healthy.changed, healthy.failed) == (3, 0)
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
            restore.restore(bk.cluster, str(path), state_dir=bk.state_dir)
    for member in ("m1", "m2", "m3"):
        assert bk.run(member, "systemctl is-active etcd").strip() == "active"
        assert bk.digest(member) == before[member]


def _backup_ssh(bk: BackupLab, user: str, *remote: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """ssh to the backup host w1 with the cluster's backup key, as a master's agent does (strict host key)."""
    key = bk.state_dir / "backup" / "id_ed25519"
    argv = [
        "ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={bk.lab.known_hosts_path}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "--", f"{user}@{bk.address('w1')}", *remote,
    ]  # fmt: skip
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60, check=False)


def test_backup_host_gets_a_dedicated_account_private_copies_and_a_restricted_key(bk: BackupLab) -> None:
    result = backup_now(bk.cluster)
    assert result.ok, result.describe()
    name = result.runs[result.taken_by[0]]["snapshot"]
    assert result.runs[result.taken_by[0]]["copies"][render.target_id(bk.cluster.backups.targets[1])].startswith(
        f"keelson-backup@{bk.address('w1')}:"
    )
    account = bk.run("w1", "getent passwd keelson-backup").strip().split(":")
    assert account[5:] == ["/var/lib/keelson-backup", "/bin/sh"]
    modes = bk.run(
        "w1",
        f"stat -c '%a %U %n' /var/lib/keelson-backup {BACKUP_PATH} {BACKUP_PATH}/{name} {BACKUP_PATH}/{name}.sha256",
    ).splitlines()
    assert [line.split()[:2] for line in modes] == [["700", "keelson-backup"]] * 2 + [["600", "keelson-backup"]] * 2
    keys = bk.run("w1", "cat /var/lib/keelson-backup/.ssh/authorized_keys").splitlines()
    assert len(keys) == 1 and keys[0].startswith(
        f'restrict,command="/usr/local/lib/keelson/backup-receiver {BACKUP_PATH}" '
    )
    blob = keys[0].split()[-2]
    assert blob not in bk.run("w1", "cat /root/.ssh/authorized_keys")

    # the key can store snapshots, nothing else: no command, no shell, no other folder, no other user
    marker = "/tmp/keelson-backup-key-ran"
    for remote in (["id"], [f"touch {marker}"], ["sh", "-c", f"'touch {marker}'"], []):
        refused = _backup_ssh(bk, "keelson-backup", *remote)
        assert refused.returncode != 0 and b"uid=" not in refused.stdout, remote
        assert b"keelson-backup-receiver: refused" in refused.stderr, (remote, refused.stderr)
    outside = _backup_ssh(bk, "keelson-backup", "x keelson-backup-receiver /etc put evil.db.gz", stdin=b"x")
    assert outside.returncode != 0 and b"may only write to" in outside.stderr
    assert _backup_ssh(bk, "root", "id").returncode == 255  # not authorized for root at all
    assert bk.lab.run("w1", f"test -e {marker} || test -e /etc/evil.db.gz", check=False).returncode != 0
    listed = _backup_ssh(bk, "keelson-backup", agent.receiver_command(BACKUP_PATH, "list"))
    assert listed.returncode == 0 and name in listed.stdout.decode()
    offsite = next(m["offsite"] for m in backup_list(bk.cluster).members.values() if m.get("offsite"))
    assert name in [item["name"] for item in offsite[render.target_id(bk.cluster.backups.targets[1])]]


def test_an_old_unrestricted_backup_key_is_replaced_by_the_restricted_one(bk: BackupLab) -> None:
    """What an earlier keelson left: the key unrestricted in root's authorized_keys. A re-apply removes it there
    (keeping root's other keys) and leaves exactly the restricted line; the apply after that changes nothing."""
    from backups import role
    from backups.role.steps import backup_ssh_key
    from roles.engine.context import RunContext
    from roles.engine.runner import run_plan

    line = backup_ssh_key(StateDir(bk.state_dir), bk.cluster.name)[1]  # the key the agents use
    bk.run("w1", f"echo '{line}' >> /root/.ssh/authorized_keys")
    assert _backup_ssh(bk, "root", "echo", "unrestricted").stdout == b"unrestricted\n"
    context = RunContext(cluster=bk.cluster, state_dir=bk.state_dir)
    fixed = run_plan(role.phases(bk.cluster), context)
    assert fixed.ok and fixed.changed_hosts == ["w1"], fixed.changes()
    assert line.split()[1] not in bk.run("w1", "cat /root/.ssh/authorized_keys")
    assert _backup_ssh(bk, "root", "echo", "unrestricted").returncode == 255
    assert bk.lab.run("w1", "true").returncode == 0  # root's own (the lab's) key still works
    again = run_plan(role.phases(bk.cluster), context)
    assert again.ok and again.changed_hosts == [], again.changes()


def test_offsite_copies_are_pruned_to_the_retention_like_local_ones(bk: BackupLab) -> None:
    """Three backups with retention 2: the two newest stay on S3 and on the SSH host (with their .sha256), the
    older ones are gone from both; nothing else in the bucket or the folder is touched."""
    stranger = f"{PREFIX}not-a-snapshot.txt"
    bk.s3.client().put_object(Bucket=BUCKET, Key=stranger, Body=b"keep me")
    bk.run("w1", f"install -o keelson-backup -m 0600 /dev/null {BACKUP_PATH}/notes.txt")
    taken = []
    for i in range(3):
        bk.run("m1", etcdctl_on(bk.address("m1"), "put", f"/retention/{i}", "x"))  # a new revision, a new name
        result = backup_now(bk.cluster)
        assert result.ok, result.describe()
        run = result.runs[result.taken_by[0]]
        taken.append(run["snapshot"])
        assert set(run["pruned"]) == {"local", *(render.target_id(t) for t in bk.cluster.backups.targets)}
    newest = sorted(taken)[-RETENTION:]
    assert newest == taken[-RETENTION:]
    keys = [o["Key"] for o in bk.s3.client().list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]]
    assert sorted(keys) == sorted([*(f"{PREFIX}{name}" for name in newest), stranger])
    listed = bk.run("w1", f"ls -A {BACKUP_PATH}").split()
    assert sorted(listed) == sorted([*newest, *(f"{name}.sha256" for name in newest), "notes.txt"])


def test_backup_now_shows_only_the_run_it_started(bk: BackupLab) -> None:
    """An earlier run's report is never shown as this run's: with the unit failing before the agent runs (a runtime
    drop-in replaces its ExecStart with `false`), each member answers "no report from this run" although its
    last-run.json holds an older run's report; once the unit works, every report carries this run's id, and no run
    request is left behind for a later timer run."""
    members = ("m1", "m2", "m3")
    earlier = '{"run_id": "timer-earlier", "outcome": "snapshot", "snapshot": "bk-main-earlier.db.gz"}'
    dropin = f"/run/systemd/system/{DEFAULTS.service}.d"
    for member in members:
        bk.run(member, f"install -d -m 0700 {DEFAULTS.status_dir} && "
                       f"printf '%s' '{earlier}' > {DEFAULTS.status_dir}/last-run.json && mkdir -p {dropin} && "
                       f"printf '[Service]\\nExecStart=\\nExecStart=/bin/false\\n' > {dropin}/broken.conf && "
                       "systemctl daemon-reload")  # fmt: skip
    try:
        refused = backup_now(bk.cluster)
    finally:
        for member in members:
            bk.run(member, f"rm -rf {dropin} && systemctl daemon-reload")
    assert not refused.ok and refused.runs == {}, refused.describe()
    assert all("no report from this run" in refused.failed[m] for m in members), refused.failed
    assert "bk-main-earlier" not in refused.describe()
    result = backup_now(bk.cluster)
    assert result.ok, result.describe()
    assert {run["run_id"] for run in result.runs.values()} == {result.run_id} and len(result.runs) == 3
    for member in members:
        assert bk.run(member, f"ls {DEFAULTS.status_dir}").split().count("run-request") == 0
