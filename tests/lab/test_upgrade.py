"""keelson upgrade for real (issue 15): a 3-master + 2-worker cluster applied at Kubernetes v1.36.3 (both artifact
sets built from their Go modules), a workload of two replicas behind a PodDisruptionBudget and a NodePort, is upgraded
to v1.37.2 with `keelson upgrade` while a watcher asks every master's apiserver and the VIP for /readyz and the
workload on each worker, twice a second: never two masters down at once (at every sample at least two apiservers pass
/readyz, whose etcd check needs a quorum read), the workload answering on at least one worker at every sample. The
second master's new kubelet cannot be installed (a folder in the way of the install's temp file; a runtime mask does
not work: /etc/systemd/system, where the unit is, wins over /run): the upgrade stops there with a message naming it,
the first master done and the others untouched; the folder removed, the same command resumes (the first master
skipped) and finishes. Then `keelson apply` with the same inventory changes nothing. Every failed sample is written
beside what keelson printed at that moment (upgrade-timeline.txt in the test's tmp folder).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from provision.artifacts.build import build
from provision.artifacts.catalog import release
from provision.lab import Lab
from tests.conftest import LabFactory
from tests.kube_helpers import KEELSON, Kubectl, agnhost, artifact_set, keelson, kubectl_for, run_finished

pytestmark = [pytest.mark.lab, pytest.mark.artifacts]
OLD, NEW = "v1.36.3", "v1.37.2"
MASTERS = ("m1", "m2", "m3")
WORKERS = ("w1", "w2")
WEB_PORT = 30080  # the workload's NodePort on every node
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
    old_set = build(release(OLD), lambda event: None)  # the old release's set (cached; .ci/run builds it)
    lab = lab_factory("t-upg", masters=3, workers=2)
    tmp = tmp_path_factory.mktemp("upgrade")
    text = lab.inventory_path.read_text()
    assert f"version: {NEW}" in text
    old, new = tmp / "old.yaml", tmp / "new.yaml"
    old.write_text(text.replace(f"version: {NEW}", f"version: {OLD}"))
    new.write_text(text)
    state = tmp / "state"
    keelson("apply", "-i", str(old), state=state)
    k = kubectl_for(new, state, tmp)
    k("apply", "-f", "-", stdin=web(agnhost(old_set)))  # the image the nodes have now
    k("rollout", "status", "deployment/web", "--timeout=300s", timeout=330)
    return Upgradable(lab, old, new, state, k)


def web(image: str) -> str:
    """The workload that must keep answering (agnhost, from the artifact set): two replicas spread over the workers, a
    PodDisruptionBudget that lets a drain evict one at a time, a NodePort the watcher asks on each worker (as a client
    behind a load balancer would), and a preStop pause: netexec exits at once on SIGTERM, before every kube-proxy has
    taken the evicted pod out of the Service (run 9: both NodePorts reset in one sample while w2's drain evicted its
    last replica) — a workload that wants to keep answering through a drain waits there, keelson cannot do it."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      topologySpreadConstraints:
        - {{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway,
            labelSelector: {{matchLabels: {{app: web}}}}}}
      containers:
        - name: web
          image: {image}
          imagePullPolicy: Never
          args: [netexec, --http-port=8080]
          readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
          lifecycle: {{preStop: {{sleep: {{seconds: 5}}}}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: web}}
