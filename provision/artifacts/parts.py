"""Parts: the built output of one recipe (or of one non-Go step), cached in its own folder by name and hash.

    <cache>/artifacts/parts/<component>-<version>-<hash>/bin/<binary>   + part.json once complete

A part is built in a `.partial` folder and renamed when complete, so an interrupted build leaves nothing that
looks finished; the next run builds it again and reuses Go's build cache for whatever was compiled already.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provision.artifacts.cache import artifacts_root
from provision.artifacts.gotool import go_env, go_version, run_go
from provision.artifacts.recipes import Recipe

MARKER = "part.json"


@dataclass(frozen=True)
class Part:
    name: str  # "kubernetes-v1.37.2"
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def info(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.path / MARKER).read_text())
        return data


def parts_root() -> Path:
    return artifacts_root() / "parts"


def cached(name: str, digest: str) -> Part | None:
    path = parts_root() / f"{name}-{digest}"
    return Part(name, path) if (path / MARKER).exists() else None


def produce(name: str, digest: str, make: Callable[[Path], dict[str, object]]) -> Part:
    """The part `name` with this digest: from the cache, or made by `make(folder)` and recorded."""
    found = cached(name, digest)
    if found is not None:
        return found
    final = parts_root() / f"{name}-{digest}"
    work = final.with_name(final.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    info = make(work)
    info.update(name=name, digest=digest, seconds=round(time.monotonic() - started, 1))
    (work / MARKER).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    _remove_stale(name, keep=final)
    return Part(name, final)


def _remove_stale(name: str, keep: Path) -> None:
    """Older builds of the same component version (another recipe hash) go: the cache holds one per version."""
    for old in parts_root().glob(f"{name}-*"):
        if old != keep and old.is_dir() and old.name.removeprefix(name + "-").isalnum():
            shutil.rmtree(old, ignore_errors=True)


GoRunner = Callable[[list[str], Path, dict[str, str]], str]  # run_go's shape: (args, cwd, env) -> stdout


def go_build_targets(recipe: Recipe, bin_dir: Path, cwd: Path | None = None, run: GoRunner = run_go) -> None:
    """`go build` every target of a Go recipe into `bin_dir`, one after the other: static, -trimpath, stripped,
    version stamped — the one place the build's flags are made (`keelson bench artifacts --compare-binaries` builds
    other targets of the Kubernetes recipe with them). Modules must be downloaded already."""
    static = ("-linkmode", "external", "-extldflags", "'-static'") if recipe.cgo else ()
    ldflags = " ".join(("-s", "-w", *static, *recipe.ldflags))
    env = go_env(cgo=recipe.cgo)
    for target in recipe.targets:
        out = bin_dir / target.output
        run(["build", "-trimpath", "-ldflags", ldflags, "-o", str(out), target.package], cwd or recipe.dir, env)


def go_build(recipe: Recipe, work: Path, source: Path | None = None) -> dict[str, object]:
    """Build every target of a Go recipe (static, -trimpath, stripped, version stamped) into `work/bin`, from the
    recipe's folder (or a copy of it, `source`, where files were generated before the build)."""
    cwd = source or recipe.dir
    (work / "bin").mkdir()
    run_go(["mod", "download"], cwd=cwd)
    go_build_targets(recipe, work / "bin", cwd)
    for link, to in recipe.links.items():
        os.symlink(to, work / "bin" / link)
    return {"component": recipe.component, "version": recipe.version, "go": go_version()}


def go_part(recipe: Recipe) -> Part:
    """Build every target of a Go recipe into one part (cached by the recipe's hash)."""
    return produce(recipe.key, recipe.digest(go_version()), lambda work: go_build(recipe, work))
