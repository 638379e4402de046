"""`keelson bench apply --cluster`: the whole `keelson apply` on a fresh 3-master + 2-worker lab, and the API
through the VIP while the master holding the VIP loses its power.

    cluster_fresh_s     `keelson apply --json` (the CLI, its own process) on fresh hosts: every phase, from the
                        host preparation to the workers Ready (lab boot excluded; the artifact set already built)
    cluster_noop_s      the same command again on the converged cluster
    noop_changed        steps the no-op changed, summed over hosts: must be 0, else the bench fails
    nodes_ready         Ready nodes counted through the VIP (kubectl from the artifact set, keelson's admin
                        kubeconfig)
    vip_kill_api_gap_s  the longest time between two successful answers of https://VIP:port/readyz (short-timeout
                        requests every ~50 ms, the cluster CA pinned) around a power-off of the VIP's holder
    phases              seconds per phase of the fresh apply (its `phase_finished` events)

After the kill the host is booted again and the bench waits until its node is Ready (`vip_kill_rejoin_s`), with no
keelson action.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inventory.loader import load_inventory
from provision.bench import BenchError
from provision.bench.apply_bench import require_artifacts
from provision.bench.cli import CliRun, run_keelson
from provision.lab import Lab, LabSpec, faults

PROBE_TIMEOUT_S = 0.25  # a healthy apiserver answers /readyz in a few ms; a request to a dead backend times out
PACE_S = 0.05
SETTLE_S = 20.0  # probing goes on this long after the kill (haproxy's checks drop the dead backend within it) …
STEADY_S = 5.0  # … and until the answers have been unbroken for this long
MAX_PROBE_S = 120.0
REJOIN_DEADLINE_S = 600.0


def phase_seconds(stdout: str) -> dict[str, float]:
    """The `phase_finished` events of an `apply --json` run -> {phase title: seconds}, skipped phases left out."""
    out: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "phase_finished" and not event.get("skipped"):
            out[str(event["phase"])] = round(float(event.get("seconds", 0.0)), 2)
    return out


def run_finished(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and '"run_finished"' in line:
            event: dict[str, Any] = json.loads(line)
            return event
    raise BenchError(f"`keelson apply --json` printed no run_finished event: {stdout[-800:]}")


def changed_phases(stdout: str) -> dict[str, list[str]]:
    """The `host_changed` events of an `apply --json` run -> {host: [phase titles]} (what a no-op must not have)."""
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("{") and '"host_changed"' in line:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            out.setdefault(str(event["host"]), []).append(str(event["phase"]))
    return out


def changed_steps(finished: dict[str, Any]) -> dict[str, int]:
    """Hosts whose run changed something -> how many steps it changed."""
    return {h: int(s.get("changed") or 0) for h, s in finished.get("hosts", {}).items() if s.get("changed")}


def longest_gap(answers: list[float], since: float, until: float) -> float:
    """The longest time between successive answers in [the last answer before `since`, `until`]: the outage a
    client polling the API saw. Time after the last answer up to `until` counts too (no answer yet is a gap)."""
    before = [t for t in answers if t <= since]
    window = [before[-1]] if before else [since]
    window += [t for t in answers if since < t <= until]
    window.append(until)
    return max((b - a for a, b in itertools.pairwise(window)), default=0.0)


@dataclass
class Prober:
    """GET `url` every PACE_S in a thread; remembers when each answer came (time.time(), like the fault's moment)."""

    url: str
    context: ssl.SSLContext
    answers: list[float] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def ok(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=PROBE_TIMEOUT_S, context=self.context) as resp:  # noqa: S310 - https URL we build
                return bool(resp.read().strip() == b"ok")
        except OSError:
            return False

    def loop(self) -> None:
        while not self.stop.is_set():
            started = time.time()
            (self.answers if self.ok() else self.failures).append(time.time())
            self.stop.wait(max(0.0, PACE_S - (time.time() - started)))

    def steady_since(self, moment: float) -> bool:
        """Answers unbroken for STEADY_S, the last failure (if any) after `moment` included."""
        last_fail = max([f for f in self.failures if f >= moment], default=moment)
        return bool(self.answers) and self.answers[-1] - last_fail >= STEADY_S


def wait_until(condition: Callable[[], bool], deadline_s: float, what: str, every: float = 1.0) -> float:
    from roles.engine.waiting import until

    waited = until(condition, timeout_s=deadline_s, every_s=every)
    if waited is None:
        raise BenchError(f"{what}: not within {deadline_s:.0f} s")
    return waited


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    kubeconfig: Path

    def get(self, *args: str) -> Any:
        """`kubectl get ARGS -o json` through the VIP; None when it fails (a probe, not a check)."""
        try:
            proc = subprocess.run(
                [str(self.binary), "--kubeconfig", str(self.kubeconfig), "get", *args, "-o", "json"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            return json.loads(proc.stdout) if proc.returncode == 0 else None
        except (subprocess.TimeoutExpired, ValueError):
            return None

    def ready_nodes(self) -> list[str]:
        items = (self.get("nodes") or {}).get("items", [])
        return sorted(
            n["metadata"]["name"]
            for n in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        )


def kubectl_for(inventory: Path, state: Path, work: Path) -> Kubectl:
    from provision.artifacts import build, catalog

    found = build.find(catalog.release(catalog.DEFAULT_KUBERNETES))
    if found is None:
        raise BenchError("the artifact set disappeared during the bench")
    kubeconfig = work / "admin.kubeconfig"
    run_keelson("kubeconfig", "-i", str(inventory), "--state-dir", str(state), "-o", str(kubeconfig)).check()
    return Kubectl(found.path / f"release/{found.manifest.kubernetes}/bin/linux/amd64/kubectl", kubeconfig)


def ca_context(inventory: Path, state: Path) -> ssl.SSLContext:
    from roles.pki import kubernetes as k8s_pki
    from roles.state import StateDir

    pki = k8s_pki.load(StateDir(state))
    if pki is None:
        raise BenchError(f"no cluster CA in {state} after the apply")
    return ssl.create_default_context(cadata=pki.ca.cert_pem.decode())


def apply_json(inventory: Path, state: Path) -> tuple[CliRun, dict[str, Any]]:
    run = run_keelson("apply", "-i", str(inventory), "--state-dir", str(state), "--json").check()
    return run, run_finished(run.stdout)


def bench_cluster(name: str = "bench-cluster") -> dict[str, Any]:
    require_artifacts()
    with tempfile.TemporaryDirectory(prefix="keelson-bench-cluster-") as work:  # inventory and state (keys): removed
        return _bench_cluster(name, Path(work))


def _bench_cluster(name: str, work: Path) -> dict[str, Any]:
    if name in Lab.names():
        Lab.load(name).down()
    load_before = os.getloadavg()
    lab = Lab.up(LabSpec(name=name, masters=3, workers=2), inventory_out=work / f"{name}.yaml")
    try:
        inventory, state = lab.inventory_path, work / "state"
        cluster = load_inventory(inventory)
        fresh, _ = apply_json(inventory, state)
        noop, finished = apply_json(inventory, state)
        changed = changed_steps(finished)
        if changed or not finished.get("ok"):
            raise BenchError(
                f"the no-op re-apply changed {changed_phases(noop.stdout) or changed} (ok: {finished.get('ok')})"
            )
        kubectl = kubectl_for(inventory, state, work)
        nodes = kubectl.ready_nodes()
        masters = [m.name for m in cluster.masters]
        context = ca_context(inventory, state)
        gap = vip_kill(lab, masters, Prober(f"https://{cluster.api_endpoint}/readyz", context), kubectl)
    finally:
        lab.down()
    load_after = os.getloadavg()
    return {
        "hosts": len(cluster.hosts),
        "cluster_fresh_s": round(fresh.wall_s, 2),
        "cluster_noop_s": round(noop.wall_s, 2),
        "noop_changed": sum(changed.values()),
        "nodes_ready": len(nodes),
        **gap,
        "phases": phase_seconds(fresh.stdout),
        "noop_ssh_commands": finished.get("ssh_commands", {}),
        "load_avg_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
    }


def holder_of_vip(lab: Lab, hosts: list[str], deadline_s: float = 120) -> str:
    """The one running host with the VIP on its interface (SSH with a generous timeout: the machine may be busy)."""

    def holders() -> list[str]:
        return [
            h
            for h in hosts
            if lab.is_running(h)
            and f" {lab.vip}/" in lab.run(h, "ip -o -4 addr show dev host0", check=False, timeout=120).stdout
        ]

    deadline = time.monotonic() + deadline_s
    while True:
        found = holders()
        if len(found) == 1:
            return found[0]
        if time.monotonic() > deadline:
            raise BenchError(f"exactly one VIP holder among {hosts}: found {found} after {deadline_s:.0f} s")
        time.sleep(0.5)


def renewed_since(kubectl: Kubectl, node: str, moment: float) -> bool:
    """The node's kubelet renewed its lease after `moment` (the Ready condition alone lags: the node controller marks
    a silent node NotReady only after its grace period, so a node killed briefly still reads Ready)."""
    lease = kubectl.get("lease", "-n", "kube-node-lease", node) or {}
    renew = str(lease.get("spec", {}).get("renewTime") or "")
    try:
        return dt.datetime.fromisoformat(renew.replace("Z", "+00:00")).timestamp() > moment
    except ValueError:
        return False


def vip_kill(lab: Lab, masters: list[str], prober: Prober, kubectl: Kubectl) -> dict[str, Any]:
    """Power off the VIP's holder while probing; then boot it and wait until its node is Ready again."""
    holder = holder_of_vip(lab, masters)
    thread = threading.Thread(target=prober.loop, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(prober.answers) >= 10, 30, "the API answering through the VIP", every=0.05)
        moment = faults.power_off(lab, holder)
        new = holder_of_vip(lab, [m for m in masters if m != holder])
        wait_until(
            lambda: time.time() - moment >= SETTLE_S and prober.steady_since(moment),
            MAX_PROBE_S,
            "the API answering steadily through the VIP after the kill",
            every=0.1,
        )
        end = time.time()
    finally:
        prober.stop.set()
        thread.join(timeout=10)
    failed = len([f for f in prober.failures if moment <= f <= end])
    booted = time.time()
    faults.power_on(lab, holder)
    rejoin = wait_until(
        lambda: holder in kubectl.ready_nodes() and renewed_since(kubectl, holder, booted),
        REJOIN_DEADLINE_S,
        f"{holder} Ready again, its kubelet renewing its lease",
    )
    return {
        "vip_kill_api_gap_s": round(longest_gap(prober.answers, moment, end), 3),
        "vip_kill_failed_probes": failed,
        "vip_kill_holder": holder,
        "vip_kill_new_holder": new,
        "vip_kill_rejoin_s": round(rejoin, 1),
    }
