"""The upgrade's cordon and uncordon when the API refuses a write (issue 15's unsettled drill: m1 found cordoned after
its upgrade while the run went on). The commands run in bash as on a master, against a kubectl stand-in that keeps one
node's spec.unschedulable and annotations in a file and refuses the next N writes the way kubectl v0.37.2 reports them:
`kubectl patch`/`annotate` exit 1; `kubectl cordon`/`uncordon` (and drain's cordon) print `error: unable to uncordon
node` and exit 0 (pkg/cmd/drain/drain.go RunCordonOrUncordon: `printError(err); continue`, then `return nil`).

The invariant a rerun depends on: a node keelson cordoned carries keelson's annotation until it is schedulable again
(`cordoned_by_us` finds it by that annotation; a cordon without it is a user's own and is left alone). On a rerun such
a node, already at the target, passes the same health gate before its uncordon (hosts answered by a stand-in)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from inventory.loader import parse_inventory
from provision.artifacts.catalog import release
from provision.artifacts.sources import Resolver
from roles.engine.context import RunContext
from roles.engine.transport import CommandResult
from roles.etcd.commands import member_client_url
from roles.upgrade.nodes import (
    ANNOTATION,
    Group,
    UpgradeNodes,
    UpgradeSpec,
    UpgradeStopped,
    cordoned_by_us,
    drain,
    kubectl,
    uncordon,
)
from roles.upgrade.versions import CONTROL_PLANE, Version

# STAND-IN: kubectl for one node, its state in $NODE_FILE, $REFUSE_FILE holding how many writes the API refuses next.
STUB_KUBECTL = """#!{python}
import json, os, sys
args = [a for a in sys.argv[1:]]
if args[:1] == ["--kubeconfig"]:
    args = args[2:]
node_file, refuse_file = os.environ["NODE_FILE"], os.environ["REFUSE_FILE"]
node = json.load(open(node_file))
with open(os.environ["CALLS_FILE"], "a") as calls:
    calls.write(" ".join(args) + "\\n")

def refused():
    left = int(open(refuse_file).read() or 0)
    if left <= 0:
        return False
    open(refuse_file, "w").write(str(left - 1))
    return True

def save():
    json.dump(node, open(node_file, "w"))

ERROR = "etcdserver: leader changed"
verb = args[0]
if verb in ("cordon", "uncordon", "drain"):
    want = verb != "uncordon"
    if bool(node["spec"].get("unschedulable")) == want:
        print(f"node/{{args[1]}} already {{verb}}ed")
    elif refused():
        print(f'error: unable to {{"uncordon" if verb == "uncordon" else "cordon"}} node "{{args[1]}}": {{ERROR}}',
              file=sys.stderr)
    else:
        node["spec"]["unschedulable"] = want
        save()
        print(f"node/{{args[1]}} {{'uncordon' if verb == 'uncordon' else 'cordon'}}ed")
    if verb == "drain":
        print(f"node/{{args[1]}} drained")
    sys.exit(0)
if verb == "annotate":
    if refused():
        print(f"Error from server: {{ERROR}}", file=sys.stderr)
        sys.exit(1)
    notes = node["metadata"].setdefault("annotations", {{}})
    change = args[3]
    if change.endswith("-"):
        notes.pop(change[:-1], None)
    else:
        key, _, value = change.partition("=")
        notes[key] = value
    save()
    sys.exit(0)
if verb == "patch":
    if refused():
        print(f"Error from server: {{ERROR}}", file=sys.stderr)
        sys.exit(1)
    patch = json.loads(args[args.index("-p") + 1])
    for key, value in patch["metadata"]["annotations"].items():
        notes = node["metadata"].setdefault("annotations", {{}})
        notes.pop(key, None) if value is None else notes.__setitem__(key, value)
    unschedulable = patch["spec"]["unschedulable"]
    node["spec"].pop("unschedulable", None) if unschedulable is None else node["spec"].__setitem__(
        "unschedulable", unschedulable)
    save()
    print("Warning: a warning the API may add", file=sys.stderr)
    print("true" if node["spec"].get("unschedulable") else "", end="")
    sys.exit(0)
sys.exit(f"stub kubectl: {{args}} not known")
"""
TARGET = Version(1, 37, 2)


class Node:
    """One node behind the stand-in: run a command against it, read it back."""

    def __init__(self, tmp: Path, *, unschedulable: bool, annotated: bool) -> None:
        self.tmp = tmp
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        stub = bin_dir / "kubectl"
        stub.write_text(STUB_KUBECTL.format(python=sys.executable))
        stub.chmod(0o755)
        self.file, self.refuse_file, self.calls_file = tmp / "node.json", tmp / "refuse", tmp / "calls"
        notes = {ANNOTATION: str(TARGET)} if annotated else {}
        spec = {"unschedulable": True} if unschedulable else {}
        self.file.write_text(json.dumps({"metadata": {"name": "m1", "annotations": notes}, "spec": spec}))
        self.calls_file.write_text("")
        self.env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "NODE_FILE": str(self.file),
            "REFUSE_FILE": str(self.refuse_file),
            "CALLS_FILE": str(self.calls_file),
        }

    def run(self, script: str, refuse: int) -> subprocess.CompletedProcess[str]:
        self.refuse_file.write_text(str(refuse))
        return subprocess.run(
            ["bash", "-c", script], check=False, capture_output=True, text=True, env=self.env, timeout=60
        )

    @property
    def cordoned(self) -> bool:
        return bool(json.loads(self.file.read_text())["spec"].get("unschedulable"))

    @property
    def ours(self) -> bool:
        """What a rerun sees: keelson's annotation on it (roles.upgrade.nodes.cordoned_by_us)."""
        return cordoned_by_us(json.dumps({"items": [json.loads(self.file.read_text())]}))["m1"]

    @property
    def calls(self) -> list[str]:
        return self.calls_file.read_text().splitlines()