spec: {{minAvailable: 1, selector: {{matchLabels: {{app: web}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080, nodePort: {WEB_PORT}}}]
"""


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


def why_not_ready(url: str) -> str:
    """Ask `url` once (3 s): "" when it answers 200, else why not — the checks an apiserver's /readyz?verbose lists as
    failed, a timeout, a refused connection. /readyz is anonymous; only whether and what it answers matters here."""
    context = ssl._create_unverified_context()
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return "" if response.status == 200 else f"http {response.status}"
    except urllib.error.HTTPError as exc:  # before OSError: it is one
        body = exc.read().decode(errors="replace")
        failed = [line.strip() for line in body.splitlines() if "failed" in line and "readyz check" not in line]
        return f"http {exc.code}: {'; '.join(failed)[:300]}"
    except TimeoutError:
        return "no answer in 3 s"
    except OSError as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"[:200]


@dataclass(frozen=True)
class Sample:
    when: float  # time.monotonic()
    why: dict[str, str]  # each master, "VIP" and each worker's NodePort → why it did not answer ("" when it did)

    def down(self, names: tuple[str, ...]) -> list[str]:
        return [m for m in names if self.why.get(m)]


@dataclass
class Watcher:
    """Asks each master's apiserver and the VIP for /readyz, and the workload on each worker, until stopped."""

    targets: dict[str, str]  # name -> the URL asked
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        # every target asked at the same moment (one thread each), so a sample is one instant: asked one after the
        # other with a 3 s timeout, a sample spanned up to 12 s and "two down" could be two moments
        with ThreadPoolExecutor(max_workers=len(self.targets)) as pool:
            while not self.stop.is_set():
                answers = list(pool.map(why_not_ready, self.targets.values()))
                self.samples.append(Sample(time.monotonic(), dict(zip(self.targets, answers, strict=True))))
                self.stop.wait(0.5)


@dataclass
class Timed:
    """A finished keelson run, each output line with when it arrived (time.monotonic())."""

    returncode: int
    stdout: str
    stderr: str
    lines: list[tuple[float, str]]


def keelson_timed(*args: str, state: Path, timeout: float = 1800) -> Timed:
    """keelson as tests.kube_helpers.keelson runs it, its lines timestamped as they come: the drill's timeline puts
    the watcher's samples beside what the upgrade was doing then."""
    env = {**os.environ, "KEELSON_STATE_DIR": str(state)}
    proc = subprocess.Popen([*KEELSON, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out: dict[str, list[str]] = {"stdout": [], "stderr": []}
    lines: list[tuple[float, str]] = []

    def read(name: str, stream: IO[str]) -> None:
        for line in stream:
            out[name].append(line)
            lines.append((time.monotonic(), line.rstrip("\n")))

    readers = [
        threading.Thread(target=read, args=(n, s)) for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for reader in readers:
        reader.start()
    returncode = proc.wait(timeout=timeout)
    for reader in readers:
        reader.join(timeout=30)
    return Timed(returncode, "".join(out["stdout"]), "".join(out["stderr"]), sorted(lines))


def timeline(samples: list[Sample], runs: list[Timed], start: float) -> str:
    """The samples where something was not ready and every keelson line, in time order (seconds from `start`). Pure."""
    rows = [(when, f"keelson | {line}") for run in runs for when, line in run.lines]
    for sample in samples:
        failing = {name: why for name, why in sample.why.items() if why}
        if failing:
            rows.append((sample.when, "watch   | " + "; ".join(f"{n}: {w}" for n, w in failing.items())))
    return "\n".join(f"{when - start:8.1f} {text}" for when, text in sorted(rows, key=lambda r: r[0]))


def longest_outages(samples: list[Sample], names: tuple[str, ...]) -> dict[str, float]:
    """Each of `names` → its longest outage in seconds: from its first failed sample to the next sample that answered
    (or the last sample). Pure."""
    longest = dict.fromkeys(names, 0.0)
    since: dict[str, float] = {}
    for sample in samples:
        for name in longest:
            if sample.why.get(name):
                since.setdefault(name, sample.when)
            elif name in since:
                longest[name] = max(longest[name], sample.when - since.pop(name))
    if samples:
        for name, start in since.items():
            longest[name] = max(longest[name], samples[-1].when - start)
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
    targets = {m: f"https://{lab.host(m).address}:{port}/readyz?verbose" for m in MASTERS}
    targets["VIP"] = f"https://{lab.vip}:8443/readyz?verbose"
    targets |= {f"web@{w}": f"http://{lab.host(w).address}:{WEB_PORT}/hostname" for w in WORKERS}
    watcher = Watcher(targets)
    thread = threading.Thread(target=watcher.run, daemon=True)
    runs: list[Timed] = []
    begun = time.monotonic()
    thread.start()
    try:
        lab.run("m2", f"mkdir -p {IN_THE_WAY}")  # the injected failure: m2's new kubelet cannot be put in place
        started = time.monotonic()
        first = keelson_timed("upgrade", "-i", str(cluster.new), "--to", NEW, state=cluster.state)
        runs.append(first)
        first_s = time.monotonic() - started
        out = first.stdout + first.stderr
        assert first.returncode == 1, out[-3000:]
        assert "m2: install " in out and "cannot overwrite" in out, f"{out[-3000:]}\n{kubelet_on(lab, 'm2')}"
        assert "upgrade stopped: fix what failed and run the same command again" in out
        assert "Traceback" not in out
        after_first = versions(k)
        assert after_first == {"m1": NEW, "m2": OLD, "m3": OLD, "w1": OLD, "w2": OLD}, after_first
        assert cordoned(k) == ["m2"], (
            f"the failed node stays cordoned; nothing later was touched: {who_cordoned(k)}\n{out[-6000:]}"
        )

        lab.run("m2", f"rm -rf {IN_THE_WAY}")
        started = time.monotonic()
        again = keelson_timed("upgrade", "-i", str(cluster.new), "--to", NEW, "--json", state=cluster.state)
        runs.append(again)
        again_s = time.monotonic() - started
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
        # kept with the test's tmp folder: what each run printed, and the samples that failed beside it in time
        for name, run in zip(("upgrade-first.out", "upgrade-again.out"), runs, strict=False):
            (cluster.state.parent / name).write_text(run.stdout + run.stderr)
        (cluster.state.parent / "upgrade-timeline.txt").write_text(timeline(watcher.samples, runs, begun))
    assert versions(k) == dict.fromkeys(("m1", "m2", "m3", *WORKERS), NEW)
    assert cordoned(k) == [], f"{who_cordoned(k)}\n{again.stdout[-6000:]}"
    config = k("-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "jsonpath={.data.ClusterConfiguration}")
    assert f"kubernetesVersion: {NEW}" in config
    assert watcher.samples, "the watcher took no sample"
    worst = max(len(sample.down(MASTERS)) for sample in watcher.samples)
    vip_failed = sum(1 for sample in watcher.samples if sample.why["VIP"])
    webs = tuple(f"web@{w}" for w in WORKERS)
    web_down = sum(1 for sample in watcher.samples if len(sample.down(webs)) == len(webs))
    longest = longest_outages(watcher.samples, (*MASTERS, "VIP", *webs))
    outages = ", ".join(f"{n} {secs:.1f} s" for n, secs in longest.items())
    print(
        f"upgrade: stopped at m2 after {first_s:.1f} s, resumed and finished in {again_s:.1f} s (CLI wall time); "
        f"watcher: {len(watcher.samples)} samples, at most {worst} master(s) down at once, VIP failed {vip_failed}, "
        f"the workload answered on no worker {web_down}; "
        f"longest outage: {outages}"
    )
    two_down = [s for s in watcher.samples if len(s.down(MASTERS)) > 1]
    assert not two_down, (
        "\n".join(f"{s.when - begun:.1f} s: {s.why}" for s in two_down[:5])
        + f"\n(timeline: {cluster.state.parent / 'upgrade-timeline.txt'})"
    )
    assert web_down == 0, f"the workload did not answer on any worker (timeline: {cluster.state.parent})"
    status = json.loads(keelson("status", "-i", str(cluster.new), "--json", state=cluster.state).stdout)
    assert all(m["healthy"] for m in status["etcd"]) and len(status["etcd"]) == 3


def test_apply_after_the_upgrade_changes_nothing(cluster: Upgradable) -> None:
    again = run_finished(keelson("apply", "-i", str(cluster.new), "--json", state=cluster.state).stdout)
    assert again["ok"]
    assert {h: c["changed"] for h, c in again["hosts"].items() if c["changed"]} == {}
    rerun = keelson("upgrade", "-i", str(cluster.new), "--to", NEW, state=cluster.state)
    assert f"every node already runs {NEW}" in rerun.stdout
