"""What a step asks a host to do: shell commands (built from quoted tokens) and file writes. Pure data."""

from __future__ import annotations

import base64
import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

# Where the runner puts a command's uploads on the host before its script runs (a private folder of the login user;
# the script reads them as "$KEELSON_UPLOADS/<name>").
UPLOAD_DIR = '"$KEELSON_UPLOADS"'


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Upload:
    """A local file the runner sends to the host (SFTP, streamed) before the command runs, as "$KEELSON_UPLOADS/name".
    For large payloads (binaries, image tarballs); the command checks what arrived (e.g. its sha256)."""

    source: Path
    name: str

    @property
    def size(self) -> int:
        return self.source.stat().st_size


@dataclass(frozen=True)
class Command:
    """One POSIX-sh command run as root on a host. `secrets` are masked wherever the command is shown.

    A command that carries secret material — `secrets` to mask, or `secret=True` (a key's bytes in the script) —
    is `sensitive`: the runner then sends its host's script for that phase as a private file (SFTP, 0600), never as
    a command-line argument, where every user of the host could read it in `/proc/*/cmdline`.
    """

    script: str
    secrets: tuple[str, ...] = ()
    description: str = ""
    summary_only: bool = False  # show `description` instead of the script (file writes: their content is no plan)
    uploads: tuple[Upload, ...] = ()
    secret: bool = False

    @property
    def sensitive(self) -> bool:
        return self.secret or any(self.secrets)

    def redacted(self) -> str:
        text = self.script
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def shown(self) -> str:
        """How a plan or a log shows this command: never a secret, never a file's content."""
        return self.description if self.summary_only and self.description else self.redacted()


@dataclass(frozen=True)
class FileWrite:
    """Write `content` to `path` atomically: temp file beside it, optional validation, chown/chmod, rename.

    The content travels inside the command (base64 in a here-string: no process gets it as an argument); a
    `secret` one makes the command `sensitive`, so the whole script reaches the host as a private file.
    """

    path: str
    content: bytes
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False
    validate: str | None = None  # e.g. "haproxy -c -f %s": %s is the temp file; non-zero exit aborts the write

    @property
    def sha256(self) -> str:
        return sha256_hex(self.content)

    def to_command(self) -> Command:
        # Few forks (each costs a host ~1 ms): builtins make the temp name, a umask gives the mode of a plain file,
        # noclobber refuses to write through anything already at the temp path, a here-string feeds base64.
        q = shlex.quote
        payload = base64.b64encode(self.content).decode()
        directory = self.path.rsplit("/", 1)[0] or "/"
        lines = [
            f"[ -d {q(directory)} ] || mkdir -p {q(directory)}",
            f'tmp={q(directory.rstrip("/") + "/.keelson.")}"$BASHPID.$RANDOM"',
            "trap 'rm -f \"$tmp\"' ERR",
            "set -C",
        ]
        plain = self.mode & ~0o666 == 0  # no execute or special bits: creation with this umask gives the mode
        if plain:
            lines.append(f"umask {~self.mode & 0o777:03o}")
        lines += [f'base64 -d <<< {q(payload)} > "$tmp"', "set +C"]
        if self.validate:
            check = self.validate.replace("%s", '"$tmp"')
            lines.append(
                f'if ! {check}; then rm -f "$tmp"; echo "validation failed: {q(self.validate)}" >&2; exit 65; fi'
            )
        lines.append(f'chown {q(self.owner)}:{q(self.group)} "$tmp"')
        if not plain:
            lines.append(f'chmod {self.mode:04o} "$tmp"')
        lines.append(f'mv -f "$tmp" {q(self.path)}')
        what = "secret, " if self.secret else ""
        checked = f", checked with `{self.validate}`" if self.validate else ""
        description = (
            f"write {self.path} ({what}{len(self.content)} bytes, mode {self.mode:04o}, "
            f"sha256 {self.sha256[:12]}{checked})"
        )
        return Command("set -e\n" + "\n".join(lines), description=description, summary_only=True, secret=self.secret)
