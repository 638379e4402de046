"""`keelson bench artifacts`: what the artifact set costs to build and to install.

- `build_warm_s`: `build()` of the default release in this process when the set is cached (the check a warm run
  makes: the recipes' hash, one manifest read); `build_warm_cli_s`: the `keelson artifacts build` CLI's wall time
  when warm (Python start-up included).
- `build_cold_s` (with `--cold` only, else null): `keelson artifacts build` in its own process with an empty cache
  root (`KEELSON_CACHE_DIR` in a temp folder): Go's module and build caches, the parts, the Debian packages — what a
  fresh machine (or CI's cold run) pays. `part_seconds`: each part's own build time in that run. `build_cold_cpu_s`:
  that build's CPU (user + system of keelson, Go and its compilers and linkers, from the kernel's rusage of
  waited-for children): what the build costs on any machine, whatever else runs beside it — on this 2-core one the
  wall time can never be less than half of it.
- `set_mib`: the set's size on disk — its distinct files (the seven Kubernetes names are one multi-call binary,
  hard-linked, so they count once); `served_mib`: the sum over every name, what a mirror serving the upstream layout
  sends when each name is fetched.
- `install_s`: the Kubernetes node role (binaries, CNI plugins, kubelet unit, images import) from `local` on 3 fresh
  lab hosts whose host preparation and container runtime were applied first; `install_noop_s`: the same again
  (0 changed, nothing uploaded). Lab boot is excluded; `--no-install` leaves both null and boots no lab.
- With `--compare-binaries` only (else null): the set's one multi-call Kubernetes binary against the seven upstream
  programs built separately (`k8s.io/kubernetes/cmd/kubelet`, …), both from the set's Kubernetes recipe (its go.mod,
  flags, stamps: `parts.go_build_targets`, the code that builds the set) into a temp folder, with the module and
  build caches the set's build filled. Every package's compile is then cached for both (the seven small `main`
  packages are compiled first, untimed: `compare_prime_s`), so what is timed is what differs: seven links of mostly
  the same code instead of one, and seven `go build` start-ups. `multicall_build_s`/`separate_build_s` wall,
  `multicall_cpu_s`/`separate_cpu_s` the builds' CPU (user + system of the `go` processes and their compilers and
  linkers, from the kernel's rusage of waited-for children), `multicall_mib`/`separate_mib` the binaries' total size
  (`separate_files_mib` each), `multicall_packages`/`separate_packages` the packages linked (`go list -deps`, summed
  over the binaries), `multicall_same_as_set` whether the multi-call binary built here is byte-identical to the
  set's (the same build). A truly cold comparison is not made: with an empty build cache each package is still
  compiled once either way (Go's cache shares them between the seven builds), so it differs by the same links.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.artifacts.cache import artifacts_root
from provision.artifacts.gotool import go_env, run_go
from provision.artifacts.manifest import sha256_file
from provision.artifacts.parts import GoRunner, go_build_targets
from provision.artifacts.recipes import Recipe, Target, kubernetes
from provision.bench import BenchError
from provision.bench.apply_bench import cli_apply, json_report
from provision.bench.cli import run_keelson
from provision.lab import Lab, LabSpec

if TYPE_CHECKING:
    from provision.artifacts.build import ArtifactSet
    from provision.artifacts.catalog import Release

INSTALL_HOSTS = 3
PREPARE = ("validate", "common", "containerd")
SEPARATE_PACKAGE = "k8s.io/kubernetes/cmd/{}"  # upstream's own main package of each program
COMPARE_FIELDS = (
    "multicall_build_s",
    "separate_build_s",
    "multicall_cpu_s",
    "separate_cpu_s",
    "multicall_mib",
    "separate_mib",
    "separate_files_mib",
    "multicall_packages",
    "separate_packages",
    "multicall_same_as_set",
    "compare_prime_s",
    "compare_load_avg",
)


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


def cold_build(work: Path) -> tuple[float, float, dict[str, float]]:
    """A real cold build in its own process: every cache under `work` starts empty. Wall and CPU seconds, and each
    part's own seconds."""
    import json

    env = {**os.environ, "KEELSON_CACHE_DIR": str(work / "cache")}
    run = run_keelson("artifacts", "build", "--json", env=env, timeout=3 * 3600).check()
    built = json.loads(run.stdout.strip().splitlines()[-1])
    manifest = json.loads((Path(built["path"]) / "manifest.json").read_text())
    return run.wall_s, run.cpu_s, {k: float(v) for k, v in manifest.get("build_seconds", {}).items()}


@dataclass(frozen=True)
class BuildCost:
    """One timed build: wall and CPU seconds, each binary's bytes, the packages linked (summed over the binaries)."""

    wall_s: float
    cpu_s: float
    sizes: dict[str, int]
    packages: int

    @property
    def mib(self) -> float:
        return sum(self.sizes.values()) / 2**20


def children_cpu_s() -> float:
    """User + system CPU of this process's terminated, waited-for children and their own waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def binary_recipes(recipe: Recipe) -> tuple[Recipe, Recipe]:
    """The set's Kubernetes recipe narrowed to (a) its multi-call target alone and (b) each program the multi-call
    binary stands for, from upstream's own main package — the same go.mod, flags and stamps; no links, no agnhost."""
    called = set(recipe.links.values())
    multicall = tuple(t for t in recipe.targets if {t.output} == called)
    if len(multicall) != 1 or not recipe.links:
        raise BenchError(f"the {recipe.key} recipe has no single multi-call target: {recipe.targets}, {recipe.links}")
    separate = tuple(Target(SEPARATE_PACKAGE.format(name), name) for name in recipe.links)
    return replace(recipe, targets=multicall, links={}), replace(recipe, targets=separate, links={})


