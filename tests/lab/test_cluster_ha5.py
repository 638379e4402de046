"""The HA control plane with 5 masters (issue 13), real components: `keelson apply` on fresh lab hosts (5 masters,
1 worker) ends with every node Ready through the VIP and keelson's etcd at 5 healthy members; a re-apply changes
nothing. Then the apiserver restart on config change (roles/control_plane/restart.py) on the real kubelet: a master
whose marker says its apiserver started with other files gets a new apiserver container, the other masters keep
theirs, and the apply after that changes nothing; switching audit off regenerates every apiserver's static pod
manifest, one master at a time. One cluster for the module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from roles.control_plane.defaults import DEFAULTS
from tests.conftest import LabFactory
from tests.kube_helpers import AppliedCluster as Cluster
from tests.kube_helpers import applied_lab, keelson, ready_nodes, run_finished

pytestmark = [pytest.mark.lab, pytest.mark.artifacts]

MASTERS = ["m1", "m2", "m3", "m4", "m5"]
APISERVER = "crictl ps --name '^kube-apiserver$' --state running -q"
APISERVER_ARGS = (  # the running apiserver's command line (the host has no ps)
    "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null | grep -E '^kube-apiserver '; done; true"
)


@pytest.fixture(scope="module")
def ha5(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return applied_lab(lab_factory, tmp_path_factory.mktemp("ha5"), "t-ha5", masters=5, workers=1)


def apply_json(c: Cluster) -> str:
    out = keelson("apply", "-i", str(c.inventory), "--json", state=c.state).stdout
    assert run_finished(out)["ok"], out[-3000:]
    return out


def changed(out: str) -> dict[str, int]:
    return {h: s["changed"] for h, s in run_finished(out)["hosts"].items() if s["changed"]}


def changed_in(out: str, phase_start: str) -> list[str]:
    """Hosts with a `host_changed` event in the phase whose title starts with `phase_start`."""
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{") and "host_changed" in line]
    return sorted(e["host"] for e in events if e["event"] == "host_changed" and e["phase"].startswith(phase_start))


def test_every_node_is_ready_through_the_vip(ha5: Cluster) -> None:
    assert ready_nodes(ha5.kubectl) == [*MASTERS, "w1"]
    server = ha5.kubectl.json("config", "view", "--minify")["clusters"][0]["cluster"]["server"]
    assert server == f"https://{ha5.lab.vip}:8443"
    control = ha5.kubectl.json("get", "nodes", "-l", "node-role.kubernetes.io/control-plane")["items"]
    assert sorted(n["metadata"]["name"] for n in control) == MASTERS


def test_etcd_has_five_healthy_members(ha5: Cluster) -> None:
    status = json.loads(keelson("status", "-i", str(ha5.inventory), "--json", state=ha5.state).stdout)
    endpoints = {m["endpoint"]: m["healthy"] for m in status["etcd"]}
    assert len(endpoints) == 5 and all(endpoints.values()), status["etcd"]
    ips = {ha5.lab.host(m).address for m in MASTERS}
    assert {e.removeprefix("https://").rsplit(":", 1)[0] for e in endpoints} == ips
    assert status["healthy"], status


def test_reapply_changes_nothing(ha5: Cluster) -> None:
    assert changed(apply_json(ha5)) == {}


def test_an_apiserver_started_with_other_files_is_restarted_alone(ha5: Cluster) -> None:
    before = {m: ha5.lab.run(m, APISERVER).stdout.strip() for m in MASTERS}
    assert all(before.values()), before
    # The marker holds the digest of the config files the running apiserver read; another one means they changed.
    ha5.lab.run("m3", f"echo 0000 > {DEFAULTS.apiserver_marker}")
    assert changed_in(apply_json(ha5), "Control plane | Join masters") == ["m3"]
    after = {m: ha5.lab.run(m, APISERVER).stdout.strip() for m in MASTERS}
    assert after["m3"] and after["m3"] != before["m3"], "m3 runs a new apiserver container"
    assert {m: after[m] for m in MASTERS if m != "m3"} == {m: before[m] for m in MASTERS if m != "m3"}
    assert ha5.kubectl("get", "--raw", "/readyz").strip() == "ok"
    assert changed_in(apply_json(ha5), "Control plane") == []


def test_switching_audit_off_regenerates_every_apiserver_manifest_one_at_a_time(ha5: Cluster, tmp_path: Path) -> None:
    """`security.audit: false` changes kubeadm's flags, not only a file: each master's static pod manifest is
    regenerated (`kubeadm init phase control-plane apiserver`), one master at a time behind the health gate, and the
    apiservers run without the audit flags. Last in the module: the cluster stays without audit."""
    doc = yaml.safe_load(ha5.inventory.read_text())
    doc.setdefault("security", {})["audit"] = False
    inventory = tmp_path / "no-audit.yaml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = keelson("apply", "-i", str(inventory), "--json", state=ha5.state).stdout
    assert run_finished(out)["ok"], out[-3000:]
    assert changed_in(out, "Control plane | Join masters") == MASTERS
    for master in MASTERS:
        manifest = ha5.lab.run(master, f"cat {DEFAULTS.manifests_dir}/kube-apiserver.yaml").stdout
        assert "--authentication-config=" in manifest and "audit" not in manifest, master
        args = ha5.lab.run(master, APISERVER_ARGS).stdout
        assert "--authentication-config=" in args and "--audit-policy-file" not in args, (master, args)
    assert ha5.kubectl("get", "--raw", "/readyz").strip() == "ok"
    again = keelson("apply", "-i", str(inventory), "--json", state=ha5.state).stdout
    assert changed(again) == {}
