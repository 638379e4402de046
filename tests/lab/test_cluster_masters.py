"""Masters join and leave a running cluster (issue 15, day-2), real components, one 5-master lab for the module.

The lab boots m1…m5; `keelson apply` of an inventory that lists only m1…m3 makes the cluster. Then, in order:
- `keelson join m4 m5` (the lab's own inventory, 5 masters): etcd has 5 healthy members and 5 control-plane nodes are
  Ready through the VIP; on m1…m3 only the load balancer changed — haproxy and keepalived reloaded (same main pid,
  the new backends and VRRP peers in their configs), no unit restarted and no pod sandbox replaced; the API answered
  through the VIP all along; a rerun changes nothing; `keelson plan` of the 5-master inventory plans only files on
  m1…m3 (/etc/hosts, kubeadm's configuration, the backup agent's config), nothing on m4 and m5;
- `keelson remove m5` is refused (exit 2: 5 → 4 members, an even count) and changes nothing;
- `keelson remove m4 m5` (5 → 3): 3 etcd members, the nodes gone, 3 masters Ready; m4 and m5 reset (etcd's data and
  config gone, keepalived stopped); haproxy on m1…m3 without them, reloaded; one host holds the VIP;
- `keelson apply` of the 3-master inventory changes nothing.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from provision.bench.vip_bench import TLS, single_holder
from provision.lab import Lab
from roles.etcd.defaults import DEFAULTS as ETCD
from tests.conftest import LabFactory
from tests.kube_helpers import Kubectl, artifact_set, keelson, kubectl_for, ready_nodes, run_finished

pytestmark = [pytest.mark.lab, pytest.mark.artifacts, pytest.mark.slow, pytest.mark.timeout(3600)]

OLD = ["m1", "m2", "m3"]
NEW = ["m4", "m5"]
ALL = OLD + NEW
# What a join or a removal could restart on the masters that stay: a unit restart gives a new InvocationID, a changed
# static pod or DaemonSet a new pod sandbox. haproxy and keepalived are reloaded: same InvocationID and main pid.
FINGERPRINT = (
    "for u in kubelet containerd etcd haproxy keepalived; do "
    'echo "$u $(systemctl show -p InvocationID --value $u) $(systemctl show -p MainPID --value $u)"; done; '
    "echo ---; crictl --runtime-endpoint unix:///run/containerd/containerd.sock pods --state ready -o json"
)
MEMBERS = (
    "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/pki/ca.crt "
    "--cert=/etc/etcd/pki/healthcheck-client.crt --key=/etc/etcd/pki/healthcheck-client.key member list -w json"
)


@dataclass
class Drill:
    lab: Lab
    full: Path  # the lab's inventory: 5 masters
    base: Path  # the one the cluster was applied from: m1, m2, m3
    state: Path
    kubectl: Kubectl
    gaps: dict[str, float] = field(default_factory=dict)  # longest time without an answer through the VIP, per step


@pytest.fixture(scope="module")
def drill(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Drill:
    artifact_set()  # built before any host boots
    lab = lab_factory("t-masters", masters=5, workers=0)
    tmp = tmp_path_factory.mktemp("masters")
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["hosts"] = [h for h in data["hosts"] if h["name"] not in NEW]
    base = tmp / "three-masters.yaml"
    base.write_text(yaml.safe_dump(data, sort_keys=False))
    state = tmp / "state"
    keelson("apply", "-i", str(base), state=state)
    return Drill(lab, lab.inventory_path, base, state, kubectl_for(base, state, tmp))


@dataclass(frozen=True)
class Fingerprint:
    units: tuple[str, ...]  # "<unit> <InvocationID> <MainPID>"
    sandboxes: dict[str, str]  # ready pod sandbox id → namespace/name

    @classmethod
    def parse(cls, stdout: str) -> Fingerprint:
        units, _, pods = stdout.partition("---\n")
        items = json.loads(pods).get("items") or []
        named = {p["id"]: f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in items}
        return cls(tuple(units.splitlines()), named)


def fingerprints(lab: Lab, hosts: list[str]) -> dict[str, Fingerprint]:
    return {h: Fingerprint.parse(lab.run(h, FINGERPRINT).stdout) for h in hosts}


def units(fingerprint: dict[str, Fingerprint]) -> dict[str, tuple[str, ...]]:
    """The units' lines of each fingerprint (not the pod sandboxes)."""
    return {h: fp.units for h, fp in fingerprint.items()}


def replaced(before: dict[str, Fingerprint], after: dict[str, Fingerprint]) -> dict[str, list[str]]:
    """Per host, the pods whose ready sandbox of `before` is gone `after` (a pod replaced, or its sandbox remade).
    A sandbox that is new but replaced none (a pod that became ready since) is not counted."""
    out = {}
    for host, fp in before.items():
        gone = sorted(name for sid, name in fp.sandboxes.items() if sid not in after[host].sandboxes)
        if gone:
            out[host] = gone
    return out


