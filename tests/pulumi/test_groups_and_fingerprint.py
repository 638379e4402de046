"""The cluster's phase groups and their fingerprints (pure: no host, no Pulumi engine)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory.loader import load_inventory, parse_inventory
from inventory.model import Cluster
from provision.cluster import ClusterHost, groups
from provision.cluster.component import hosts_of
from provision.cluster.fingerprint import fingerprint
from provision.cluster.workdir import merged, read_state, write_state
from roles.plans import apply

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "inventory" / "examples").glob("*.yaml"))


def _cluster(mutate=None) -> Cluster:
    data = yaml.safe_load((ROOT / "inventory/examples/lab.yaml").read_text())
    if mutate is not None:
        mutate(data)
    return parse_inventory(yaml.safe_dump(data), source="test")


def _digests(cluster: Cluster, state: Path) -> dict[str, dict[str, Any]]:
    """Every resource's fingerprint as the cluster component lays them out (per host for per-host groups)."""
    out: dict[str, dict[str, Any]] = {}
    hosts = [ClusterHost(h.name, tuple(r.value for r in h.roles), h.os.value) for h in cluster.hosts]
    for group in groups.enabled(kubernetes=True):
        if group.per_host:
            for name in hosts_of(group, hosts):  # the hosts the component makes a resource of this group for
                out[f"{group.name}-{name}"] = fingerprint(cluster, group, [name], state)
        else:
            out[group.name] = fingerprint(cluster, group, [h.name for h in cluster.hosts], state)
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_phase_of_the_apply_plan_belongs_to_exactly_one_group(path: Path) -> None:
    cluster = load_inventory(path)
    for phase in apply.phases(cluster):
        owners = [g.name for g in groups.GROUPS if g.owns(phase)]
        if phase.title in groups.ALWAYS:
            assert owners == [], phase.title
        else:
            assert len(owners) == 1, (phase.title, owners)


def test_kubernetes_groups_are_one_switch_away() -> None:
    without = [g.name for g in groups.enabled(kubernetes=False)]
    with_k8s = [g.name for g in groups.enabled(kubernetes=True)]
    assert without == ["host", "pki", "etcd", "lb", "backups"]
    assert with_k8s == [g.name for g in groups.GROUPS]
    assert groups.enabled() == groups.enabled(kubernetes=groups.KUBERNETES_PROVEN)


def test_fingerprints_are_stable_for_the_same_inputs(tmp_path: Path) -> None:
    """With the state a run leaves (keys made once: the PKI, the backup key), every look gives the same digests."""
    cluster = _cluster()
    filled = write_state(tmp_path / "s1", {}).path
    _digests(cluster, filled)  # rendering against an empty state makes what the phases would make
    kept = read_state(filled)
    assert any(k.startswith("backup/") for k in kept)
    # each look has its own private folder (as in the provider: <folder>/state); its name is no input
    first = _digests(cluster, write_state(tmp_path / "a" / "state", kept).path)
    second = _digests(cluster, write_state(tmp_path / "b" / "state", kept).path)
    assert first == second


def test_a_label_on_one_worker_changes_only_that_workers_resources(tmp_path: Path) -> None:
    state = write_state(tmp_path / "state", {}).path
    before = _digests(_cluster(), state)

    def label(data: dict[str, Any]) -> None:
        data["hosts"][3]["labels"] = {"tier": "web"}

    after = _digests(_cluster(label), state)
    changed = sorted(k for k in before if before[k]["fingerprint"] != after[k]["fingerprint"])
    assert changed == ["host-w1", "node-w1", "worker-w1"]
    assert after["host-w1"]["phases"]["host w1"] != before["host-w1"]["phases"]["host w1"]
    assert after["host-w1"]["phases"]["Prepare hosts"] == before["host-w1"]["phases"]["Prepare hosts"]


def test_a_new_address_changes_every_hosts_etc_hosts_and_the_cluster_wide_groups_that_use_it(tmp_path: Path) -> None:
    state = write_state(tmp_path / "state", {}).path
    before = _digests(_cluster(), state)

    def move(data: dict[str, Any]) -> None:
        data["hosts"][0]["address"] = "198.18.0.15"  # m1

    after = _digests(_cluster(move), state)
    changed = {k for k in before if before[k]["fingerprint"] != after[k]["fingerprint"]}
    # /etc/hosts on every host names m1; the etcd certificates, members, proxy backends and VRRP peers follow it
    assert {f"host-{h}" for h in ("m1", "m2", "m3", "w1", "w2")} <= changed
    assert {"pki", "etcd", "lb"} <= changed


def test_the_vip_changes_the_load_balancer_and_etc_hosts_only(tmp_path: Path) -> None:
    state = write_state(tmp_path / "state", {}).path
    before = _digests(_cluster(), state)

    def vip(data: dict[str, Any]) -> None:
        data["control_plane"]["vip"] = "198.18.0.101/24"

    after = _digests(_cluster(vip), state)
    changed = {k for k in before if before[k]["fingerprint"] != after[k]["fingerprint"]}
    assert "lb" in changed
    assert {f"host-{h}" for h in ("m1", "m2", "m3", "w1", "w2")} <= changed  # `<vip> <cluster>-api` in /etc/hosts
    assert not changed & {"pki", "etcd", "backups"}
    assert after["host-w1"]["phases"]["Container runtime"] == before["host-w1"]["phases"]["Container runtime"]


def test_a_reissued_certificate_changes_the_groups_that_upload_it(tmp_path: Path) -> None:
    from roles.pki.store import ensure_etcd_pki
    from roles.state import StateDir

    cluster = _cluster()
    state = tmp_path / "state"
    ensure_etcd_pki(cluster, StateDir(state))
    before = _digests(cluster, state)
    files = read_state(state)
    victim = next(k for k in files if k.endswith(".crt") and "m2" in k)
    other = copy.deepcopy(files)
    other[victim] = other[next(k for k in files if k.endswith(".crt") and "m3" in k)]
    after = _digests(cluster, write_state(tmp_path / "other", other).path)
    assert before["pki"]["fingerprint"] != after["pki"]["fingerprint"]
    assert before["host-m2"] == after["host-m2"]


def test_state_merge_prefers_what_comes_down_the_chain() -> None:
    assert merged({"a": "new"}, {"a": "old", "b": "own"}) == {"a": "new", "b": "own"}
    assert merged(None, None) == {}


def test_state_names_must_be_plain_relative_paths(tmp_path: Path) -> None:
    from inventory.errors import KeelsonError

    for bad in ("../escape", "/etc/passwd", ""):
        with pytest.raises(KeelsonError):
            write_state(tmp_path / "s", {bad: "eA=="})