def test_the_old_uncordon_left_the_node_cordoned_and_unmarked_when_the_api_refused_once(tmp_path: Path) -> None:
    """The root cause, reproduced: `kubectl uncordon` said nothing through its exit status, the annotation went."""
    node = Node(tmp_path, unschedulable=True, annotated=True)
    old = kubectl("uncordon m1") + " && " + kubectl(f"annotate node m1 {ANNOTATION}- >/dev/null")
    result = node.run(old, refuse=1)
    assert result.returncode == 0 and 'unable to uncordon node "m1"' in result.stderr
    assert node.cordoned and not node.ours, "cordoned, and a rerun takes it for a user's own cordon"


@pytest.mark.parametrize("refuse", [0, 1, 3])
def test_uncordon_retries_a_refused_write_until_the_node_is_schedulable_and_unmarked(
    tmp_path: Path, refuse: int
) -> None:
    node = Node(tmp_path, unschedulable=True, annotated=True)
    result = node.run(uncordon("m1", patch_s=30).script, refuse=refuse)
    assert result.returncode == 0, result.stderr
    assert not node.cordoned and not node.ours
    assert len([c for c in node.calls if c.startswith("patch node m1")]) == refuse + 1


def test_uncordon_the_api_keeps_refusing_fails_and_the_node_stays_marked_for_the_rerun(tmp_path: Path) -> None:
    node = Node(tmp_path, unschedulable=True, annotated=True)
    result = node.run(uncordon("m1", patch_s=1).script, refuse=1000)
    assert result.returncode == 75
    assert "m1 not uncordoned after 1 s (last:" in result.stderr and "leader changed" in result.stderr
    assert node.cordoned and node.ours, "still keelson's cordon: the rerun gates and uncordons it"


def test_an_older_half_done_uncordon_is_finished(tmp_path: Path) -> None:
    """Schedulable, annotation left (the old command's uncordon went through, its annotate did not)."""
    node = Node(tmp_path, unschedulable=False, annotated=True)
    assert node.ours
    assert node.run(uncordon("m1", patch_s=30).script, refuse=0).returncode == 0
    assert not node.cordoned and not node.ours


@pytest.mark.parametrize("refuse", [0, 2])
def test_drain_cordons_and_marks_in_one_write_retried_then_drains(tmp_path: Path, refuse: int) -> None:
    node = Node(tmp_path, unschedulable=False, annotated=False)
    result = node.run(drain("m1", TARGET, 60, patch_s=30).script, refuse=refuse)
    assert result.returncode == 0, result.stderr
    assert node.cordoned and node.ours
    assert node.calls[-1].startswith("drain m1 --ignore-daemonsets")


def test_drain_does_not_start_on_a_node_it_could_not_cordon(tmp_path: Path) -> None:
    node = Node(tmp_path, unschedulable=False, annotated=False)
    result = node.run(drain("m1", TARGET, 60, patch_s=1).script, refuse=1000)
    assert result.returncode == 75 and "m1 not cordoned after 1 s" in result.stderr
    assert not node.cordoned and not node.ours
    assert not any(c.startswith("drain") for c in node.calls)


def test_a_users_own_cordon_is_not_ours() -> None:
    nodes = {"items": [{"metadata": {"name": "w1"}, "spec": {"unschedulable": True}}]}
    assert cordoned_by_us(json.dumps(nodes)) == {"w1": False}


# -- the rerun: a node already at the target that keelson's annotation still marks ------------------------------

INVENTORY = """
name: prod
kubernetes: {version: v1.37.2, artifacts: {source: local, local: /nonexistent}}
hosts:
  - {name: m1, address: 10.0.0.11, roles: [master]}
  - {name: m2, address: 10.0.0.12, roles: [master]}
  - {name: m3, address: 10.0.0.13, roles: [master]}
  - {name: w1, address: 10.0.0.21, roles: [worker]}
control_plane: {vip: 10.0.0.10/24}
"""
DONE = "kubelet Kubernetes v1.37.2\nrunning 990 /usr/local/bin/kubelet\nkubeadm v1.37.2\n" + "".join(
    f"manifest {c} registry.k8s.io/{c}:v1.37.2\n" for c in CONTROL_PLANE
)


