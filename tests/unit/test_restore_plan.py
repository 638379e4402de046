"""The restore plan through the real runner, against members that answer like etcd would (no SSH, no etcd).

What is checked here is the order and the safety of the plan: the snapshot staged and checked on every member
before anything stops, followers stopped before the leader, the health gate at the snapshot's revision, the dry run
changing nothing, and a failed staging stopping the run with everything still running. The scripts themselves run
under bash in tests/unit/test_backup_restore_scripts.py, and the whole restore on real etcd in
tests/lab/test_backup_restore.py.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest

from backups import restore_phases
from backups.snapshots import verify_snapshot
from inventory.loader import parse_inventory
from roles.control_plane import restore_phases as cp_restore
from roles.engine import runner as runner_module
from roles.engine.context import RunContext
from roles.engine.events import Event, HostPlanned, PlanNote
from roles.engine.transport import CommandResult
from roles.plans import restore
from tests.backup_helpers import write_snapshot
from tests.fake_pool import FakePool, use_fake_pool

INVENTORY = """
name: bk-plan
hosts:
  - {name: m1, address: 198.18.0.11, roles: [master]}
  - {name: m2, address: 198.18.0.12, roles: [master]}
  - {name: m3, address: 198.18.0.13, roles: [master]}
control_plane: {vip: 198.18.0.100/24}
"""
LEADER = 2  # m2 leads
REVISION = 42


class Member:
    """Answers the restore's commands as an etcd member would, and writes what it was asked into a shared log."""

    def __init__(self, name: str, index: int, log: list[str], lock: threading.Lock, fail_staging: bool) -> None:
        self.host, self.index, self.log, self.lock = name, index, log, lock
        self.fail_staging = fail_staging
        self.commands_run = 0
        self.uploaded: list[str] = []

    def note(self, what: str) -> None:
        with self.lock:
            self.log.append(f"{self.host} {what}")

    def run(
        self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False
    ) -> CommandResult:
        self.commands_run += 1
        if "--version" in script:
            return CommandResult(0, "etcd Version: 3.4.23\nGit SHA: Not provided\n", "")
        if script.startswith(("mkdir -p -m 0700", "install -m 0600 -o root -g root /var/tmp/.keelson-uploads-")):
            return CommandResult(0, "", "")
        if "snapshot status" in script:
            self.note("stage")
            if self.fail_staging:
                return CommandResult(3, "", "staged snapshot sha256 differs from the operator's copy")
            status = {"hash": 1, "revision": REVISION, "totalKey": 3, "totalSize": 12288}
            return CommandResult(0, json.dumps(status), "")
        if "manifests.keelson-restore" in script:
            self.note("control-plane-stop" if "crictl ps" in script else "control-plane-start")
            return CommandResult(0, "absent\n", "")
        if "systemctl cat kubelet" in script:
            self.note("kubelet-restart")
            return CommandResult(0, "", "")  # no kubelet on these members
        if "init.done" in script:
            return CommandResult(0, "", "")  # no master initialised: the cluster check has nothing to wait for
        if "endpoint status" in script:
            statuses = [
                {
                    "Endpoint": f"https://198.18.0.1{i}:2379",
                    "Status": {"header": {"member_id": i, "revision": REVISION}, "leader": LEADER},
                }
                for i in (1, 2, 3)
            ]
            return CommandResult(0, json.dumps(statuses), "")
        if "endpoint health" in script:
            self.note("health")
            health = [{"endpoint": f"https://198.18.0.1{i}:2379", "health": True} for i in (1, 2, 3)]
            return CommandResult(0, json.dumps(health), "")
        if script.startswith("systemctl stop etcd"):
            self.note("etcd-stop")
            return CommandResult(0, "", "")
        if "snapshot restore" in script:
            self.note("restore")
            return CommandResult(0, "restored\n", "")
        if "restart --no-block etcd" in script:
            self.note("etcd-start")
            return CommandResult(0, "", "")
        if script.startswith("rm -f"):
            self.note("cleanup")
            return CommandResult(0, "", "")
        raise AssertionError(f"{self.host}: unexpected command {script[:200]!r}")

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        raise AssertionError("the snapshot is streamed with send_files")

    def send_files(self, files: list[tuple[Path, str]]) -> str:
        self.note("upload")
        self.uploaded += [name for _, name in files]
        return f"/var/tmp/.keelson-uploads-{self.host}"

    def get(self, path: str) -> bytes:
        raise AssertionError("the restore downloads nothing")

    def close(self) -> None:
        return None


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    use_fake_pool(monkeypatch, {})  # `members` fills it
    return []


