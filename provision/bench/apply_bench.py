"""`keelson bench apply`: the `keelson apply` CLI as a user runs it, the engine on its own, and what keelson costs.

One 20-host lab (3 masters + 17 workers), booted twice onto fresh disks:

1. The CLI — `keelson apply -i INV`, the whole plan (host preparation, container runtime, Kubernetes binaries from
   this machine's artifact set, PKI, etcd, load balancer, control plane, CNI, workers, backups), its own process (the
   console script beside this interpreter), on an inventory of 5 of the hosts (3 masters, 2 workers): a fresh apply,
   the first re-apply (`first_noop_s`), then `NOOP_RUNS` no-op re-applies, each with `--json` (its report proves
   0 changed; the last one's gives the SSH commands per host). Per run: wall time, and the
   CPU the keelson process used (user + system from its rusage), divided by hosts: `cpu_per_host_ms`.
2. The engine in this process after a warm-up (validate + common + containerd, the host-prep part of the plan), on 2
   other hosts and on 5 others, fresh then no-op: `engine_fresh_s`, `engine_noop_s` (5 hosts).
3. Fresh disks: the engine on all 20 hosts (`scale_ratio` = engine fresh(20) / fresh(2), with the CPU the 20 hosts
   and this process spent, and the floor that puts under the wall time on this machine's cores), then the CLI's
   host-level phases (`--only prepare-hosts --only container-runtime`: no Kubernetes — 17 kubelets joining at once
   on 2 cores time out, and measure the lab) with `NOOP_RUNS` no-op re-applies on all 20 hosts and on 5 of them
   (after one apply of the 5-host inventory: the /etc/hosts block lists the inventory's hosts, so it changes once):
   `hostprep_noop_s` and `hostprep_cpu_per_host_ms` at 5 and 20, and `noop_cpu_per_extra_host_ms`, the CPU each
   host past the fifth adds to the same no-op.

Lab hosts share this machine's cores with keelson, so wall-clock ratios measure the machine; keelson's own CPU per
host is what grows with a real fleet: the per-extra-host figure, since the per-host average at 5 hosts is mostly
start-up (imports), the same for any fleet.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.bench import BenchError
from provision.bench.cli import CliRun, run_keelson
from provision.lab import Lab, LabSpec, cgroups
from roles.engine.runner import RunReport

NOOP_RUNS = 3
CLI_HOSTS = ["m1", "m2", "m3", "w1", "w2"]
HOST_PHASES = ("--only", "prepare-hosts", "--only", "container-runtime")  # the scale run: host-level phases


def _engine(cluster: Cluster, state: Path, hosts: list[str]) -> RunReport:
    from roles import common, containerd, validate
    from roles.engine.context import RunContext
    from roles.engine.runner import run_plan

    plan = [*validate.phases(cluster), *common.phases(cluster), *containerd.phases(cluster)]
    report = run_plan(plan, RunContext(cluster, state, host_names=frozenset(hosts)))
    if not report.ok:
        raise BenchError(f"bench apply failed: { {h: s.errors for h, s in report.hosts.items() if s.errors} }")
    return report


def _timed(fn: Callable[[], RunReport]) -> tuple[float, RunReport]:
    started = time.monotonic()
    report = fn()
    return time.monotonic() - started, report


def _host_cpu_s(lab: Lab) -> float:
    total = 0
    for host in lab.hosts:
        folder = cgroups.v2_dir(lab.name, host.name)
        stat = (folder / "cpu.stat").read_text() if folder and (folder / "cpu.stat").exists() else ""
        total += next((int(line.split()[1]) for line in stat.splitlines() if line.startswith("usage_usec ")), 0)
    return total / 1e6


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _fresh_lab(name: str, work: Path) -> Lab:
    if name in Lab.names():
        Lab.load(name).down()
    return Lab.up(LabSpec(name=name, masters=3, workers=17), inventory_out=work / f"{name}.yaml")


def subset_inventory(lab: Lab, hosts: list[str], out: Path) -> Path:
    """The lab's inventory with only `hosts`: a cluster of its own, as a user's inventory of those machines."""
    doc = yaml.safe_load(lab.inventory_path.read_text())
    doc["hosts"] = [h for h in doc["hosts"] if h["name"] in hosts]
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def cli_apply(inventory: Path, state: Path, *extra: str) -> CliRun:
    return run_keelson("apply", "-i", str(inventory), "--state-dir", str(state), *extra).check()


def cli_noops(inventory: Path, state: Path, runs: int, *extra: str) -> list[CliRun]:
    """`runs` re-applies, each with `--json` so that each one is checked to have changed nothing (a slow "no-op"
    that changed something is not a no-op figure)."""
    done = []
    for _ in range(runs):
        run = cli_apply(inventory, state, *extra, "--json")
        changed = {h: s for h, s in json_report(run)["hosts"].items() if s["changed"] or s["failed"]}
        if changed:
            raise BenchError(f"a no-op re-apply changed hosts: {changed}")
        done.append(run)
    return done


def json_report(run: CliRun) -> dict[str, Any]:
    """The `run_finished` event of an `apply --json` run."""
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    finished: dict[str, Any] = next(e for e in reversed(events) if e.get("event") == "run_finished")
    return finished


def per_host_ms(seconds: float, hosts: int) -> float:
    return round(seconds * 1000 / hosts, 1)


def bytecode_cached() -> dict[str, bool]:
    """Whether the CLI's modules load from cached bytecode (`uv sync --compile-bytecode`; Python writes keelson's own
    on its first run unless PYTHONDONTWRITEBYTECODE is set), or are compiled again on every run."""
    import importlib.util

    import typer

    import keelson.cli

    def cached(module_file: str | None) -> bool:
        return module_file is not None and Path(importlib.util.cache_from_source(module_file)).exists()

    return {"dependencies": cached(typer.__file__), "keelson": cached(keelson.cli.__file__)}


def require_artifacts() -> None:
    """The whole plan installs Kubernetes from the lab inventory's artifact set (source local): built, or no figure."""
    from provision.artifacts import build, catalog
    from provision.artifacts.catalog import DEFAULT_KUBERNETES

    if build.find(catalog.release(DEFAULT_KUBERNETES)) is None:
        raise BenchError(
            f"bench apply runs the whole plan, which installs Kubernetes {DEFAULT_KUBERNETES} from this machine's "
            "artifact set, and that set is not built",
            hint=f"keelson artifacts build --kubernetes {DEFAULT_KUBERNETES}",
        )


