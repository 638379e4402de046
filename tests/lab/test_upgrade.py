"""keelson upgrade for real (issue 15): a 3-master + 1-worker cluster applied at Kubernetes v1.36.3 (both artifact
sets built from their Go modules) is upgraded to v1.37.2 with `keelson upgrade`, while a watcher asks every master's
apiserver and the VIP for /readyz: never two masters down at once, and at every sample at least two apiservers pass
/readyz, whose etcd check needs a quorum read. The second master's new kubelet cannot be installed (a folder in the
way of the install's temp file; a runtime mask does not work: /etc/systemd/system, where the unit is, wins over
/run): the upgrade stops there with a message naming it, the first master done and the others untouched; the folder
removed, the same command resumes (the first master skipped) and finishes. Then `keelson apply` with the same
inventory changes nothing. Smallest lab that shows it: three masters (the quorum claim), one worker (the worker step).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provision.artifacts.build import build
from provision.artifacts.catalog import release
from provision.lab import Lab
from tests.conftest import LabFactory
from tests.kube_helpers import Kubectl, artifact_set, keelson, kubectl_for, run_finished

# UNSETTLED (README "Upgrades"): run 2 found m1 still cordoned after its upgrade (likely kubectl uncordon's exit 0 on a
# failed write; fixed in roles/upgrade/nodes.py, unit-tested); runs 3 and 4 (that fix in) uncordoned m1, but m2's
# failed kubelet install exited 0 (set -e ignored under the runner's `( script ) || …`; fixed in roles/engine/fetch.py,
# unit-tested, not yet run here). Out of the default run until it passes twice in a row:
# `uv run pytest -m unsettled tests/lab/test_upgrade.py`.
pytestmark = [pytest.mark.lab, pytest.mark.artifacts, pytest.mark.unsettled]
OLD, NEW = "v1.36.3", "v1.37.2"
MASTERS = ("m1", "m2", "m3")
IN_THE_WAY = "/usr/local/bin/.kubelet.keelson"  # the temp file the install renames onto /usr/local/bin/kubelet


@dataclass
class Upgradable:
    lab: Lab
    old: Path  # the inventory at the old version (what the cluster was applied with)
    new: Path  # the same inventory at the target
    state: Path
    kubectl: Kubectl


@pytest.fixture(scope="module")
def cluster(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> Upgradable:
    artifact_set()
    build(release(OLD), lambda event: None)  # the old release's set (cached; CI builds it cold once)
    lab = lab_factory("t-upg", masters=3, workers=1)
    tmp = tmp_path_factory.mktemp("upgrade")
    text = lab.inventory_path.read_text()
    assert f"version: {NEW}" in text
    old, new = tmp / "old.yaml", tmp / "new.yaml"
    old.write_text(text.replace(f"version: {NEW}", f"version: {OLD}"))
    new.write_text(text)
    state = tmp / "state"
    keelson("apply", "-i", str(old), state=state)
    return Upgradable(lab, old, new, state, kubectl_for(new, state, tmp))


def versions(k: Kubectl) -> dict[str, str]:
    return {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in k.json("get", "nodes")["items"]}


def cordoned(k: Kubectl) -> list[str]:
    return sorted(n["metadata"]["name"] for n in k.json("get", "nodes")["items"] if n["spec"].get("unschedulable"))


def who_cordoned(k: Kubectl) -> dict[str, str]:
    """Each cordoned node → whether keelson's annotation is on it and who last wrote its spec.unschedulable (the
    managedFields entries that own it: manager, operation, time): what a failed cordon assertion prints."""
    found = {}
    for node in k.json("get", "nodes", "--show-managed-fields")["items"]:
        meta = node["metadata"]
        if not node["spec"].get("unschedulable"):
            continue
        owners = [
            f"{m.get('manager')} {m.get('operation')} {m.get('time')}"
            for m in meta.get("managedFields") or []
            if '"f:unschedulable"' in json.dumps(m.get("fieldsV1") or {})
        ]
        annotated = "annotated" if "keelson.io/upgrade-cordoned" in (meta.get("annotations") or {}) else "no annotation"
        found[meta["name"]] = f"{annotated}; unschedulable written by {owners or 'nobody listed'}"
    return found


def kubelet_on(lab: Lab, host: str) -> str:
    """What a host says about its kubelet: the binaries' folder (the injected folder in it), the installed and the
    running binary, keelson's digest cache entry for it: what a failed install assertion prints."""
    said = lab.run(
        host,
        "ls -lai /usr/local/bin/ /usr/local/bin/.kubelet.keelson; /usr/local/bin/kubelet --version; "
        'readlink /proc/"$(systemctl show -p MainPID --value kubelet)"/exe; '
        "cat /var/lib/keelson/artifacts/digests/%usr%local%bin%kubelet",
        check=False,
    )
    return f"{host}: {said.stdout[-2500:]} {said.stderr[-500:]}"


@dataclass
class Watcher:
    """Asks each master's apiserver and the VIP for /readyz, over and over, until stopped."""

    masters: dict[str, str]  # name -> https://ip:port
    vip: str
    samples: list[tuple[float, frozenset[str], bool]] = field(default_factory=list)  # (when, masters down, vip ok)
    stop: threading.Event = field(default_factory=threading.Event)

    @staticmethod
    def ok(url: str) -> bool:
        context = ssl._create_unverified_context()  # /readyz is anonymous; only whether it answers matters here
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=3, context=context) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def run(self) -> None:
        # every master and the VIP asked at the same moment (one thread each), so a sample is one instant: asked one
        # after the other with a 3 s timeout, a sample spanned up to 12 s and "two down" could be two moments
        targets = [*self.masters.values(), self.vip]
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            while not self.stop.is_set():
                answers = list(pool.map(self.ok, targets))
                down = frozenset(name for name, up in zip(self.masters, answers, strict=False) if not up)
                self.samples.append((time.monotonic(), down, answers[-1]))
                self.stop.wait(0.5)


