"""`keelson bench apply`: fresh and no-op apply times on lab hosts, SSH commands per host, and the 20/2 scale ratio.

All in one run: a 20-host lab; a fresh apply on 2 hosts (and its no-op re-apply) and on 5 others, a no-op re-apply
of those 5; then the same lab rebooted onto fresh disks, a fresh apply on all 20 and its no-op re-apply.
`scale_ratio` is fresh(20) / fresh(2); `noop_scale_ratio` the same for the no-op re-applies. The phases are the
engine's own roles (validate, common, containerd), the same work as the pyinfra/Ansible comparison roles in the issue.

Lab hosts share this machine's cores, so the 20-host apply also reports the CPU it cost (the hosts' cgroups and
keelson's own process) and the floor that puts under its wall time: `(host + operator CPU) / cores`.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.lab import Lab, LabSpec, cgroups
from roles import common, containerd, validate
from roles.engine.context import RunContext
from roles.engine.runner import RunReport, run_plan


def _apply(cluster: Cluster, state: Path, hosts: list[str]) -> RunReport:
    plan = [*validate.phases(cluster), *common.phases(cluster), *containerd.phases(cluster)]
    report = run_plan(plan, RunContext(cluster, state, host_names=frozenset(hosts)))
    if not report.ok:
        raise RuntimeError(f"bench apply failed: { {h: s.errors for h, s in report.hosts.items() if s.errors} }")
    return report


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


def _fresh_lab(name: str) -> Lab:
    if name in Lab.names():
        Lab.load(name).down()
    return Lab.up(LabSpec(name=name, masters=5, workers=15), inventory_out=Path(tempfile.mkdtemp()) / f"{name}.yaml")


def bench_apply(name: str = "bench-apply") -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="keelson-bench-"))
    lab = _fresh_lab(name)
    try:
        cluster = load_inventory(lab.inventory_path)
        names = [h.name for h in cluster.hosts]
        two, five = names[:2], names[2:7]
        started = time.monotonic()
        _apply(cluster, state, two)
        fresh2 = time.monotonic() - started
        started = time.monotonic()
        _apply(cluster, state, two)
        noop2 = time.monotonic() - started
        started = time.monotonic()
        _apply(cluster, state, five)
        fresh5 = time.monotonic() - started
        started = time.monotonic()
        noop = _apply(cluster, state, five)
        noop5 = time.monotonic() - started
        if noop.changed_hosts:
            raise RuntimeError(f"no-op re-apply changed {noop.changed_hosts}")
        lab.down()
        lab = _fresh_lab(name)
        cluster = load_inventory(lab.inventory_path)
        host_cpu, own_cpu, started = _host_cpu_s(lab), _own_cpu_s(), time.monotonic()
        _apply(cluster, state, names)
        fresh20 = time.monotonic() - started
        host_cpu, own_cpu = _host_cpu_s(lab) - host_cpu, _own_cpu_s() - own_cpu
        started = time.monotonic()
        _apply(cluster, state, names)
        noop20 = time.monotonic() - started
    finally:
        lab.down()
    return {
        "hosts": 5,
        "fresh_s": round(fresh5, 3),
        "noop_s": round(noop5, 3),
        "noop_ssh_commands_per_host": max(noop.ssh_commands.values()),
        "scale_ratio": round(fresh20 / fresh2, 2),
        "fresh2_s": round(fresh2, 3),
        "fresh20_s": round(fresh20, 3),
        "cores": os.cpu_count() or 1,
        "fresh20_host_cpu_s": round(host_cpu, 3),
        "fresh20_operator_cpu_s": round(own_cpu, 3),
        "fresh20_cpu_floor_s": round((host_cpu + own_cpu) / (os.cpu_count() or 1), 3),
        "noop2_s": round(noop2, 3),
        "noop20_s": round(noop20, 3),
        "noop_scale_ratio": round(noop20 / noop2, 2),
    }
