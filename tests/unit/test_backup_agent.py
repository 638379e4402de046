"""The backup agent's pure parts: snapshot integrity, names, retention, etcdctl output, one run with a fake etcdctl."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
from pathlib import Path

import pytest

from backups import agent
from tests.backup_helpers import fake_db, file_sha256, write_snapshot

# -- integrity --------------------------------------------------------------------------------------------------


def test_good_snapshot_passes_compressed_and_raw(tmp_path: Path) -> None:
    db = fake_db()
    gz = agent.check_snapshot_file(write_snapshot(tmp_path / "a.db.gz", db))
    raw = agent.check_snapshot_file(write_snapshot(tmp_path / "a.db", db, compress=False))
    assert gz.compressed and not raw.compressed
    assert gz.db_size == raw.db_size == len(db)
    assert gz.db_sha256 == raw.db_sha256 == raw.file_sha256


def test_truncated_gzip_is_refused(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "a.db.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(agent.SnapshotInvalid, match="truncated"):
        agent.check_snapshot_file(path)


@pytest.mark.parametrize("offset", [20, -12, -6])
def test_flipped_byte_in_gzip_is_refused(tmp_path: Path, offset: int) -> None:
    """In the deflate data, in the CRC32, in the length: each one is caught."""
    path = write_snapshot(tmp_path / "a.db.gz")
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(agent.SnapshotInvalid):
        agent.check_snapshot_file(path)


def test_valid_gzip_of_a_corrupt_db_is_refused(tmp_path: Path) -> None:
    """gzip is fine, the db inside is not: etcd's own trailing sha256 catches it."""
    db = bytearray(fake_db())
    db[5000] ^= 0x01
    with pytest.raises(agent.SnapshotInvalid, match="hash mismatch"):
        agent.check_snapshot_file(write_snapshot(tmp_path / "a.db.gz", bytes(db)))


def test_db_without_trailer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(agent.SnapshotInvalid, match="no etcd integrity hash"):
        agent.check_snapshot_file(write_snapshot(tmp_path / "a.db.gz", fake_db()[:-32]))
    with pytest.raises(agent.SnapshotInvalid, match="too small"):
        agent.check_snapshot_file(write_snapshot(tmp_path / "b.db.gz", b"not etcd"))


def test_trailer_split_across_chunks() -> None:
    db = fake_db(pages=2)
    chunks = [db[:8190], db[8190:8200], db[8200:]]  # the 32-byte trailer straddles two chunks
    size, _ = agent.check_db_stream(iter(chunks))
    assert size == len(db)


# -- names and retention ----------------------------------------------------------------------------------------


def test_name_round_trip() -> None:
    when = dt.datetime(2026, 11, 23, 7, 15, tzinfo=dt.UTC)
    name = agent.snapshot_name("prod-eu1", when, 12345)
    assert name == "prod-eu1-20261123T071500Z-rev12345.db.gz"
    parsed = agent.parse_snapshot_name(f"s3/prefix/{name}")
    assert parsed == agent.SnapshotName("prod-eu1", when, 12345)
    assert agent.parse_snapshot_name("prod-eu1-latest.db.gz") is None


def test_retention_keeps_newest_of_this_cluster_only() -> None:
    names = [agent.snapshot_name("lab", dt.datetime(2026, 1, d, tzinfo=dt.UTC), d) for d in range(1, 6)]
    other = agent.snapshot_name("lab2", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 1)
    gone = agent.expired([*names, other, "notes.txt"], "lab", keep=2)
    assert gone == names[:3]
    assert agent.expired(names, "lab", keep=10) == []


# -- etcdctl output (captured from etcd 3.4.23 on Debian bookworm) -------------------------------------------------

