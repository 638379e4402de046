"""The restore's per-member scripts, run by bash here against a fake etcdctl: they converge when rerun."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backups import restore
from backups.remote import Outcome
from backups.snapshots import verify_snapshot
from inventory.loader import parse_inventory
from inventory.model import Cluster
from tests.backup_helpers import write_snapshot

FAKE_ETCDCTL = """#!/bin/bash
# stands in for `etcdctl snapshot restore|status` (the real one is exercised by the lab tests)
args=("$@")
if [ "$1 $2" = "snapshot status" ]; then echo '{"hash":1,"revision":42,"totalKey":3,"totalSize":12288}'; exit 0; fi
if [ "$1 $2" = "snapshot restore" ]; then
  for ((i=0; i<${#args[@]}; i++)); do [ "${args[i]}" = --data-dir ] && dd="${args[i+1]}"; done
  [ -e "$dd" ] && { echo "data-dir $dd exists" >&2; exit 1; }
  mkdir -p "$dd/member/snap" "$dd/member/wal" && cp "$3" "$dd/member/snap/db" && echo "$*" > "$dd/args"
  [ -n "$FAIL_AFTER_RESTORE" ] && exit 1
  exit 0
fi
exit 2
"""


def cluster_at(data_dir: Path) -> Cluster:
    return parse_inventory(
        f"""
name: bk-scripts
hosts:
  - {{name: m1, address: 198.18.0.11, roles: [master]}}
  - {{name: m2, address: 198.18.0.12, roles: [master]}}
  - {{name: m3, address: 198.18.0.13, roles: [master]}}
control_plane: {{vip: 198.18.0.100/24}}
etcd: {{data_dir: {data_dir}}}
"""
    )


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "etcdctl").write_text(FAKE_ETCDCTL)
    (bin_dir / "chown").write_text("#!/bin/sh\nexit 0\n")  # the etcd user exists only on the members
    for tool in ("etcdctl", "chown"):
        (bin_dir / tool).chmod(0o755)
    stage = tmp_path / "stage"
    stage.mkdir()
    monkeypatch.setattr(restore, "STAGE_DIR", str(stage))
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=False)


def make_plan(tmp_path: Path) -> restore.RestorePlan:
    snap = verify_snapshot(write_snapshot(tmp_path / "bk-scripts-20261123T071500Z-rev42.db.gz"))
    return restore.RestorePlan(cluster_at(tmp_path / "etcd"), snap, stamp="20261123T080000Z")


def test_stage_checks_sha_inflates_and_reports_status(tmp_path: Path, env: dict[str, str]) -> None:
    plan = make_plan(tmp_path)
    Path(plan.staged_gz).write_bytes(plan.snapshot.path.read_bytes())
    out = bash(plan.stage_script(), env)
    assert out.returncode == 0, out.stderr
    assert '"revision":42' in out.stdout
    assert Path(plan.staged_db).is_file()
    Path(plan.staged_gz).write_bytes(plan.snapshot.path.read_bytes()[:-10])  # a copy that differs
    bad = bash(plan.stage_script(), env)
    assert bad.returncode == 3 and "differs" in bad.stderr


def test_restore_keeps_old_data_and_reruns_converge(tmp_path: Path, env: dict[str, str]) -> None:
    plan = make_plan(tmp_path)
    Path(plan.staged_db).write_bytes(b"db")
    data = Path(plan.data_dir)
    (data / "member").mkdir(parents=True)
    (data / "member" / "old-marker").write_text("old")
    m1 = plan.cluster.host("m1")

    first = bash(plan.restore_script(m1), env)
    assert first.returncode == 0, first.stderr
    assert "restored" in first.stdout and "kept-old" in first.stdout
    old = Path(f"{plan.data_dir}.pre-restore-{plan.stamp}")
    assert (old / "member" / "old-marker").read_text() == "old"  # nothing is thrown away
    args = (data / "args").read_text()
    assert "--name m1" in args and "--initial-advertise-peer-urls https://198.18.0.11:2380" in args
    assert "m1=https://198.18.0.11:2380,m2=https://198.18.0.12:2380,m3=https://198.18.0.13:2380" in args
    assert f"--initial-cluster-token {plan.token}" in args

    again = bash(plan.restore_script(m1), env)
    assert again.returncode == 0 and again.stdout.strip() == "already-restored"
    assert (data / "args").read_text() == args


def test_interrupted_restore_is_redone_on_rerun(tmp_path: Path, env: dict[str, str]) -> None:
    """A failure after `snapshot restore` wrote a partial dir: the rerun removes it, restores, then swaps."""
    plan = make_plan(tmp_path)
    Path(plan.staged_db).write_bytes(b"db")
    (Path(plan.data_dir) / "member").mkdir(parents=True)
    m2 = plan.cluster.host("m2")
    failed = bash(plan.restore_script(m2), {**env, "FAIL_AFTER_RESTORE": "1"})
    assert failed.returncode != 0
    assert Path(f"{plan.data_dir}.restore-{plan.restore_id}").exists()  # the half-done restore
    assert not Path(plan.marker).exists()
    rerun = bash(plan.restore_script(m2), env)
    assert rerun.returncode == 0, rerun.stderr
    assert "--name m2" in (Path(plan.data_dir) / "args").read_text()
    assert not Path(f"{plan.data_dir}.restore-{plan.restore_id}").exists()


def test_restore_id_and_token_follow_the_snapshot(tmp_path: Path) -> None:
    a = make_plan(tmp_path)
    b = restore.RestorePlan(a.cluster, a.snapshot, stamp="other")
    assert (a.restore_id, a.token) == (b.restore_id, b.token)  # a rerun agrees with the interrupted run
    assert a.token.startswith("keelson-bk-scripts-restore-")


def test_apiserver_scripts_move_the_manifest_aside_and_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifests, aside = tmp_path / "manifests", tmp_path / "aside"
    monkeypatch.setattr(restore, "MANIFESTS", str(manifests))
    monkeypatch.setattr(restore, "MANIFESTS_ASIDE", str(aside))
    plan = make_plan(tmp_path)
    env = dict(os.environ)
    assert bash(plan.stop_apiserver_script(), env).stdout.strip() == "absent"
    manifests.mkdir()
    (manifests / "kube-apiserver.yaml").write_text("kind: Pod\n")
    assert bash(plan.stop_apiserver_script(), env).stdout.strip() == "stopped"
    assert bash(plan.stop_apiserver_script(), env).stdout.strip() == "already-stopped"
    assert not (manifests / "kube-apiserver.yaml").exists()
    assert bash(plan.start_apiserver_script(), env).stdout.strip() == "started"
    assert (manifests / "kube-apiserver.yaml").read_text() == "kind: Pod\n"


class RecordingShell:
    """A member that answers `endpoint status` (m2 leads) and records what it is asked to do, in order."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def sh(self, script: str, *, timeout: float = 120.0) -> Outcome:
        if "endpoint status" in script:
            out = "".join(
                f'{{"Endpoint":"https://198.18.0.1{i}:2379","Status":{{"header":{{"member_id":{i},"revision":5}},'
                f'"leader":2}}}},'
                for i in (1, 2, 3)
            )
            return Outcome(0, "[" + out.rstrip(",") + "]", "")
        self.log.append(f"{self.name}: {script}")
        return Outcome(0, "", "")

    def upload(self, local: Path, remote: str, *, mode: int = 0o600) -> None:
        raise AssertionError("not used")


def test_followers_stop_before_the_leader(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    log: list[str] = []
    shells = [RecordingShell(n, log) for n in ("m1", "m2", "m3")]
    assert restore.stop_etcd(plan, shells) == "m2"
    assert [line.split(":")[0] for line in log][-1] == "m2"
    assert sorted(line.split(":")[0] for line in log[:2]) == ["m1", "m3"]
