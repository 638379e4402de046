"""Where a lab keeps its things. One state dir per lab, one shared rootfs cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LAB_ROOT = Path("/var/lib/keelson/lab")


def lab_root() -> Path:
    return Path(os.environ.get("KEELSON_LAB_ROOT", str(DEFAULT_LAB_ROOT)))


def cache_root() -> Path:
    env = os.environ.get("KEELSON_LAB_ROOT")
    return Path(env) / "cache" if env else Path("/var/cache/keelson/lab")


@dataclass(frozen=True)
class LabPaths:
    """The files of one lab under `<lab root>/<name>/`."""

    name: str

    @property
    def root(self) -> Path:
        return lab_root() / self.name

    @property
    def state_file(self) -> Path:
        return self.root / "lab.json"

    @property
    def key(self) -> Path:
        return self.root / "keys" / "lab_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def host_dir(self, host: str) -> Path:
        return self.root / "hosts" / host

    def merged(self, host: str) -> Path:
        return self.host_dir(host) / "merged"

    def launcher_pid(self, host: str) -> Path:
        return self.run / f"{host}.pid"

    def log(self, host: str) -> Path:
        return self.run / f"{host}.log"

    def cgroups_record(self, host: str) -> Path:
        """The host's cgroup folders as its launch made them (they depend on the launching process's own cgroups)."""
        return self.run / f"{host}.cgroups"
