"""The pause container's binary, compiled from Kubernetes' own source (build/pause/linux/pause.c in the
k8s.io/kubernetes module of the release) the way its Makefile does: `gcc -Os -Wall -Werror -static`."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from provision.artifacts.catalog import Release
from provision.artifacts.gotool import BuildError, run_go
from provision.artifacts.parts import Part, produce
from provision.artifacts.recipes import kubernetes


def pause_source(release: Release) -> Path:
    recipe = kubernetes(release)
    out = run_go(["list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes"], cwd=recipe.dir).strip()
    source = Path(out) / "build" / "pause" / "linux" / "pause.c"
    if not source.exists():
        raise BuildError(f"{source} is missing from the k8s.io/kubernetes module", hint="rerun: go mod download")
    return source


def pause_part(release: Release) -> Part:
    source = pause_source(release)
    digest = hashlib.sha256(source.read_bytes() + release.pause.encode()).hexdigest()[:16]

    def make(work: Path) -> dict[str, object]:
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise BuildError("no C compiler: the pause binary is C", hint="apt-get install gcc libc6-dev")
        (work / "bin").mkdir()
        out = work / "bin" / "pause"
        argv = [cc, "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{release.pause}", "-o", str(out), str(source)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(f"compiling pause failed: {proc.stderr.strip()[-800:]}", hint="apt-get install libc6-dev")
        subprocess.run(["strip", str(out)], check=False, capture_output=True)
        return {"component": "pause", "version": release.pause}

    return produce(f"pause-{release.pause}", digest, make)
