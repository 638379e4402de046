"""`keelson bench join`: what adding one node costs, against what one host costs on its own.

One lab of 3 masters and 3 workers, booted fresh:
1. `keelson apply` of 3 masters + w1 (not timed: the running cluster);
2. `join_s`: wall time of `keelson join w2` (the CLI as a user runs it) into that running cluster;
3. `single_host_s`: wall time of `keelson apply` of a one-host cluster on w3 (`non_ha: true`, w3 the only master and
   node, its own VIP): one fresh host from nothing to a Ready node;
4. `join_ratio` = join_s / single_host_s (target ≤ 1.2: joining a node must not cost like building a cluster).
The join's report must show only w2 changed, or there is no figure. The lab is taken down at the end.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from provision.bench import BenchError
from provision.bench.apply_bench import require_artifacts
from provision.bench.cli import run_keelson
from provision.lab import Lab, LabSpec


def _run_finished(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and '"run_finished"' in line:
            event: dict[str, Any] = json.loads(line)
            return event
    raise BenchError("no run_finished event in keelson's output")


def inventories(lab: Lab, work: Path) -> tuple[Path, Path, Path]:
    """(the cluster without w2 and w3, the cluster with w2, the one-host cluster on w3)."""
    data = yaml.safe_load(lab.inventory_path.read_text())
    hosts = data["hosts"]
    paths = []
    for name, keep in (("base", ("w2", "w3")), ("full", ("w3",))):
        out = {**data, "hosts": [h for h in hosts if h["name"] not in keep]}
        paths.append(work / f"{name}.yaml")
        paths[-1].write_text(yaml.safe_dump(out))
    vip = ipaddress.IPv4Interface(data["control_plane"]["vip"])
    single_vip = ipaddress.IPv4Interface(f"{vip.ip - 1}/{vip.network.prefixlen}")
    w3 = next(h for h in hosts if h["name"] == "w3")
    single = {
        **data,
        "name": f"{data['name']}-single",
        "non_ha": True,
        "hosts": [{**w3, "roles": ["master", "worker"]}],
        "control_plane": {**data["control_plane"], "vip": str(single_vip)},
    }
    paths.append(work / "single.yaml")
    paths[-1].write_text(yaml.safe_dump(single))
    return paths[0], paths[1], paths[2]


def bench_join(name: str = "bench-join") -> dict[str, Any]:
    require_artifacts()
    if name in Lab.names():
        Lab.load(name).down()
    with tempfile.TemporaryDirectory(prefix="keelson-bench-join-") as tmp:
        work = Path(tmp)
        lab = Lab.up(LabSpec(name=name, masters=3, workers=3), inventory_out=work / "lab.yaml")
        try:
            base, full, single = inventories(lab, work)
            env = {**os.environ, "KEELSON_STATE_DIR": str(work / "state")}
            run_keelson("apply", "-i", str(base), env=env).check()
            joined = run_keelson("join", "-i", str(full), "w2", "--json", env=env).check()
            changed = sorted(h for h, c in _run_finished(joined.stdout)["hosts"].items() if c["changed"])
            if changed != ["w2"]:
                raise BenchError(f"the join changed {changed}, not only w2: no figure")
            alone = run_keelson("apply", "-i", str(single), env=env).check()
        finally:
            lab.down()
    return {
        "join_s": round(joined.wall_s, 2),
        "single_host_s": round(alone.wall_s, 2),
        "join_ratio": round(joined.wall_s / alone.wall_s, 3),
    }