def longest_outages(samples: list[tuple[float, frozenset[str], bool]], masters: tuple[str, ...]) -> dict[str, float]:
    """Each master and the VIP → its longest outage in seconds: from its first failed sample to the next sample that
    answered (or the last sample). Pure."""
    longest = dict.fromkeys([*masters, "VIP"], 0.0)
    since: dict[str, float] = {}
    for when, down, vip_ok in samples:
        for name in longest:
            failed = (not vip_ok) if name == "VIP" else name in down
            if failed:
                since.setdefault(name, when)
            elif name in since:
                longest[name] = max(longest[name], when - since.pop(name))
    if samples:
        for name, start in since.items():
            longest[name] = max(longest[name], samples[-1][0] - start)
    return longest


def test_old_inventory_is_refused_and_the_cluster_runs_the_old_version(cluster: Upgradable) -> None:
    assert set(versions(cluster.kubectl).values()) == {OLD}
    refused = keelson("upgrade", "-i", str(cluster.old), "--to", NEW, state=cluster.state, check=False)
    assert refused.returncode == 2, refused.stderr
    assert f"set kubernetes.version: {NEW} in the inventory first" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout


def test_rolling_upgrade_stops_at_the_failed_master_and_a_rerun_finishes(cluster: Upgradable) -> None:
    k, lab = cluster.kubectl, cluster.lab
    port = 6443
    watcher = Watcher({m: f"https://{lab.host(m).address}:{port}" for m in MASTERS}, f"https://{lab.vip}:8443")
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        lab.run("m2", f"mkdir -p {IN_THE_WAY}")  # the injected failure: m2's new kubelet cannot be put in place
        started = time.monotonic()
        first = keelson("upgrade", "-i", str(cluster.new), "--to", NEW, state=cluster.state, check=False)
        first_s = time.monotonic() - started
        out = first.stdout + first.stderr
        (cluster.state.parent / "upgrade-first.out").write_text(out)  # kept with the test's tmp folder
        assert first.returncode == 1, out[-3000:]
        assert "m2: install " in out and "cannot overwrite" in out, f"{out[-3000:]}\n{kubelet_on(lab, 'm2')}"
        assert "upgrade stopped: fix what failed and run the same command again" in out
        assert "Traceback" not in out
        after_first = versions(k)
        assert after_first == {"m1": NEW, "m2": OLD, "m3": OLD, "w1": OLD}, after_first
        assert cordoned(k) == ["m2"], (
            f"the failed node stays cordoned; nothing later was touched: {who_cordoned(k)}\n{out[-6000:]}"
        )

        lab.run("m2", f"rm -rf {IN_THE_WAY}")
        started = time.monotonic()
        again = keelson("upgrade", "-i", str(cluster.new), "--to", NEW, "--json", state=cluster.state, check=False)
        again_s = time.monotonic() - started
        (cluster.state.parent / "upgrade-again.out").write_text(again.stdout + again.stderr)
        finished = run_finished(again.stdout)
        assert again.returncode == 0 and finished["ok"], again.stdout[-3000:] + again.stderr[-2000:]
        events = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
        first_master = [e for e in events if e.get("phase", "").startswith("Upgrade | First master")]
        assert {e["event"] for e in first_master if e.get("host") == "m1"} == {"host_ok"}, "m1 is skipped"
        resumed = [e for e in events if e["event"] == "host_changed" and e["phase"].startswith("Upgrade | Other")]
        assert sorted(e["host"] for e in resumed) == ["m2", "m3"]
    finally:
        watcher.stop.set()
        thread.join(timeout=30)
    assert versions(k) == dict.fromkeys(("m1", "m2", "m3", "w1"), NEW)
    assert cordoned(k) == [], f"{who_cordoned(k)}\n{again.stdout[-6000:]}"
    config = k("-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "jsonpath={.data.ClusterConfiguration}")
    assert f"kubernetesVersion: {NEW}" in config
    assert watcher.samples, "the watcher took no sample"
    worst = max(len(down) for _, down, _ in watcher.samples)
    vip_failed = sum(1 for *_, vip_ok in watcher.samples if not vip_ok)
    outages = ", ".join(f"{n} {secs:.1f} s" for n, secs in longest_outages(watcher.samples, MASTERS).items())
    print(
        f"upgrade: stopped at m2 after {first_s:.1f} s, resumed and finished in {again_s:.1f} s (CLI wall time); "
        f"watcher: {len(watcher.samples)} samples, at most {worst} master(s) down at once, VIP failed {vip_failed}; "
        f"longest outage: {outages}"
    )
    assert worst <= 1, [sorted(d) for _, d, _ in watcher.samples if len(d) > 1][:5]
    status = json.loads(keelson("status", "-i", str(cluster.new), "--json", state=cluster.state).stdout)
    assert all(m["healthy"] for m in status["etcd"]) and len(status["etcd"]) == 3


def test_apply_after_the_upgrade_changes_nothing(cluster: Upgradable) -> None:
    again = run_finished(keelson("apply", "-i", str(cluster.new), "--json", state=cluster.state).stdout)
    assert again["ok"]
    assert {h: c["changed"] for h, c in again["hosts"].items() if c["changed"]} == {}
    rerun = keelson("upgrade", "-i", str(cluster.new), "--to", NEW, state=cluster.state)
    assert f"every node already runs {NEW}" in rerun.stdout
