"""The restore's per-member scripts, run by bash here against a fake etcdctl: they converge when rerun."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from backups import restore
from backups.snapshots import verify_snapshot
from inventory.loader import parse_inventory
from inventory.model import Cluster
from tests.backup_helpers import write_snapshot

VERSION = "3.4.23"
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


def make_plan(tmp_path: Path) -> restore.RestoreSpec:
    snap = verify_snapshot(write_snapshot(tmp_path / "bk-scripts-20261123T071500Z-rev42.db.gz"))
    return restore.RestoreSpec(cluster_at(tmp_path / "etcd"), snap, stamp="20261123T080000Z")


def test_stage_checks_sha_inflates_and_reports_status(tmp_path: Path, env: dict[str, str]) -> None:
    plan = make_plan(tmp_path)
    Path(plan.staged_gz).write_bytes(plan.snapshot.path.read_bytes())
    out = bash(plan.stage_script(VERSION), env)
    assert out.returncode == 0, out.stderr
    assert '"revision":42' in out.stdout
    assert Path(plan.staged_db).is_file()
    Path(plan.staged_gz).write_bytes(plan.snapshot.path.read_bytes()[:-10])  # a copy that differs
    bad = bash(plan.stage_script(VERSION), env)
    assert bad.returncode == 3 and "differs" in bad.stderr


def test_restore_keeps_old_data_and_reruns_converge(tmp_path: Path, env: dict[str, str]) -> None:
    plan = make_plan(tmp_path)
    Path(plan.staged_db).write_bytes(b"db")
    data = Path(plan.data_dir)
    (data / "member").mkdir(parents=True)
    (data / "member" / "old-marker").write_text("old")
    m1 = plan.cluster.host("m1")

    first = bash(plan.restore_script(m1, VERSION), env)
    assert first.returncode == 0, first.stderr
    assert "restored" in first.stdout and "kept-old" in first.stdout
    old = Path(f"{plan.data_dir}.pre-restore-{plan.stamp}")
    assert (old / "member" / "old-marker").read_text() == "old"  # nothing is thrown away
    args = (data / "args").read_text()
    assert "--name m1" in args and "--initial-advertise-peer-urls https://198.18.0.11:2380" in args
    assert "m1=https://198.18.0.11:2380,m2=https://198.18.0.12:2380,m3=https://198.18.0.13:2380" in args
    assert f"--initial-cluster-token {plan.token}" in args

    again = bash(plan.restore_script(m1, VERSION), env)
    assert again.returncode == 0 and again.stdout.strip() == "already-restored"
    assert (data / "args").read_text() == args


def test_interrupted_restore_is_redone_on_rerun(tmp_path: Path, env: dict[str, str]) -> None:
    """A failure after `snapshot restore` wrote a partial dir: the rerun removes it, restores, then swaps."""
    plan = make_plan(tmp_path)
    Path(plan.staged_db).write_bytes(b"db")
    (Path(plan.data_dir) / "member").mkdir(parents=True)
    m2 = plan.cluster.host("m2")
    failed = bash(plan.restore_script(m2, VERSION), {**env, "FAIL_AFTER_RESTORE": "1"})
    assert failed.returncode != 0
    assert Path(f"{plan.data_dir}.restore-{plan.restore_id}").exists()  # the half-done restore
    assert not Path(plan.marker).exists()
    rerun = bash(plan.restore_script(m2, VERSION), env)
    assert rerun.returncode == 0, rerun.stderr
    assert "--name m2" in (Path(plan.data_dir) / "args").read_text()
    assert not Path(f"{plan.data_dir}.restore-{plan.restore_id}").exists()


def test_restore_id_and_token_follow_the_snapshot(tmp_path: Path) -> None:
    a = make_plan(tmp_path)
    b = restore.RestoreSpec(a.cluster, a.snapshot, stamp="other")
    assert (a.restore_id, a.token) == (b.restore_id, b.token)  # a rerun agrees with the interrupted run
    assert a.token.startswith("keelson-bk-scripts-restore-")


def test_control_plane_scripts_move_the_manifests_aside_and_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests, aside = tmp_path / "manifests", tmp_path / "aside"
    monkeypatch.setattr(restore, "MANIFESTS", str(manifests))
    monkeypatch.setattr(restore, "MANIFESTS_ASIDE", str(aside))
    plan = make_plan(tmp_path)
    env = dict(os.environ)
    assert bash(plan.stop_control_plane_script(), env).stdout.strip() == "absent"
    manifests.mkdir()
    pods = ("kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml")
    for name in (*pods, "etcd-unrelated.yaml"):
        (manifests / name).write_text(f"kind: Pod # {name}\n")
    assert bash(plan.stop_control_plane_script(), env).stdout.strip() == "stopped"
    assert bash(plan.stop_control_plane_script(), env).stdout.strip() == "already-stopped"
    assert sorted(p.name for p in manifests.iterdir()) == ["etcd-unrelated.yaml"]  # only the control plane's
    assert bash(plan.start_control_plane_script(), env).stdout.strip() == "started"
    assert bash(plan.start_control_plane_script(), env).stdout.strip() == "absent"
    for name in pods:
        assert (manifests / name).read_text() == f"kind: Pod # {name}\n"
    assert not aside.exists()


def test_stop_waits_until_the_control_plane_containers_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in `crictl` on PATH reports the containers running for its first two calls: the script polls it
    until it reports none, and gives up with a message when they never go."""
    manifests, aside, bin_dir = tmp_path / "manifests", tmp_path / "aside", tmp_path / "bin"
    monkeypatch.setattr(restore, "MANIFESTS", str(manifests))
    monkeypatch.setattr(restore, "MANIFESTS_ASIDE", str(aside))
    monkeypatch.setattr(restore, "STOP_TIMEOUT_S", 3)
    plan = make_plan(tmp_path)
    manifests.mkdir()
    bin_dir.mkdir()
    (manifests / "kube-apiserver.yaml").write_text("kind: Pod\n")
    calls = tmp_path / "calls"
    crictl = bin_dir / "crictl"
    crictl.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$(wc -l < {calls})" -le 2 ] && echo abc123\nexit 0\n')
    crictl.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = bash(plan.stop_control_plane_script(), env)
    assert out.returncode == 0 and out.stdout.strip() == "stopped", out.stderr
    asked = calls.read_text().splitlines()
    assert len(asked) == 3 and "--name ^(kube-apiserver|kube-controller-manager|kube-scheduler)$" in asked[0]
    bash(plan.start_control_plane_script(), env)
    crictl.write_text("#!/bin/sh\necho abc123\n")  # never stops
    stuck = bash(plan.stop_control_plane_script(), env)
    assert stuck.returncode == 75 and "still running 3 s after their manifests moved" in stuck.stderr


def test_restore_bumps_the_revision_from_etcd_3_5_10(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    m1 = plan.cluster.host("m1")
    bumped = plan.restore_command(m1, "3.6.16")
    assert bumped.startswith("etcdutl snapshot restore ")
    assert bumped.endswith(f" --bump-revision {restore.BUMP_REVISION} --mark-compacted")
    assert "--bump-revision" not in plan.restore_command(m1, "3.5.9")
    assert "--bump-revision" not in plan.restore_command(m1, "3.4.23")
