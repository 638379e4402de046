"""Where built artifacts and the Go caches live: one cache root shared with the lab's rootfs cache.

    <cache>/lab/…                  the lab's rootfs (provision.lab)
    <cache>/go/mod, <cache>/go/build   Go's module and build caches (never in the checkout)
    <cache>/artifacts/parts/…      one folder per built component (name, version, recipe hash)
    <cache>/artifacts/sets/…       one folder per artifact set (Kubernetes version + recipe hash)
    <cache>/artifacts/debs/…       Debian packages the images take their userland from

The root is `$KEELSON_CACHE_DIR`, else `/var/cache/keelson` for root, else `$XDG_CACHE_HOME/keelson`.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_home() -> Path:
    env = os.environ.get("KEELSON_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if os.geteuid() == 0:
        return Path("/var/cache/keelson")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keelson"


def artifacts_root() -> Path:
    return cache_home() / "artifacts"


def go_cache() -> Path:
    return cache_home() / "go"


@contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """One builder at a time for what is built under `folder` (threads and processes): `<folder>/.build.lock`."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
