"""The Pulumi delete hook of a worker's resource runs `keelson remove`'s plan, and only when the stack has a cluster."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from inventory.errors import KeelsonError
from inventory.loader import parse_inventory
from provision.cluster import remove as hook

INVENTORY = """
name: t
hosts:
  - {name: m1, address: 127.0.0.11, roles: [master]}
  - {name: w1, address: 127.0.0.21, roles: [worker]}
  - {name: w2, address: 127.0.0.22, roles: [worker]}
control_plane: {vip: 127.0.0.10/8}
non_ha: true
"""


def _fake_remove(result: Any, calls: list[list[str]]) -> Any:
    def remove(rc: Any, names: list[str], *, force: bool = False) -> Any:
        calls.append(list(names))
        return result

    return remove


def test_without_kubernetes_groups_nothing_is_drained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr("roles.plans.remove.remove", _fake_remove(None, calls))
    said = hook.remove_from_cluster(parse_inventory(INVENTORY), ["w1"], tmp_path, kubernetes=False)
    assert "no node to drain" in said and calls == []


def test_with_kubernetes_the_remove_plan_runs_and_names_hosts_left_unreset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[list[str]] = []
    done = SimpleNamespace(ok=True, unreachable={"w2": "timed out"}, cluster_side=None, reset=None)
    monkeypatch.setattr("roles.plans.remove.remove", _fake_remove(done, calls))
    said = hook.remove_from_cluster(parse_inventory(INVENTORY), ["w1", "w2"], tmp_path, kubernetes=True)
    assert calls == [["w1", "w2"]]
    assert said == "w1, w2: drained and removed from the cluster (not reset, not answering: w2)"


def test_a_failed_removal_raises_with_the_hosts_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    failed = SimpleNamespace(hosts={"m1": SimpleNamespace(errors=["drain w1: PodDisruptionBudget"])})
    done = SimpleNamespace(ok=False, unreachable={}, cluster_side=failed, reset=None)
    monkeypatch.setattr("roles.plans.remove.remove", _fake_remove(done, []))
    with pytest.raises(KeelsonError, match="w1: removal from the cluster failed: drain w1: PodDisruptionBudget"):
        hook.remove_from_cluster(parse_inventory(INVENTORY), ["w1"], tmp_path, kubernetes=True)
