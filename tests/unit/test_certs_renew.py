"""`keelson certs renew` (roles/control_plane/certs_renew.py): what a master runs, in which order, and the phase's
shape — serial behind the apiserver health gate. The lab run is in tests/lab/test_cluster_ha.py."""

from __future__ import annotations

from pathlib import Path

from inventory.loader import parse_inventory
from roles.control_plane.certs_renew import STATIC_PODS, RenewStep
from roles.control_plane.defaults import DEFAULTS
from roles.control_plane.phases import apiserver_healthy
from roles.engine.context import HostContext
from roles.engine.facts import FactValues, FileInfo, FileState
from roles.engine.phase import Phase
from roles.plans import renew

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


def facts(joined: bool) -> FactValues:
    return FactValues(
        {FileInfo(DEFAULTS.init_marker).key: None, FileInfo(DEFAULTS.join_marker).key: PRESENT if joined else None}
    )


def test_a_joined_master_renews_then_restarts_each_static_pod(tmp_path: Path) -> None:
    cluster = parse_inventory(INVENTORY)
    ctx = HostContext(cluster, cluster.host("m2"), tmp_path)
    scripts = [c.script for c in RenewStep().check(ctx, facts(joined=True))]
    assert "https://10.0.0.10:8443/readyz" in scripts[0] and "exit 75" in scripts[0]  # the API answers, or refuse
    assert scripts[1] == "kubeadm certs renew all --config /etc/kubernetes/keelson/kubeadm-init.yaml >/dev/null"
    assert len(scripts) == 2 + len(STATIC_PODS)
    for name, script in zip(STATIC_PODS, scripts[2:], strict=True):
        assert f"--name '^{name}$'" in script and "crictl stop" in script
        assert '"$new" != "$old"' in script and "exit 75" in script  # a new container, with a deadline


def test_a_master_not_set_up_yet_has_nothing_to_renew(tmp_path: Path) -> None:
    cluster = parse_inventory(INVENTORY)
    assert RenewStep().check(HostContext(cluster, cluster.host("m3"), tmp_path), facts(joined=False)) == []


def test_the_plan_is_the_masters_one_at_a_time_behind_the_health_gate() -> None:
    cluster = parse_inventory(INVENTORY)
    (phase,) = renew.plan(cluster).phases
    assert isinstance(phase, Phase) and phase.serial and phase.gate is apiserver_healthy
    assert not phase.gate_after_changes_only  # every master renewed is checked before the next
    assert [h.name for h in phase.hosts(cluster)] == ["m1", "m2", "m3"]
