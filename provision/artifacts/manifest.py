"""An artifact set's manifest: what is in it (path, size, sha256 of every file; each image's name and digest),
written last so a set without one is incomplete, and checked by `keelson artifacts verify`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from inventory.errors import KeelsonError

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"


class SetInvalid(KeelsonError):
    """An artifact set does not match its manifest."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the set (the mirror layout)
    size: int
    sha256: str
    kind: str  # binary | archive | image


@dataclass(frozen=True)
class ImageEntry:
    name: str  # as kubeadm / the manifests ask: registry.k8s.io/pause:3.10.2
    path: str  # the OCI tarball in the set
    digest: str  # the image manifest's digest (what containerd lists after an import)


@dataclass
class Manifest:
    kubernetes: str
    key: str  # version + recipe hash: the set's folder name
    go: str
    versions: dict[str, str]
    files: list[FileEntry] = field(default_factory=list)
    images: list[ImageEntry] = field(default_factory=list)
    build_seconds: dict[str, float] = field(default_factory=dict)

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise SetInvalid(f"artifact set {self.key} has no {path}")

    @property
    def total_bytes(self) -> int:
        """Bytes on disk: files with the same content (the multi-call binary under every name) count once."""
        return sum({f.sha256: f.size for f in self.files}.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        files = [FileEntry(**f) for f in data.pop("files")]
        images = [ImageEntry(**i) for i in data.pop("images")]
        return cls(**data, files=files, images=images)

    @classmethod
    def load(cls, set_dir: Path) -> Manifest:
        path = set_dir / MANIFEST
        try:
            return cls.from_json(path.read_text())
        except FileNotFoundError:
            raise SetInvalid(f"{set_dir} has no {MANIFEST}: an incomplete artifact set") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise SetInvalid(f"{path} is not a keelson artifact manifest: {exc}") from exc


def record(set_dir: Path, path: str, kind: str) -> FileEntry:
    """The entry for a file just written into the set, plus its `<file>.sha256` (upstream's format: the digest)."""
    full = set_dir / path
    digest = sha256_file(full)
    (full.parent / (full.name + ".sha256")).write_text(digest + "\n")
    return FileEntry(path, full.stat().st_size, digest, kind)


def write(set_dir: Path, manifest: Manifest) -> None:
    sums = "".join(f"{f.sha256}  {f.path}\n" for f in sorted(manifest.files, key=lambda f: f.path))
    (set_dir / SUMS).write_text(sums)
    tmp = set_dir / (MANIFEST + ".tmp")
    tmp.write_text(manifest.to_json())
    tmp.replace(set_dir / MANIFEST)


def verify(set_dir: Path) -> Manifest:
    """Every file present with its size and sha256, and its .sha256 file saying the same. Raises SetInvalid."""
    manifest = Manifest.load(set_dir)
    problems = []
    for entry in manifest.files:
        full = set_dir / entry.path
        if not full.is_file():
            problems.append(f"{entry.path}: missing")
            continue
        if full.stat().st_size != entry.size:
            problems.append(f"{entry.path}: size {full.stat().st_size}, manifest says {entry.size}")
            continue
        actual = sha256_file(full)
        if actual != entry.sha256:
            problems.append(f"{entry.path}: sha256 {actual}, manifest says {entry.sha256}")
        side = full.parent / (full.name + ".sha256")
        if not side.is_file() or side.read_text().split()[:1] != [entry.sha256]:
            problems.append(f"{entry.path}.sha256: missing or not the manifest's digest")
    paths = {f.path for f in manifest.files}
    problems += [
        f"image {i.name}: {i.path} is not in the manifest's files" for i in manifest.images if i.path not in paths
    ]
    if problems:
        raise SetInvalid(
            f"artifact set {manifest.key} does not match its manifest ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n  " + "\n  ".join(problems),
            hint="rebuild it: keelson artifacts build --kubernetes " + manifest.kubernetes,
        )
    return manifest