def members(lab: Lab, host: str = "m1") -> list[str]:
    return sorted(m.get("name", "") for m in json.loads(lab.run(host, MEMBERS).stdout)["members"])


def changed_phases(stdout: str) -> dict[str, set[str]]:
    """Per host, the phases in which it changed (or, for a plan, would change)."""
    out: dict[str, set[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("{") and '"host_changed"' in line:
            event = json.loads(line)
            out.setdefault(event["host"], set()).add(event["phase"])
    return out


def planned(stdout: str) -> dict[str, list[str]]:
    """Per host, the commands a `--json` run planned."""
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("{") and '"host_planned"' in line:
            event = json.loads(line)
            out.setdefault(event["host"], []).extend(event["commands"])
    return out


def phase_ends(stdout: str) -> list[tuple[str, float]]:
    """When each phase of a `--json` run ended, in seconds from the run's start (summed phase times)."""
    ends, total = [], 0.0
    for line in stdout.splitlines():
        if line.startswith("{") and '"phase_finished"' in line:
            event = json.loads(line)
            total += float(event.get("seconds") or 0)
            ends.append((event["phase"][:40], round(total, 1)))
    return ends


class VipProbe:
    """`/readyz` through the VIP from this machine every 0.2 s while a step runs: the longest time without an answer."""

    def __init__(self, vip: str) -> None:
        self.url = f"https://{vip}:8443/readyz"
        self.answers: list[float] = []
        self.failed: list[tuple[float, str]] = []  # when (seconds into the step) a probe got no "ok", and why
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _ask(self) -> str:
        """ "ok", or why not: the HTTP status /readyz answered with, or the connection's error."""
        try:
            with urllib.request.urlopen(self.url, context=TLS, timeout=2) as resp:
                return str(resp.read().decode())
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except OSError as exc:
            return type(exc).__name__ + (f" {exc.reason}" if isinstance(exc, urllib.error.URLError) else "")

    def _run(self) -> None:
        while not self.stop.is_set():
            asked = time.monotonic()
            said = self._ask()
            if said == "ok":
                self.answers.append(time.monotonic())
            else:
                self.failed.append((round(asked - self.started, 1), said))
            self.stop.wait(0.2)

    def __enter__(self) -> VipProbe:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.ended = time.monotonic()

    @property
    def longest_gap(self) -> float:
        times = [self.started, *self.answers, self.ended]
        return max(b - a for a, b in itertools.pairwise(times))


def test_two_masters_join_and_only_the_load_balancers_change_elsewhere(drill: Drill) -> None:
    before = fingerprints(drill.lab, OLD)
    assert all(len(fp.units) == 5 and fp.sandboxes for fp in before.values()), before  # on every master
    holder = single_holder(drill.lab, OLD)
    with VipProbe(drill.lab.vip) as probe:
        started = time.monotonic()
        out = keelson("join", "-i", str(drill.full), *NEW, "--json", state=drill.state).stdout
        print(f"keelson join m4 m5: {time.monotonic() - started:.1f} s")
    drill.gaps["join"] = probe.longest_gap
    print(f"join: longest gap {probe.longest_gap:.2f} s, probes not ok (s into the join, why): {probe.failed}")
    print(f"join: phases ended at (s): {phase_ends(out)}")
    done = run_finished(out)
    assert done["ok"], out[-3000:]
    phases = changed_phases(out)
    assert sorted(phases) == ALL, phases
    for master in OLD:  # on the masters that stay, only the load balancer's files, reloaded
        assert phases[master] == {"Load balancer | The other hosts' backends and VRRP peers (reload)"}, phases
    after = fingerprints(drill.lab, OLD)
    print("join: ready pod sandboxes before/after:", {h: (before[h].sandboxes, after[h].sandboxes) for h in OLD})
    assert units(after) == units(before), "a unit restarted (or was not just reloaded) on m1, m2 or m3"
    assert replaced(before, after) == {}, "a pod replaced on m1, m2 or m3 (its ready sandbox gone)"
    assert probe.longest_gap < 10, f"the API through the VIP did not answer for {probe.longest_gap:.1f} s"

    assert members(drill.lab) == ALL
    status = json.loads(keelson("status", "-i", str(drill.full), "--json", state=drill.state).stdout)
    assert len(status["etcd"]) == 5 and all(m["healthy"] for m in status["etcd"]), status["etcd"]
    assert ready_nodes(drill.kubectl) == ALL
    control = drill.kubectl.json("get", "nodes", "-l", "node-role.kubernetes.io/control-plane")["items"]
    assert sorted(n["metadata"]["name"] for n in control) == ALL
    haproxy = drill.lab.run("m1", "cat /etc/haproxy/haproxy.cfg").stdout
    assert all(f"server {m} " in haproxy for m in ALL), haproxy
    keepalived = drill.lab.run("m2", "cat /etc/keepalived/keepalived.conf").stdout
    assert all(drill.lab.host(m).address in keepalived for m in NEW), keepalived
    config = drill.lab.run("m5", f"cat {ETCD.config_file}").stdout
    assert "initial-cluster-state: existing" in config and config.count("=https://") == 5, config
    assert "initial-cluster-state: new" in drill.lab.run("m1", f"cat {ETCD.config_file}").stdout
    assert single_holder(drill.lab, ALL) == holder, "the VIP moved: keepalived was restarted, not reloaded"

    again = run_finished(keelson("join", "-i", str(drill.full), *NEW, "--json", state=drill.state).stdout)
    assert again["ok"] and {h: c["changed"] for h, c in again["hosts"].items() if c["changed"]} == {}, again


def test_a_plan_of_the_five_master_inventory_changes_files_only_on_the_old_masters(drill: Drill) -> None:
    """What the join left to the next apply: files that name the new masters on m1…m3 (nothing restarts: no unit,
    no apiserver, no etcd member), nothing on m4 and m5."""
    out = keelson("plan", "-i", str(drill.full), "--json", state=drill.state).stdout
    assert run_finished(out)["ok"], out[-3000:]
    phases = changed_phases(out)
    assert set(phases) <= set(OLD), phases
    files_only = {
        "Prepare hosts",  # /etc/hosts
        "Control plane | Configuration (apiserver hardening, kubeadm)",  # certSANs and etcd endpoints
        "backups | agent and timer",  # the agent's etcd endpoints
    }
    for master, seen in phases.items():
        assert seen <= files_only, (master, seen)
    commands = [c for cs in planned(out).values() for c in cs]
    assert not any("restart" in c or "crictl stop" in c for c in commands), commands


def test_removing_one_master_of_five_is_refused(drill: Drill) -> None:
    refused = keelson("remove", "-i", str(drill.full), "m5", state=drill.state, check=False)
    said = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode == 2, said
    assert "m5: refused, 5 → 4 etcd members is an even count" in said and "Traceback" not in said
    assert members(drill.lab) == ALL
    assert ready_nodes(drill.kubectl) == ALL


def test_removing_two_masters_leaves_three_and_the_load_balancers_without_them(drill: Drill) -> None:
    before = fingerprints(drill.lab, OLD)
    holder = single_holder(drill.lab, ALL)
    with VipProbe(drill.lab.vip) as probe:
        started = time.monotonic()
        out = keelson("remove", "-i", str(drill.full), *NEW, "--json", state=drill.state).stdout
        print(f"keelson remove m4 m5: {time.monotonic() - started:.1f} s")
    drill.gaps["remove"] = probe.longest_gap
    print(f"remove: longest gap {probe.longest_gap:.2f} s, probes not ok (s into the removal, why): {probe.failed}")
    assert all(
        json.loads(line)["ok"] for line in out.splitlines() if line.startswith("{") and '"run_finished"' in line
    ), out[-3000:]
    assert members(drill.lab) == OLD
    nodes = [n["metadata"]["name"] for n in drill.kubectl.json("get", "nodes")["items"]]
    assert sorted(nodes) == OLD
    assert ready_nodes(drill.kubectl) == OLD
    status = json.loads(keelson("status", "-i", str(drill.base), "--json", state=drill.state).stdout)
    assert len(status["etcd"]) == 3 and all(m["healthy"] for m in status["etcd"]), status["etcd"]
    haproxy = drill.lab.run("m1", "cat /etc/haproxy/haproxy.cfg").stdout
    assert "server m3 " in haproxy and not any(f"server {m} " in haproxy for m in NEW), haproxy
    for gone in NEW:  # reset: etcd's data (the folder emptied) and config removed, keepalived and etcd stopped
        left = drill.lab.run(gone, f"ls -A /var/lib/etcd; ls {ETCD.config_file} 2>/dev/null; true").stdout.strip()
        assert left == "", (gone, left)
        assert drill.lab.run(gone, "systemctl is-active keepalived etcd", check=False).stdout.split() == [
            "inactive",
            "inactive",
        ]
    # the drain moves pods (CoreDNS) onto m1…m3: their pod sandboxes are new; their units are the same (reloads only)
    assert units(fingerprints(drill.lab, OLD)) == units(before), "a unit restarted on m1, m2 or m3"
    still = single_holder(drill.lab, OLD)
    assert still == holder or holder in NEW, (holder, still)
    assert probe.longest_gap < 10, f"the API through the VIP did not answer for {probe.longest_gap:.1f} s"


def test_the_apply_of_the_three_master_inventory_changes_nothing(drill: Drill) -> None:
    out = keelson("apply", "-i", str(drill.base), "--json", state=drill.state).stdout
    done = run_finished(out)
    assert done["ok"], out[-3000:]
    assert {h: c["changed"] for h, c in done["hosts"].items() if c["changed"]} == {}, changed_phases(out)
    print(f"longest gaps through the VIP: {drill.gaps}")