def prime(recipes: Sequence[Recipe], run: GoRunner) -> None:
    """Modules downloaded and every package of the targets compiled into Go's build cache (`go list -export`
    compiles without linking; the same compile actions as `go build -trimpath`): the timed builds then only link."""
    for recipe in recipes:
        env = go_env(cgo=recipe.cgo)
        run(["mod", "download"], recipe.dir, env)
        packages = [t.package for t in recipe.targets]
        run(["list", "-trimpath", "-export", "-f", "{{.Export}}", *packages], recipe.dir, env)


def measured_build(
    recipe: Recipe, bin_dir: Path, run: GoRunner, clock: Callable[[], float], cpu: Callable[[], float]
) -> BuildCost:
    bin_dir.mkdir(parents=True)
    wall0, cpu0 = clock(), cpu()
    go_build_targets(recipe, bin_dir, run=run)
    wall, used = clock() - wall0, cpu() - cpu0
    sizes = {t.output: (bin_dir / t.output).stat().st_size for t in recipe.targets}
    env = go_env(cgo=recipe.cgo)
    packages = sum(len(run(["list", "-deps", t.package], recipe.dir, env).split()) for t in recipe.targets)
    return BuildCost(wall, used, sizes, packages)


def comparison_fields(
    multicall: BuildCost,
    separate: BuildCost,
    programs: Sequence[str],
    same_as_set: bool,
    prime_s: float,
    load: Sequence[float],
) -> dict[str, Any]:
    if len(multicall.sizes) != 1:
        raise BenchError(f"the multi-call build made {sorted(multicall.sizes)}, not one binary")
    if sorted(separate.sizes) != sorted(programs):
        raise BenchError(f"the separate build made {sorted(separate.sizes)}, not {sorted(programs)}")
    return {
        "multicall_build_s": round(multicall.wall_s, 1),
        "separate_build_s": round(separate.wall_s, 1),
        "multicall_cpu_s": round(multicall.cpu_s, 1),
        "separate_cpu_s": round(separate.cpu_s, 1),
        "multicall_mib": round(multicall.mib, 1),
        "separate_mib": round(separate.mib, 1),
        "separate_files_mib": {name: round(separate.sizes[name] / 2**20, 1) for name in programs},
        "multicall_packages": multicall.packages,
        "separate_packages": separate.packages,
        "multicall_same_as_set": same_as_set,
        "compare_prime_s": round(prime_s, 1),
        "compare_load_avg": [round(x, 2) for x in load],
    }


def files_state(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under `root` by inode, size and mtime: any write, replacement or new file changes it."""
    found: dict[str, tuple[int, int, int]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        found[str(path.relative_to(root))] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def compare_binaries(
    found: ArtifactSet,
    work: Path,
    run: GoRunner = run_go,
    clock: Callable[[], float] = time.monotonic,
    cpu: Callable[[], float] = children_cpu_s,
) -> dict[str, Any]:
    """Build the multi-call binary and the seven separate programs into `work` (outside keelson's artifact cache:
    nothing is built through the parts cache, and the set's files are checked unchanged afterwards)."""
    from provision.artifacts import layout

    if work.resolve().is_relative_to(artifacts_root().resolve()):
        raise BenchError(f"{work} is inside the artifact cache {artifacts_root()}: the comparison builds elsewhere")
    release = _release()
    recipe = kubernetes(release)
    multicall, separate = binary_recipes(recipe)
    before = files_state(found.path)
    load = os.getloadavg()
    started = clock()
    prime((multicall, separate), run)
    prime_s = clock() - started
    multi = measured_build(multicall, work / "multicall", run, clock, cpu)
    sep = measured_build(separate, work / "separate", run, clock, cpu)
    if files_state(found.path) != before:
        raise BenchError(f"the artifact set {found.path} changed during the comparison")
    ours = sha256_file(work / "multicall" / multicall.targets[0].output)
    same = ours == found.manifest.file(layout.kube_binary(release, "kubeadm").path).sha256
    return comparison_fields(multi, sep, tuple(recipe.links), same, prime_s, load)


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


def bench_artifacts(
    cold: bool, name: str = "bench-artifacts", compare: bool = False, install_set: bool = True
) -> dict[str, Any]:
    found = _require_set()
    warm = min(warm_build_s() for _ in range(3))
    cli_warm = run_keelson("artifacts", "build").check().wall_s
    result: dict[str, Any] = {
        "kubernetes": found.manifest.kubernetes,
        "set": str(found.path),
        "build_cold_s": None,
        "build_cold_cpu_s": None,
        "build_warm_s": round(warm, 3),
        "build_warm_cli_s": round(cli_warm, 3),
        "set_mib": round(sum({f.sha256: f.size for f in found.manifest.files}.values()) / 2**20, 1),
        "served_mib": round(sum(f.size for f in found.manifest.files) / 2**20, 1),
        "files": {f.path.rsplit("/", 1)[-1]: round(f.size / 2**20, 1) for f in found.manifest.files},
        "install_s": None,
        "install_noop_s": None,
        **dict.fromkeys(COMPARE_FIELDS),
    }
    with tempfile.TemporaryDirectory(prefix="keelson-bench-artifacts-") as tmp:
        work = Path(tmp)
        if compare:
            result.update(compare_binaries(found, work / "compare"))
        if install_set:
            install_s, noop_s, ssh = install(work, name)
            result.update(install_s=round(install_s, 3), install_noop_s=round(noop_s, 3), noop_ssh_commands=ssh)
        if cold:
            cold_s, cold_cpu_s, parts = cold_build(work)
            result.update(build_cold_s=round(cold_s, 1), build_cold_cpu_s=round(cold_cpu_s, 1), part_seconds=parts)
    result["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    return result