STATUS_LEADER = (
    '[{"Endpoint":"https://198.18.0.11:2379","Status":{"header":{"cluster_id":17237436991929493444,'
    '"member_id":9372538179322589801,"revision":1042,"raft_term":2},"version":"3.4.23","dbSize":2162688,'
    '"leader":9372538179322589801,"raftIndex":1100,"raftTerm":2,"raftAppliedIndex":1100,"dbSizeInUse":2150400}}]\n'
)


def test_parse_endpoint_status_leader_and_follower() -> None:
    [leader] = agent.parse_endpoint_status(STATUS_LEADER)
    assert leader.is_leader and leader.revision == 1042 and leader.version == "3.4.23"
    [follower] = agent.parse_endpoint_status(STATUS_LEADER.replace('"leader":9372538179322589801', '"leader":42'))
    assert not follower.is_leader and follower.leader == 42


def test_parse_endpoint_status_tolerates_junk() -> None:
    assert agent.parse_endpoint_status("") == []
    assert agent.parse_endpoint_status("Error: context deadline exceeded") == []
    assert agent.parse_endpoint_status("[{not json") == []
    assert agent.parse_endpoint_status('[{"Endpoint":"x"}]')[0].is_leader is False


def test_parse_snapshot_status() -> None:
    status = agent.parse_snapshot_status('{"hash":3613298497,"revision":12345,"totalKey":10007,"totalSize":2162688}\n')
    assert status == agent.SnapshotStatus(3613298497, 12345, 10007, 2162688)
    with pytest.raises(agent.SnapshotInvalid):
        agent.parse_snapshot_status("Error: snapshot file has wrong size")


# -- one run, with a fake etcdctl ---------------------------------------------------------------------------------


class FakeEtcd:
    """Answers the agent's etcdctl calls: `leader` is this member's view, `reachable` whether it answers at all."""

    def __init__(self, *, leader: bool = True, reachable: bool = True, others_have_leader: bool = True) -> None:
        self.leader, self.reachable, self.others = leader, reachable, others_have_leader
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        if "endpoint" in argv:
            many = any(a.startswith("--endpoints=") and "," in a for a in argv)
            if not many and not self.reachable:
                return subprocess.CompletedProcess(argv, 1, "", "context deadline exceeded")
            out = STATUS_LEADER if (self.leader or many) else STATUS_LEADER.replace('"leader":93', '"leader":11')
            if many and not self.others:
                return subprocess.CompletedProcess(argv, 1, "[]", "all endpoints down")
            return subprocess.CompletedProcess(argv, 0, out, "")
        if "save" in argv:
            Path(argv[-1]).write_bytes(fake_db(pages=4))
            return subprocess.CompletedProcess(argv, 0, "Snapshot saved", "")
        if "status" in argv:
            return subprocess.CompletedProcess(argv, 0, '{"hash":1,"revision":77,"totalKey":5,"totalSize":16384}', "")
        raise AssertionError(argv)


def keep_all(target: agent.Target, cluster: str, keep: int) -> list[str]:
    """A target that prunes nothing (these tests are about the copy; retention has its own below)."""
    return []


def config(tmp_path: Path, **extra: object) -> agent.Config:
    data = {
        "cluster": "lab",
        "member": "m1",
        "retention": 2,
        "local_dir": str(tmp_path / "local"),
        "status_dir": str(tmp_path / "status"),
        "etcd": {
            "endpoint": "https://198.18.0.11:2379",
            "endpoints": ["https://198.18.0.11:2379", "https://198.18.0.12:2379"],
            "cacert": "/etc/keelson/backup/etcd-ca.crt",
            "cert": "/etc/keelson/backup/etcd-client.crt",
            "key": "/etc/keelson/backup/etcd-client.key",
        },
        "targets": [{"id": "ssh-w1", "kind": "ssh", "display": "ssh root@w1:/b", "host": "w1", "path": "/b"}],
        **extra,
    }
    return agent.Config.from_json(json.loads(json.dumps(data)))


