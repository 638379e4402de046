"""The apiserver restarts when the config files keelson writes for it change (roles/control_plane/restart.py): the
decision from the marker and the files' digest, the guarded restart commands, the marker that init and join write,
and the serial, health-gated phase that holds the step."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from inventory.loader import parse_inventory
from inventory.model import Cluster
from roles.control_plane.cluster_ops import init_commands
from roles.control_plane.defaults import DEFAULTS
from roles.control_plane.phases import apiserver_healthy, phases
from roles.control_plane.restart import ApiserverRestartOnChange, restart_due
from roles.control_plane.steps import JOINED, JoinStep, files_digest
from roles.engine.context import HostContext, RunContext
from roles.engine.facts import FactValues, FileInfo, FileState, FileText
from roles.engine.phase import Phase
from roles.pki import kubernetes as k8s_pki
from roles.state import StateDir

INVENTORY = """
name: prod
hosts:
  - {name: m1, address: 10.0.0.11, roles: [master]}
  - {name: m2, address: 10.0.0.12, roles: [master]}
  - {name: m3, address: 10.0.0.13, roles: [master]}
  - {name: w1, address: 10.0.0.21, roles: [worker]}
control_plane: {vip: 10.0.0.10/24}
"""
PRESENT = FileState(0o644, "root", "root", "0" * 64)


def cluster(extra: str = "") -> Cluster:
    return parse_inventory(INVENTORY + extra)


def ctx_for(tmp_path: Path, host: str = "m2", extra: str = "") -> HostContext:
    c = cluster(extra)
    return HostContext(c, c.host(host), tmp_path)


def facts(marker: str | None, init: bool = False, join: bool = True) -> FactValues:
    return FactValues(
        {
            FileText(DEFAULTS.apiserver_marker).key: marker,
            FileInfo(DEFAULTS.init_marker).key: PRESENT if init else None,
            FileInfo(DEFAULTS.join_marker).key: PRESENT if join else None,
        }
    )


def not_joined(kind: str) -> FactValues:
    return FactValues({FileInfo(p).key: None for p in (DEFAULTS.init_marker, DEFAULTS.join_marker, JOINED[kind])})


def test_the_decision() -> None:
    assert not restart_due(joined=False, marker=None, desired="a")  # init/join start it with the files as they are
    assert not restart_due(joined=False, marker="b\n", desired="a")
    assert not restart_due(joined=True, marker="a\n", desired="a")  # started with these files
    assert restart_due(joined=True, marker="b\n", desired="a")  # a file changed since it started
    assert restart_due(joined=True, marker=None, desired="a")  # started by an older keelson: unknown, once


def test_a_master_started_with_these_files_is_left_alone(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    assert ApiserverRestartOnChange().check(ctx, facts(files_digest(ctx) + "\n")) == []
    assert ApiserverRestartOnChange().check(ctx, facts(files_digest(ctx), init=True, join=False)) == []


def test_a_master_that_has_not_joined_is_the_join_steps_business(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    assert ApiserverRestartOnChange().check(ctx, facts(None, join=False)) == []


def test_a_changed_file_restarts_guarded_then_marks(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    started_with = files_digest(ctx)
    StateDir(tmp_path).write(k8s_pki.ENCRYPTION_KEY, base64.b64encode(b"k" * 32))  # the key was rotated
    desired = files_digest(ctx)
    assert desired != started_with
    scripts = [c.script for c in ApiserverRestartOnChange().check(ctx, facts(started_with + "\n"))]
    assert len(scripts) == 3
    assert "https://10.0.0.10:8443/readyz" in scripts[0] and "exit 75" in scripts[0]  # the API answers, or refuse
    assert "crictl stop" in scripts[1] and "'^kube-apiserver$'" in scripts[1]
    # the manifest is regenerated from this master's kubeadm configuration; the container is stopped only when that
    # changed nothing in it (a changed manifest makes the kubelet replace the pod itself)
    assert "kubeadm init phase control-plane apiserver --config /etc/kubernetes/keelson/kubeadm-init.yaml" in scripts[1]
    assert '"$new" != "$old"' in scripts[1]  # waits for a new container, with a deadline
    assert f"deadline=$(( $(date +%s) + {DEFAULTS.restart_timeout_s} ))" in scripts[1]
    assert desired in scripts[2] and DEFAULTS.apiserver_marker in scripts[2]


def test_the_digest_follows_every_file_and_not_the_host(tmp_path: Path) -> None:
    base = files_digest(ctx_for(tmp_path))
    assert files_digest(ctx_for(tmp_path, "m1")) == base  # the same files on every master
    no_audit = files_digest(ctx_for(tmp_path, extra="security: {audit: false}\n"))
    no_encryption = files_digest(ctx_for(tmp_path, extra="security: {encryption_at_rest: false}\n"))
    assert len({base, no_audit, no_encryption}) == 3
    assert base not in (no_audit, no_encryption)


def test_the_digest_follows_the_manifest_flags_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags kubeadm writes in the static pod manifest count, not only the files (switching audit on or off)."""
    from roles.control_plane import render

    base = files_digest(ctx_for(tmp_path))
    real = render.apiserver_args
    monkeypatch.setattr(render, "apiserver_args", lambda c: [*real(c), ("profiling", "true")])
    assert files_digest(ctx_for(tmp_path)) != base


def test_init_and_join_note_the_files_their_apiserver_starts_with(tmp_path: Path) -> None:
    ctx = ctx_for(tmp_path)
    digest = files_digest(ctx)
    join = JoinStep("master").check(ctx, not_joined("master"))
    assert "kubeadm join" in join[-2].script
    assert digest in join[-1].script and DEFAULTS.apiserver_marker in join[-1].script
    worker_ctx = ctx_for(tmp_path, "w1")
    worker = JoinStep("worker").check(worker_ctx, not_joined("worker"))
    assert any("kubeadm join" in c.script for c in worker)
    assert all(DEFAULTS.apiserver_marker not in c.script for c in worker)
    rc = RunContext(ctx.cluster, tmp_path)
    init, note = init_commands(rc, ctx.cluster.masters[0])
    assert "kubeadm init" in init.script and digest in note.script


def test_the_restart_runs_one_master_at_a_time_behind_the_health_gate() -> None:
    c = cluster()
    phase = next(p for p in phases(c) if isinstance(p, Phase) and any(isinstance(s, JoinStep) for s in p.steps))
    assert phase.serial and phase.gate is apiserver_healthy
    kinds = [type(s) for s in phase.steps]
    assert kinds == [JoinStep, ApiserverRestartOnChange]  # after the join, never instead of it


@pytest.mark.parametrize("marker", ["", "garbage", None])
def test_junk_markers_mean_unknown(tmp_path: Path, marker: str | None) -> None:
    ctx = ctx_for(tmp_path)
    assert ApiserverRestartOnChange().check(ctx, facts(marker)) != []
