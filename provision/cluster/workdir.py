"""The private folder a Pulumi-driven run works in: the operator state, the SSH key and known_hosts, written from
the stack's secrets for the length of one call and removed after it.

Under the CLI the operator state is a folder (~/.local/share/keelson/<cluster>/); under Pulumi it is a secret
map (relative path → base64 content) carried by the cluster's resources, so it lives encrypted in the stack's state.
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from inventory.errors import KeelsonError
from inventory.loader import parse_inventory
from inventory.model import Cluster
from roles.state import StateDir

StateFiles = dict[str, str]  # relative path -> base64 of the content
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when PyYAML has it (the loader uses it too)


MEMORY_DIRS = ("/dev/shm",)  # after $XDG_RUNTIME_DIR: file systems in memory (tmpfs) on Linux


def memory_dir() -> str | None:
    """Where the private folders go: a file system in memory when there is one (the user's $XDG_RUNTIME_DIR, else
    /dev/shm), else the default temporary folder (None). Every no-op diff of a cluster resource makes one (the key,
    known_hosts, ~30 state files in 4 folders) and removes it: 12 ms a folder on this machine's ext4 /tmp (disk full
    and busy: a rmdir 2 ms), 0.9 ms in /dev/shm; and the key and the CA keys then never reach a disk."""
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), *MEMORY_DIRS):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


@contextmanager
def private_dir(prefix: str = "keelson-pulumi-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=memory_dir()))  # 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _safe(relative: str) -> PurePosixPath:
    path = PurePosixPath(relative)
    if path.is_absolute() or not path.parts or ".." in path.parts:
        raise KeelsonError(f"state file name {relative!r} is not a plain relative path")
    return path


def write_state(folder: Path, files: Mapping[str, str]) -> StateDir:
    """The stack's state files laid out as a state dir (folders 0700, files 0600) in a private folder that is thrown
    away after the call. Plain writes: the stack holds the state, so this copy needs neither StateDir.write's
    temporary file and rename nor its fsync (each no-op diff of a chained resource wrote ~30 files, and an fsync of
    each cost a no-op `pulumi up` up to seconds on a busy disk)."""
    state = StateDir(folder)
    state.ensure()
    for relative, content in files.items():
        path = _safe(relative)
        for parent in reversed(path.parents[:-1]):
            (folder / parent).mkdir(exist_ok=True, mode=0o700)
        fd = os.open(folder / path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64decode(content))
    return state


def read_state(folder: Path) -> StateFiles:
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): base64.b64encode(path.read_bytes()).decode()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def merged(upstream: Mapping[str, str] | None, own: Mapping[str, str] | None) -> StateFiles:
    """What a resource runs with: what it made itself last time (a key only its phases generate), under what the
    resources before it pass on (they win: a re-issued certificate replaces the old one)."""
    return {**(own or {}), **(upstream or {})}


@dataclass(frozen=True)
class Access:
    """How the engine reaches the hosts in a Pulumi run (all from the stack: the key and the env are secrets)."""

    private_key: str  # OpenSSH private key text
    known_hosts: str  # known_hosts lines (each host's key, never learnt off the network)
    env: Mapping[str, str]  # variables the inventory names: S3 credentials (credentials_env), sudo passwords

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> Access:
        return cls(str(props.get("privateKey") or ""), str(props.get("knownHosts") or ""), dict(props.get("env") or {}))


def cluster_from(inventory: Mapping[str, Any], key: Path | None = None, known_hosts: Path | None = None) -> Cluster:
    """The inventory the program passed, validated by the same loader and rules as a file; with the run's private
    key and known_hosts in place of whatever paths it had (every host uses the stack's key)."""
    data = copy.deepcopy(dict(inventory))
    ssh = dict(data.get("ssh") or {})
    if key is not None:
        ssh["key"] = str(key)
        for host in data.get("hosts") or []:
            if isinstance(host, dict) and isinstance(host.get("ssh"), dict):
                host["ssh"].pop("key", None)
    if known_hosts is not None:
        ssh["known_hosts"] = str(known_hosts)
    data["ssh"] = ssh
    return parse_inventory(yaml.dump(data, Dumper=DUMPER, sort_keys=False), source="<stack inventory>")


def export_env(env: Mapping[str, str]) -> None:
    """The roles read S3 credentials and sudo passwords from the process environment (the variables the inventory
    names). A dynamic provider process serves one stack, so the values are the same for every resource: set once."""
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


@contextmanager
def run_folder(
    access: Access, inventory: Mapping[str, Any], state: Mapping[str, str]
) -> Iterator[tuple[Cluster, Path]]:
    """(cluster, state dir) inside a private folder holding the key, known_hosts and state; removed afterwards."""
    with private_dir() as work:
        key = work / "id"
        key.write_text(access.private_key if access.private_key.endswith("\n") else access.private_key + "\n")
        key.chmod(0o600)
        known = work / "known_hosts"
        known.write_text(access.known_hosts)
        known.chmod(0o600)
        export_env(access.env)
        cluster = cluster_from(inventory, key, known)
        state_dir = work / "state"
        write_state(state_dir, state)
        yield cluster, state_dir
