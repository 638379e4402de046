"""`keelson bench artifacts`: what the artifact set costs to build and to install.

- `build_warm_s`: `build()` of the default release in this process when the set is cached (the check a warm run
  makes: the recipes' hash, one manifest read); `build_warm_cli_s`: the `keelson artifacts build` CLI's wall time
  when warm (Python start-up included).
- `build_cold_s` (with `--cold` only, else null): `keelson artifacts build` in its own process with an empty cache
  root (`KEELSON_CACHE_DIR` in a temp folder): Go's module and build caches, the parts, the Debian packages — what a
  fresh machine (or CI's cold run) pays. `part_seconds`: each part's own build time in that run.
- `set_mib`: the set's size on disk — its distinct files (the seven Kubernetes names are one multi-call binary,
  hard-linked, so they count once); `served_mib`: the sum over every name, what a mirror serving the upstream layout
  sends when each name is fetched.
- `install_s`: the Kubernetes node role (binaries, CNI plugins, kubelet unit, images import) from `local` on 3 fresh
  lab hosts whose host preparation and container runtime were applied first; `install_noop_s`: the same again
  (0 changed, nothing uploaded). Lab boot is excluded.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.bench import BenchError
from provision.bench.apply_bench import cli_apply, json_report
from provision.bench.cli import run_keelson
from provision.lab import Lab, LabSpec

if TYPE_CHECKING:
    from provision.artifacts.build import ArtifactSet
    from provision.artifacts.catalog import Release

INSTALL_HOSTS = 3
PREPARE = ("validate", "common", "containerd")


def _release() -> Release:
    from provision.artifacts.catalog import DEFAULT_KUBERNETES, release

    return release(DEFAULT_KUBERNETES)


def _require_set() -> ArtifactSet:
    from provision.artifacts import build

    found = build.find(_release())
    if found is None:
        raise BenchError(
            "bench artifacts measures the warm set and installs it, and the default set is not built",
            hint="keelson artifacts build",
        )
    return found


def warm_build_s() -> float:
    from provision.artifacts import build

    started = time.monotonic()
    build.build(_release(), lambda event: None)
    return time.monotonic() - started


def cold_build(work: Path) -> tuple[float, dict[str, float]]:
    """A real cold build in its own process: every cache under `work` starts empty."""
    import json

    env = {**os.environ, "KEELSON_CACHE_DIR": str(work / "cache")}
    run = run_keelson("artifacts", "build", "--json", env=env, timeout=3 * 3600).check()
    built = json.loads(run.stdout.strip().splitlines()[-1])
    manifest = json.loads((Path(built["path"]) / "manifest.json").read_text())
    return run.wall_s, {k: float(v) for k, v in manifest.get("build_seconds", {}).items()}


def install(work: Path, name: str) -> tuple[float, float, dict[str, Any]]:
    if name in Lab.names():
        Lab.load(name).down()
    lab = Lab.up(LabSpec(name=name, masters=1, workers=INSTALL_HOSTS - 1), inventory_out=work / f"{name}.yaml")
    try:
        state = work / "state"
        only = [arg for role in PREPARE for arg in ("--only", role)]
        cli_apply(lab.inventory_path, state, *only)
        fresh = cli_apply(lab.inventory_path, state, "--only", "kubernetes_node", "--json")
        fresh_report = json_report(fresh)
        if not fresh_report["ok"]:
            raise BenchError(f"the node role failed: {fresh_report['hosts']}")
        noop = cli_apply(lab.inventory_path, state, "--only", "kubernetes_node", "--json")
        report = json_report(noop)
        changed = {h: s for h, s in report["hosts"].items() if s["changed"] or s["failed"]}
        if changed:
            raise BenchError(f"the node role's re-apply changed hosts: {changed}")
        return fresh.wall_s, noop.wall_s, report["ssh_commands"]
    finally:
        lab.down()


def bench_artifacts(cold: bool, name: str = "bench-artifacts") -> dict[str, Any]:
    found = _require_set()
    warm = min(warm_build_s() for _ in range(3))
    cli_warm = run_keelson("artifacts", "build").check().wall_s
    result: dict[str, Any] = {
        "kubernetes": found.manifest.kubernetes,
        "set": str(found.path),
        "build_cold_s": None,
        "build_warm_s": round(warm, 3),
        "build_warm_cli_s": round(cli_warm, 3),
        "set_mib": round(sum({f.sha256: f.size for f in found.manifest.files}.values()) / 2**20, 1),
        "served_mib": round(sum(f.size for f in found.manifest.files) / 2**20, 1),
        "files": {f.path.rsplit("/", 1)[-1]: round(f.size / 2**20, 1) for f in found.manifest.files},
    }
    with tempfile.TemporaryDirectory(prefix="keelson-bench-artifacts-") as tmp:
        work = Path(tmp)
        install_s, noop_s, ssh = install(work, name)
        result.update(install_s=round(install_s, 3), install_noop_s=round(noop_s, 3), noop_ssh_commands=ssh)
        if cold:
            cold_s, parts = cold_build(work)
            result.update(build_cold_s=round(cold_s, 1), part_seconds=parts)
    result["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    return result
