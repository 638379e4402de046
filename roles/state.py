"""The operator-side state of one cluster: PKI, tokens, passwords. A directory (0700) of files (0600).

Under the CLI it lives in `~/.local/share/keelson/<cluster>/` (or `$KEELSON_STATE_DIR/<cluster>/`); under Pulumi the
same values are secret stack outputs. Nothing read from here is ever printed or logged by keelson.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_SECRET_LOCK = threading.Lock()


def default_state_root() -> Path:
    env = os.environ.get("KEELSON_STATE_DIR")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "keelson"


@dataclass(frozen=True)
class StateDir:
    path: Path

    @classmethod
    def for_cluster(cls, cluster_name: str, root: Path | None = None) -> StateDir:
        return cls((root or default_state_root()) / cluster_name)

    def ensure(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)
        return self.path

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self, name: str) -> bool:
        return self.file(name).is_file()

    def read(self, name: str) -> bytes:
        return self.file(name).read_bytes()

    def write(self, name: str, data: bytes) -> Path:
        """Atomic write, mode 0600; parent folders 0700. A crash mid-write leaves the old file or none."""
        target = self.file(name)
        self.ensure()
        for folder in reversed(target.relative_to(self.path).parents[:-1]):  # every folder 0700, not just the last
            (self.path / folder).mkdir(exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def secret(self, name: str, generate: Callable[[], str] | None = None) -> str:
        """The secret stored under `name`, created once (random URL-safe text by default) and kept thereafter.
        Created under a lock (threads of one run, and other keelson processes): hosts planned in parallel that
        ask for the same new secret all get the one that was stored."""
        if self.exists(name):
            return self.read(name).decode().strip()
        self.ensure()
        with _SECRET_LOCK, open(self.path / ".secrets.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.exists(name):
                return self.read(name).decode().strip()
            value = (generate or (lambda: secrets.token_urlsafe(24)))()
            self.write(name, value.encode() + b"\n")
            return value
