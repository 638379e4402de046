"""`keelson bench etcd`: etcd figures on lab hosts, one function per measurement.

healthy3_s, healthy5_s   seconds from the parallel start of the members ("etcd | Start members" phase start)
                         to `etcdctl endpoint health --cluster` (TLS) reporting every member healthy; the median
                         of `runs` fresh bootstraps on the same hosts (data dirs wiped between runs)
backup_s, backup_cli_s, restore3_s, keys_lost   provision/bench/backup_bench.py (on the 3-member lab the etcd
                         role set up)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.bench import BenchError
from provision.lab import Lab, LabSpec
from roles.engine.context import RunContext
from roles.engine.events import Event, PhaseFinished, PhaseStarted
from roles.engine.runner import RunReport, run_plan

START_PHASE = "etcd | Start members (parallel) and wait until healthy"


def etcd_plan(cluster: Cluster) -> list[Any]:
    from roles import etcd, pki

    return [*pki.phases(cluster), *etcd.phases(cluster)]


def apply_etcd(cluster: Cluster, state: Path) -> tuple[RunReport, dict[str, float]]:
    """Run the PKI and etcd phases; returns the report and each phase's wall time."""
    started: dict[str, float] = {}
    took: dict[str, float] = {}

    def on(event: Event) -> None:
        if isinstance(event, PhaseStarted):
            started[event.phase] = time.monotonic()
        elif isinstance(event, PhaseFinished) and event.phase in started:
            took[event.phase] = time.monotonic() - started[event.phase]

    report = run_plan(etcd_plan(cluster), RunContext(cluster, state, events=on))
    if not report.ok:
        raise BenchError(f"etcd apply failed: { {h: s.errors for h, s in report.hosts.items() if s.errors} }")
    return report, took


def wipe_members(lab: Lab, cluster: Cluster) -> None:
    """Back to "never bootstrapped": etcd stopped, data dir and applied marker gone (certs and config kept)."""
    data = cluster.etcd.data_dir.rstrip("/")
    for host in cluster.etcd_members:
        lab.run(host.name, f"systemctl stop etcd.service; rm -rf {data}/member /etc/etcd/keelson-applied.sha256")


def healthy_seconds(lab: Lab, state: Path, runs: int = 3) -> list[float]:
    """`runs` fresh bootstraps of the lab's etcd: parallel start → whole cluster healthy, in seconds."""
    cluster = load_inventory(lab.inventory_path)
    out = []
    for i in range(runs):
        if i:
            wipe_members(lab, cluster)
        _, took = apply_etcd(cluster, state)
        out.append(took[START_PHASE])
    return out


def with_lab(
    name: str, masters: int, body: Callable[[Lab, Path], dict[str, Any]], keep: bool = False
) -> dict[str, Any]:
    if name in Lab.names():
        Lab.load(name).down()
    with tempfile.TemporaryDirectory(prefix="keelson-bench-etcd-") as tmp:
        lab = Lab.up(LabSpec(name=name, masters=masters, workers=0), inventory_out=Path(tmp) / f"{name}.yaml")
        try:
            return body(lab, Path(tmp) / load_inventory(lab.inventory_path).name)
        finally:
            if not keep:
                lab.down()


def measure_healthy3(lab: Lab, state: Path, runs: int = 3) -> dict[str, Any]:
    times = healthy_seconds(lab, state, runs)
    return {"healthy3_s": round(statistics.median(times), 2), "healthy3_runs_s": [round(t, 2) for t in times]}


def measure_healthy5(lab: Lab, state: Path, runs: int = 3) -> dict[str, Any]:
    times = healthy_seconds(lab, state, runs)
    return {"healthy5_s": round(statistics.median(times), 2), "healthy5_runs_s": [round(t, 2) for t in times]}


def measure_backup_restore(lab: Lab, state: Path) -> dict[str, Any]:
    from provision.bench.backup_bench import bench_backup_restore

    result: dict[str, Any] = bench_backup_restore(lab, state)
    return result


def bench_etcd(runs: int = 3, backups: bool = True) -> dict[str, Any]:
    """Every `bench etcd` field: a 3-member lab (healthy3_s, then the backup figures on it), a 5-member lab."""

    def three(lab: Lab, state: Path) -> dict[str, Any]:
        result = measure_healthy3(lab, state, runs)
        if backups:
            result.update(measure_backup_restore(lab, state))
        return result

    result = with_lab("etcd-bench3", 3, three)
    result.update(with_lab("etcd-bench5", 5, lambda lab, state: measure_healthy5(lab, state, runs)))
    return result
