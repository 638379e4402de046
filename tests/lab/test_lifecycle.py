"""Day-2 on a real cluster (issue 15): one 3-master + 2-worker lab, applied without w2, shared by the module.

- `keelson join w2`: only w2 changes — no unit restarted and no container replaced on any other host (systemd
  InvocationIDs and the running container IDs, before and after), a `keelson plan` of the old inventory says the other
  hosts still match it — and all 5 nodes are Ready through the VIP; a rerun changes nothing;
- `keelson verify` passes, and fails naming the member when one etcd member is stopped;
- `keelson remove w2` after `keelson lab kill w2`: succeeds, the node is gone, the host is said not reset; back up,
  `keelson reset w2 --yes` cleans it (a rerun changes nothing) and it joins again, Ready.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from provision.lab import Lab, faults
from tests.conftest import LabFactory
from tests.kube_helpers import Kubectl, artifact_set, keelson, kubectl_for, ready_nodes, run_finished, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.timeout(2400)]  # the first test pays the apply (fixture)

FINGERPRINT = (
    'for u in kubelet containerd etcd haproxy keepalived; do echo "$u $(systemctl show -p InvocationID --value $u)";'
    " done; crictl --runtime-endpoint unix:///run/containerd/containerd.sock ps -q 2>/dev/null | sort"
)
OTHERS = ["m1", "m2", "m3", "w1"]


@dataclass
class Cluster:
    lab: Lab
    full: Path  # the inventory with w2
    base: Path  # the inventory the cluster was applied from (without w2)
    state: Path
    kubectl: Kubectl


@pytest.fixture(scope="module")
def cl(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    artifact_set()
    lab = lab_factory("t-life", masters=3, workers=2)
    tmp = tmp_path_factory.mktemp("lifecycle")
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["hosts"] = [h for h in data["hosts"] if h["name"] != "w2"]
    base = tmp / "base.yaml"
    base.write_text(yaml.safe_dump(data))
    state = tmp / "state"
    keelson("apply", "-i", str(base), state=state)
    return Cluster(lab, lab.inventory_path, base, state, kubectl_for(base, state, tmp))


def fingerprints(lab: Lab, hosts: list[str]) -> dict[str, str]:
    return {h: lab.run(h, FINGERPRINT).stdout for h in hosts}


def test_join_changes_only_the_new_host(cl: Cluster) -> None:
    before = fingerprints(cl.lab, OTHERS)
    assert all(" " in line for fp in before.values() for line in fp.splitlines()[:2])  # kubelet, containerd: ids
    done = run_finished(keelson("join", "-i", str(cl.full), "w2", "--json", state=cl.state).stdout)
    assert done["ok"], done
    assert [h for h, c in done["hosts"].items() if c["changed"]] == ["w2"]
    assert fingerprints(cl.lab, OTHERS) == before, "a unit restarted or a container replaced on another host"
    assert ready_nodes(cl.kubectl) == ["m1", "m2", "m3", "w1", "w2"]
    unchanged = run_finished(keelson("plan", "-i", str(cl.base), "--json", state=cl.state).stdout)
    assert {h: c["changed"] for h, c in unchanged["hosts"].items() if c["changed"]} == {}, unchanged
    again = run_finished(keelson("join", "-i", str(cl.full), "w2", "--json", state=cl.state).stdout)
    assert again["ok"] and {h: c["changed"] for h, c in again["hosts"].items() if c["changed"]} == {}, again


def test_verify_passes_and_fails_naming_a_stopped_etcd_member(cl: Cluster) -> None:
    passed = keelson("verify", "-i", str(cl.full), "--json", state=cl.state, check=False)
    report = json.loads(passed.stdout.strip().splitlines()[-1])
    assert passed.returncode == 0 and report["ok"], report
    failover = next(c for c in report["checks"] if c["name"] == "vip failover")
    assert failover["figures"]["to"] != failover["figures"]["from"]
    faults.stop_unit(cl.lab, "m2", "etcd")
    try:
        failed = keelson("verify", "-i", str(cl.full), "--no-failover", state=cl.state, check=False)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "FAIL etcd: 1 of 3 members not healthy (quorum kept): m2 (https://" in " ".join(failed.stdout.split())
        assert "Traceback" not in failed.stdout + failed.stderr
    finally:
        faults.start_unit(cl.lab, "m2", "etcd")
    wait_for(
        "etcd healthy again",
        lambda: keelson("verify", "-i", str(cl.full), "--no-failover", state=cl.state, check=False).returncode == 0,
        timeout=120,
        every=3,
    )


def test_remove_a_killed_worker_then_reset_and_join_it_again(cl: Cluster) -> None:
    cl.lab.kill("w2")
    removed = keelson("remove", "-i", str(cl.full), "w2", state=cl.state)
    assert "w2: not reset, it does not answer" in " ".join(removed.stdout.split())
    assert "w2" not in [n["metadata"]["name"] for n in cl.kubectl.json("get", "nodes")["items"]]
    assert keelson("remove", "-i", str(cl.full), "w2", state=cl.state, check=False).returncode == 0  # converges
    cl.lab.start("w2")
    reset = run_finished(keelson("reset", "-i", str(cl.full), "w2", "--yes", "--json", state=cl.state).stdout)
    assert reset["ok"] and reset["hosts"]["w2"]["changed"] == 1, reset
    again = run_finished(keelson("reset", "-i", str(cl.full), "w2", "--yes", "--json", state=cl.state).stdout)
    assert again["ok"] and again["hosts"]["w2"]["changed"] == 0, again
    assert cl.lab.run("w2", "ls -A /etc/kubernetes /var/lib/kubelet").stdout.split() == [
        "/etc/kubernetes:",
        "/var/lib/kubelet:",
    ]
    rejoined = run_finished(keelson("join", "-i", str(cl.full), "w2", "--json", state=cl.state).stdout)
    assert rejoined["ok"], rejoined
    assert ready_nodes(cl.kubectl) == ["m1", "m2", "m3", "w1", "w2"]