def test_leader_takes_verifies_keeps_and_copies(tmp_path: Path) -> None:
    copied: list[tuple[str, str]] = []

    def copy(target: agent.Target, local: Path, sha: str) -> str:
        assert file_sha256(local) == sha
        copied.append((target.id, local.name))
        return f"{target.host}:{local.name}"

    report = agent.run_backup(config(tmp_path), run=FakeEtcd(), copy=copy, prune=keep_all)
    assert report.outcome == "snapshot", report
    assert report.revision == 77 and report.total_keys == 5
    assert report.snapshot.startswith("lab-") and report.snapshot.endswith("-rev77.db.gz")
    local = tmp_path / "local" / report.snapshot
    assert agent.check_snapshot_file(local).compressed
    assert copied == [("ssh-w1", report.snapshot)]
    status = json.loads((tmp_path / "status" / "target-ssh-w1.json").read_text())
    assert status["last_success"]["snapshot"] == report.snapshot and status["last_failure"] is None
    assert json.loads((tmp_path / "status" / "last-run.json").read_text())["outcome"] == "snapshot"


def test_follower_skips_cleanly(tmp_path: Path) -> None:
    fake = FakeEtcd(leader=False)
    report = agent.run_backup(config(tmp_path), run=fake, copy=lambda *a: "x", prune=keep_all)
    assert report.outcome == "skipped" and "not the leader" in report.reason
    assert not any("save" in c for c in fake.calls)


def test_local_member_down_skips_when_a_leader_exists_elsewhere(tmp_path: Path) -> None:
    report = agent.run_backup(config(tmp_path), run=FakeEtcd(reachable=False), copy=lambda *a: "x", prune=keep_all)
    assert report.outcome == "skipped" and "unreachable" in report.reason


def test_no_leader_anywhere_is_a_failure(tmp_path: Path) -> None:
    fake = FakeEtcd(reachable=False, others_have_leader=False)
    report = agent.run_backup(config(tmp_path), run=fake, copy=lambda *a: "x", prune=keep_all)
    assert report.outcome == "failed" and "no etcd member" in report.errors["local"]
    status = json.loads((tmp_path / "status" / "target-local.json").read_text())
    assert "no etcd member" in status["last_failure"]["error"]


def test_a_failing_target_fails_the_run_but_not_the_others(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        targets=[
            {"id": "s3-b", "kind": "s3", "display": "s3://b", "bucket": "b"},
            {"id": "ssh-w1", "kind": "ssh", "display": "ssh w1", "host": "w1", "path": "/b"},
        ],
    )

    def copy(target: agent.Target, local: Path, sha: str) -> str:
        if target.kind == "s3":
            raise agent.AgentError("sha256 mismatch after upload")
        return "w1:/b"

    first = agent.run_backup(cfg, run=FakeEtcd(), copy=lambda *a: "ok", prune=keep_all)
    second = agent.run_backup(cfg, run=FakeEtcd(), copy=copy, prune=keep_all)
    assert second.outcome == "failed" and set(second.errors) == {"s3-b"} and second.copies == {"ssh-w1": "w1:/b"}
    s3_status = json.loads((tmp_path / "status" / "target-s3-b.json").read_text())
    assert s3_status["last_success"]["snapshot"] == first.snapshot
    assert "mismatch" in s3_status["last_failure"]["error"]