def members(log: list[str], fail_staging: str = "") -> dict[str, Member]:
    lock = threading.Lock()
    made = {n: Member(n, i, log, lock, n == fail_staging) for i, n in enumerate(("m1", "m2", "m3"), start=1)}
    FakePool.transports.update(made)
    return made


def run(tmp_path: Path, *, dry_run: bool = False) -> tuple[runner_module.RunReport, list[Event]]:
    cluster = parse_inventory(INVENTORY)
    snapshot = verify_snapshot(write_snapshot(tmp_path / f"bk-plan-20261123T071500Z-rev{REVISION}.db.gz"))
    events: list[Event] = []
    plan = restore.plan(cluster, snapshot, stamp="20261123T080000Z")
    rc = RunContext(cluster, tmp_path / "state", dry_run=dry_run, events=events.append)
    return runner_module.run_plan(plan, rc), events


def first(log: list[str], what: str) -> int:
    return min(i for i, line in enumerate(log) if line.endswith(f" {what}"))


def last(log: list[str], what: str) -> int:
    return max(i for i, line in enumerate(log) if line.endswith(f" {what}"))


def test_restore_runs_in_order_followers_before_the_leader(tmp_path: Path, log: list[str]) -> None:
    made = members(log)
    report, events = run(tmp_path)
    assert report.ok, report.hosts
    assert last(log, "stage") < first(log, "control-plane-stop")  # every member checked the file before any stop
    assert last(log, "control-plane-stop") < first(log, "etcd-stop")
    stops = [line.split()[0] for line in log if line.endswith("etcd-stop")]
    assert sorted(stops[:2]) == ["m1", "m3"] and stops[2] == "m2"  # the leader last
    assert last(log, "etcd-stop") < first(log, "restore")
    assert last(log, "restore") < first(log, "etcd-start")
    assert last(log, "etcd-start") < first(log, "health") < first(log, "control-plane-start")
    assert last(log, "control-plane-start") < first(log, "kubelet-restart")
    assert last(log, "kubelet-restart") < first(log, "cleanup")
    assert log[-1].endswith("cleanup") and sum(line.endswith("cleanup") for line in log) == 3
    assert all(m.uploaded for m in made.values())
    assert next(e.message for e in events if isinstance(e, PlanNote)).startswith("verified bk-plan-")
    shown = {(e.phase, e.host) for e in events if isinstance(e, HostPlanned)}
    assert ("restore | Stop etcd (followers first, then the leader)", "m2") in shown  # progress shows what ran


def test_dry_run_changes_nothing_and_lists_every_member(tmp_path: Path, log: list[str]) -> None:
    made = members(log)
    report, events = run(tmp_path, dry_run=True)
    assert report.ok
    assert log == [] and not any(m.uploaded for m in made.values())  # read-only: versions and the leader, no more
    planned = {(e.phase, e.host): e.commands for e in events if isinstance(e, HostPlanned)}
    restore_phase = "restore | Restore the data dirs (the old ones kept)"
    for name in ("m1", "m2", "m3"):
        (script,) = planned[(restore_phase, name)]
        assert f"--name {name}" in script and "ETCDCTL_API=3 etcdctl snapshot restore" in script
    (leader_stop,) = planned[("restore | Stop etcd (followers first, then the leader)", "m2")]
    assert "the leader, last" in leader_stop


def test_a_member_that_fails_staging_stops_the_restore_before_anything_stops(tmp_path: Path, log: list[str]) -> None:
    members(log, fail_staging="m3")
    report, _ = run(tmp_path)
    assert not report.ok
    assert report.stopped_after == restore_phases.StageSnapshot.title
    assert "differs" in " ".join(report.hosts["m3"].errors)
    assert {line.split()[1] for line in log} <= {"upload", "stage"}  # nothing stopped, nothing restored


def test_renewed_since_names_only_leases_renewed_after_the_restore() -> None:
    since = dt.datetime(2026, 12, 2, 7, 18, 0, tzinfo=dt.UTC)
    leases = {
        "items": [
            {"metadata": {"name": "m1"}, "spec": {"renewTime": "2026-12-02T07:18:05.123456Z"}},
            {"metadata": {"name": "w1"}, "spec": {"renewTime": "2026-12-02T07:17:22.000000Z"}},  # the snapshot's
            {"metadata": {"name": "w2"}, "spec": {"renewTime": "not a time"}},
            {"metadata": {"name": "w3"}, "spec": {}},
        ]
    }
    assert cp_restore.renewed_since(json.dumps(leases), since) == {"m1"}
    assert cp_restore.renewed_since("error: the server is currently unable", since) == set()