def bench_apply(name: str = "bench-apply") -> dict[str, Any]:
    require_artifacts()
    with tempfile.TemporaryDirectory(prefix="keelson-bench-apply-") as work:  # inventories and state (keys): removed
        return _bench_apply(name, Path(work))


def _bench_apply(name: str, work: Path) -> dict[str, Any]:
    lab = _fresh_lab(name, work)
    try:
        cluster = load_inventory(lab.inventory_path)
        names = [h.name for h in cluster.hosts]
        inv5 = subset_inventory(lab, CLI_HOSTS, work / "five.yaml")
        fresh = cli_apply(inv5, work / "state5")
        first_noop = cli_noops(inv5, work / "state5", 1)[0]  # the first after a fresh apply: reported apart
        noops = cli_noops(inv5, work / "state5", NOOP_RUNS)
        noop_json = noops[-1]
        report = json_report(noop_json)

        others = [n for n in names if n not in CLI_HOSTS]
        two, five = others[:2], others[2:7]
        state = work / "engine"
        fresh2, _ = _timed(lambda: _engine(cluster, state, two))
        noop2, _ = _timed(lambda: _engine(cluster, state, two))
        engine_fresh5, _ = _timed(lambda: _engine(cluster, state, five))
        engine_noop5, engine_noop = _timed(lambda: _engine(cluster, state, five))
        if engine_noop.changed_hosts:
            raise BenchError(f"the engine's no-op re-apply changed {engine_noop.changed_hosts}")

        lab.down()
        lab = _fresh_lab(name, work)
        cluster = load_inventory(lab.inventory_path)
        host_cpu, own_cpu = _host_cpu_s(lab), _own_cpu_s()
        fresh20, _ = _timed(lambda: _engine(cluster, work / "engine20", names))
        host_cpu, own_cpu = _host_cpu_s(lab) - host_cpu, _own_cpu_s() - own_cpu
        noop20, _ = _timed(lambda: _engine(cluster, work / "engine20", names))
        converge20 = cli_apply(lab.inventory_path, work / "state20", *HOST_PHASES)
        noops20 = cli_noops(lab.inventory_path, work / "state20", NOOP_RUNS, *HOST_PHASES)
        hostprep5 = subset_inventory(lab, CLI_HOSTS, work / "five-hostprep.yaml")
        cli_apply(hostprep5, work / "state20", *HOST_PHASES)  # their /etc/hosts block now lists the 5 hosts only
        noops20_5 = cli_noops(hostprep5, work / "state20", NOOP_RUNS, *HOST_PHASES)
    finally:
        lab.down()
    cores = os.cpu_count() or 1
    noop_cpu5 = statistics.median(r.cpu_s for r in noops)
    hostprep_cpu5 = statistics.median(r.cpu_s for r in noops20_5)
    hostprep_cpu20 = statistics.median(r.cpu_s for r in noops20)
    return {
        "hosts": len(CLI_HOSTS),
        "fresh_s": round(fresh.wall_s, 3),
        "noop_s": round(statistics.median(r.wall_s for r in noops), 3),
        "engine_fresh_s": round(engine_fresh5, 3),
        "engine_noop_s": round(engine_noop5, 3),
        "noop_ssh_commands_per_host": max(report["ssh_commands"].values()),
        "noop_facts_ahead_hosts": len(report.get("facts_ahead", [])),  # batches sent before the plan, and used
        "cpu_per_host_ms": {"fresh": per_host_ms(fresh.cpu_s, 5), "noop": per_host_ms(noop_cpu5, 5)},
        "scale_ratio": round(fresh20 / fresh2, 2),
        "noop_runs_s": [round(r.wall_s, 3) for r in noops],
        "noop_cpu_runs_ms": [{"user": round(r.user_s * 1000), "sys": round(r.sys_s * 1000)} for r in noops],
        "first_noop_s": round(first_noop.wall_s, 3),
        "ssh_commands": report["ssh_commands"],
        "hosts20": len(names),
        "hostprep_noop_s": {
            "5": round(statistics.median(r.wall_s for r in noops20_5), 3),
            "20": round(statistics.median(r.wall_s for r in noops20), 3),
        },
        "hostprep_noop20_runs_s": [round(r.wall_s, 3) for r in noops20],
        "hostprep_cpu_per_host_ms": {
            "5": per_host_ms(hostprep_cpu5, len(CLI_HOSTS)),
            "20": per_host_ms(hostprep_cpu20, len(names)),
        },
        "noop_cpu_per_extra_host_ms": per_host_ms(hostprep_cpu20 - hostprep_cpu5, len(names) - len(CLI_HOSTS)),
        "hostprep_apply20_after_engine_s": round(converge20.wall_s, 3),
        "engine_fresh2_s": round(fresh2, 3),
        "engine_noop2_s": round(noop2, 3),
        "engine_fresh20_s": round(fresh20, 3),
        "engine_noop20_s": round(noop20, 3),
        "cores": cores,
        "bytecode_cached": bytecode_cached(),
        "engine_fresh20_host_cpu_s": round(host_cpu, 3),
        "engine_fresh20_operator_cpu_s": round(own_cpu, 3),
        "engine_fresh20_cpu_floor_s": round((host_cpu + own_cpu) / cores, 3),
    }