def test_retention_prunes_local_snapshots_and_sidecars(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    local = tmp_path / "local"
    local.mkdir()
    for day in range(1, 4):
        name = agent.snapshot_name("lab", dt.datetime(2020, 1, day, tzinfo=dt.UTC), day)
        write_snapshot(local / name)
        (local / f"{name}.sha256").write_text("x")
    report = agent.run_backup(cfg, run=FakeEtcd(), copy=lambda *a: "ok", prune=keep_all)
    kept = sorted(p.name for p in local.glob("*.db.gz"))
    assert kept == sorted([report.snapshot, agent.snapshot_name("lab", dt.datetime(2020, 1, 3, tzinfo=dt.UTC), 3)])
    assert sorted(p.name for p in local.glob("*.sha256")) == sorted(f"{n}.sha256" for n in kept)


def test_cli_verify_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_snapshot(tmp_path / "good.db.gz")
    assert agent.main(["verify", str(good)]) == 0
    bad = tmp_path / "bad.db.gz"
    bad.write_bytes(gzip.compress(b"x" * 100))
    assert agent.main(["verify", str(bad)]) == 1
    assert "too small" in capsys.readouterr().err


# -- offsite retention ------------------------------------------------------------------------------------------


def test_offsite_candidates_are_this_clusters_snapshots_right_under_the_prefix() -> None:
    names = [agent.snapshot_name("lab", dt.datetime(2020, 1, d, tzinfo=dt.UTC), d) for d in range(1, 5)]
    keys = [f"bk/{n}" for n in names] + [
        f"bk/old/{names[0]}",  # a sub-folder: not ours to prune
        f"other/{names[1]}",  # another prefix
        "bk/prod-20200101T000000Z-rev1.db.gz",  # another cluster in the same prefix
        "bk/notes.txt",
        "bk/lab-latest.db.gz",  # not a snapshot name
    ]
    assert agent.offsite_expired(keys, "bk/", "lab", keep=2) == [f"bk/{names[0]}", f"bk/{names[1]}"]
    assert agent.offsite_expired(keys, "bk/", "lab", keep=4) == []
    assert agent.offsite_expired([names[0], f"bk/{names[1]}", names[2]], "", "lab", keep=1) == [names[0]]


def test_each_target_is_pruned_after_its_copy_and_a_prune_failure_is_reported(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        retention=3,
        targets=[
            {"id": "s3-b", "kind": "s3", "display": "s3://b", "bucket": "b"},
            {"id": "ssh-w1", "kind": "ssh", "display": "ssh w1", "host": "w1", "path": "/b"},
        ],
    )
    calls: list[tuple[str, str, int]] = []

    def copy(target: agent.Target, local: Path, sha: str) -> str:
        calls.append(("copy", target.id, 0))
        return target.id

    def prune(target: agent.Target, cluster: str, keep: int) -> list[str]:
        calls.append(("prune", target.id, keep))
        if target.kind == "ssh":
            raise agent.AgentError("ssh w1: pruning old copies failed (permission denied)")
        return ["lab-20200101T000000Z-rev1.db.gz"]

    report = agent.run_backup(cfg, run=FakeEtcd(), copy=copy, prune=prune)
    assert calls == [("copy", "s3-b", 0), ("prune", "s3-b", 3), ("copy", "ssh-w1", 0), ("prune", "ssh-w1", 3)]
    assert report.pruned == {"local": [], "s3-b": ["lab-20200101T000000Z-rev1.db.gz"]}
    assert report.copies == {"s3-b": "s3-b", "ssh-w1": "ssh-w1"}
    assert report.outcome == "failed"
    assert report.errors == {"ssh-w1": "copied, but pruning the old copies failed: ssh w1: pruning old copies "
                             "failed (permission denied)"}  # fmt: skip
    status = json.loads((tmp_path / "status" / "target-ssh-w1.json").read_text())
    assert status["last_success"]["snapshot"] == report.snapshot  # the copy itself is there
    assert "pruning" in status["last_failure"]["error"]


def test_a_failed_copy_prunes_nothing_there(tmp_path: Path) -> None:
    pruned: list[str] = []

    def copy(target: agent.Target, local: Path, sha: str) -> str:
        raise agent.TransientCopyError("connection refused")

    def prune(target: agent.Target, cluster: str, keep: int) -> list[str]:
        pruned.append(target.id)
        return []

    report = agent.run_backup(config(tmp_path), run=FakeEtcd(), copy=copy, prune=prune)
    assert pruned == [] and report.errors == {"ssh-w1": "connection refused"}