@dataclass
class Answering:
    """A host's transport that answers by what the script asks; every script is logged as (host, script)."""

    host: str
    log: list[tuple[str, str]]
    nodes: dict[str, Any]
    late: str = ""  # a wait that times out: a script containing this exits 75

    def run(self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False) -> Any:
        self.log.append((self.host, script))
        if self.late and self.late in script:
            return CommandResult(75, "", "w1 not Ready at v1.37.2 after 300 s (last: v1.37.2 False)")
        if "--version" in script and "MainPID" in script:
            return CommandResult(0, DONE, "")
        if "get nodes -o json" in script:
            return CommandResult(0, json.dumps(self.nodes), "")
        if "endpoint health" in script:
            cluster = parse_inventory(INVENTORY)
            members = [{"endpoint": member_client_url(cluster, h), "health": True} for h in cluster.etcd_members]
            return CommandResult(0, json.dumps(members), "")
        return CommandResult(0, "", "")


def rerun(tmp_path: Path, host: str, nodes: dict[str, Any], late: str = "") -> tuple[Any, list[tuple[str, str]]]:
    cluster = parse_inventory(INVENTORY)
    log: list[tuple[str, str]] = []
    transports = {h.name: Answering(h.name, log, nodes, late) for h in cluster.hosts}
    pool = SimpleNamespace(get=lambda h: transports[h.name])
    group: Group = "workers" if host.startswith("w") else "first"
    phase = UpgradeNodes(UpgradeSpec(TARGET, Resolver(cluster.kubernetes.artifacts, release(str(TARGET)))), group)
    outcomes = phase.run(RunContext(cluster, tmp_path), pool)  # type: ignore[arg-type]
    return outcomes[host], log


def node(name: str, *, unschedulable: bool, annotated: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {ANNOTATION: str(TARGET)} if annotated else {}},
        "spec": {"unschedulable": True} if unschedulable else {},
    }


@pytest.mark.parametrize("name", ["w1", "m1"])
def test_a_done_node_keelson_left_cordoned_is_gated_then_uncordoned(tmp_path: Path, name: str) -> None:
    outcome, log = rerun(tmp_path, name, {"items": [node(name, unschedulable=True, annotated=True)]})
    assert outcome.changed and outcome.error is None
    scripts = [s for _, s in log]
    patched = next(i for i, s in enumerate(scripts) if f"patch node {name}" in s)
    gate = [i for i, s in enumerate(scripts) if f"get node {name} -o jsonpath" in s or "/readyz" in s]
    assert gate and max(gate) < patched, "the health gate before the uncordon"
    if name == "m1":
        assert any("endpoint health" in s for s in scripts[:patched]), "a master: etcd healthy first"


def test_a_done_node_that_fails_the_gate_stays_cordoned(tmp_path: Path) -> None:
    outcome, log = rerun(tmp_path, "w1", {"items": [node("w1", unschedulable=True, annotated=True)]}, "get node w1")
    assert "w1: health gate: w1 not Ready at v1.37.2" in outcome.error
    assert not any("patch node" in s for _, s in log)


@pytest.mark.parametrize("unschedulable", [False, True])
def test_a_done_node_without_keelsons_mark_is_left_as_it_is(tmp_path: Path, unschedulable: bool) -> None:
    """Schedulable, or a user's own cordon: no gate, no patch."""
    outcome, log = rerun(tmp_path, "w1", {"items": [node("w1", unschedulable=unschedulable, annotated=False)]})
    assert not outcome.changed and outcome.error is None
    assert not any("patch node" in s or "/readyz" in s for _, s in log)


# -- never two masters down: a master's control plane restarts only while every other one is ready ---------------


def others_ready(tmp_path: Path, host: str, late: str = "") -> tuple[Exception | None, list[tuple[str, str]]]:
    cluster = parse_inventory(INVENTORY)
    log: list[tuple[str, str]] = []
    phase = UpgradeNodes(UpgradeSpec(TARGET, Resolver(cluster.kubernetes.artifacts, release(str(TARGET)))), "masters")
    me = next(h for h in cluster.hosts if h.name == host)
    try:
        phase._others_ready(RunContext(cluster, tmp_path), Answering(host, log, {}, late), me)  # type: ignore[arg-type]
    except UpgradeStopped as exc:
        return exc, log
    return None, log


def test_each_other_master_is_asked_steadily_from_the_master_about_to_restart(tmp_path: Path) -> None:
    stopped, log = others_ready(tmp_path, "m2")
    assert stopped is None
    asked = [s for _, s in log]
    assert [("https://10.0.0.11:6443/readyz" in s, "https://10.0.0.13:6443/readyz" in s) for s in asked] == [
        (True, False),
        (False, True),
    ], "m1 then m3, never m2 itself"
    assert all(h == "m2" for h, _ in log) and all("without a break" in s for s in asked)


def test_a_master_not_ready_stops_the_next_one_before_its_control_plane_restarts(tmp_path: Path) -> None:
    stopped, _ = others_ready(tmp_path, "m3", late="10.0.0.11:6443")
    assert stopped is not None
    assert "m3: not restarting its control plane while m1's apiserver is not ready" in str(stopped)
