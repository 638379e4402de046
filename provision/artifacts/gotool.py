"""Running the machine's Go: its environment (caches under keelson's cache, no toolchain download), and errors."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

from inventory.errors import KeelsonError
from provision.artifacts.cache import go_cache


class BuildError(KeelsonError):
    """An artifact could not be built; the message names the step and shows the tool's output."""


def go_binary() -> str:
    found = shutil.which("go")
    if found is None:
        raise BuildError(
            "Go is not installed: keelson builds the Kubernetes artifacts from their Go modules",
            hint="install Go 1.26+ (e.g. apt-get install golang-go, or go.dev/dl), or use kubernetes.artifacts: "
            "upstream/mirror in the inventory",
        )
    return found


def go_env(cgo: bool = False) -> dict[str, str]:
    """The build environment: the machine's Go (GOTOOLCHAIN=local), module/build caches under keelson's cache,
    go.sum enforced (-mod=readonly), static binaries, no VCS stamping. GOPROXY is the machine's own setting."""
    root = go_cache()
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN="local",
        GOMODCACHE=str(root / "mod"),
        GOCACHE=str(root / "build"),
        GOPATH=str(root / "path"),
        GOFLAGS="-mod=readonly -buildvcs=false",
        CGO_ENABLED="1" if cgo else "0",
        GOOS="linux",
        GOARCH="amd64",
    )
    return env


@cache
def go_version() -> str:
    """`go version` of the machine's Go, e.g. "go1.26.8" (part of every recipe's hash)."""
    out = run_go(["env", "GOVERSION"], cwd=Path.cwd()).strip()
    return out or "unknown"


def run_go(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [go_binary(), *args], cwd=cwd, env=env or go_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise BuildError(f"`go {' '.join(args[:3])}…` failed in {cwd} (exit {proc.returncode}):\n{tail}")
    return proc.stdout


@contextlib.contextmanager
def modules_prefetched(module_dirs: Sequence[Path]) -> Iterator[None]:
    """While the body compiles one recipe, download the modules of the next ones (`go mod download` in each folder,
    one after the other, in a background thread): on a cold cache the proxy's latency overlaps the compiler instead
    of adding to it. Go's module cache is safe for concurrent use. A failed download is not reported here: that
    recipe's own `go mod download` runs again when its turn comes and says what is wrong."""
    stop = threading.Event()

    def fetch() -> None:
        for folder in module_dirs:
            if stop.is_set():
                return
            subprocess.run([go_binary(), "mod", "download"], cwd=folder, env=go_env(), capture_output=True, check=False)

    worker = threading.Thread(target=fetch, name="go-mod-prefetch", daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()
