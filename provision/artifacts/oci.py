"""OCI image tarballs written by keelson: no registry, no Docker, byte-identical for the same inputs.

    image = Image(
        "registry.k8s.io/pause:3.10",
        layers=[Layer([File("pause", source=Path("build/pause"), mode=0o755)])],
        config=ImageConfig(entrypoint=("/pause",)),
    )
    write_archive([image], Path("pause.tar"))     # then: ctr -n k8s.io images import pause.tar

The archive is an OCI image layout (image-spec v1.1 `image-layout.md`) in one tar: `oci-layout`, `index.json` with one
manifest descriptor per image — annotated with `io.containerd.image.name` (the full, normalised name, what
`ctr images import` names the image) and `org.opencontainers.image.ref.name` (the tag) —, and `blobs/sha256/…`: each
layer as a gzip'd tar, the image config (whose `rootfs.diff_ids` are the sha256 of the uncompressed layer tars) and
the manifest. Blobs shared by several images are stored once.

Deterministic: entries sorted by path, parent folders added, mtime 0, owner 0:0 unless given, no user or group
names, gzip with mtime 0 and no file name, JSON with sorted keys. The platform is linux/amd64 unless given.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from inventory.errors import KeelsonError

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ANNOTATION_NAME = "io.containerd.image.name"
ANNOTATION_REF = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GZIP_LEVEL = 6  # level 9 costs twice the time for ~1 % on Go binaries
_CHUNK = 1 << 20

# distribution/reference's grammar: enough to tell domain, path and tag apart and to refuse what a registry would.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?")
_TAG = re.compile(r"\w[\w.-]{0,127}")


class ImageError(KeelsonError):
    """An image cannot be written as asked (a bad name, a path outside the image, a missing source file)."""


# -- what goes in ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    """A regular file: its bytes given (`data`) or read from a file on this machine (`source`)."""

    path: str
    data: bytes | None = None
    source: Path | None = None
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Directory:
    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


Entry = File | Symlink | Directory


@dataclass(frozen=True)
class Layer:
    entries: Sequence[Entry]


@dataclass(frozen=True)
class ImageConfig:
    """The runtime config of an image (image-spec `config.md`, the `config` object). `env` is added to a default
    PATH unless it sets PATH itself."""

    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    env: Sequence[str] = ()
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: Sequence[str] = ()  # "8080/tcp"


@dataclass(frozen=True)
class Image:
    name: str  # e.g. registry.k8s.io/pause:3.10.2
    layers: Sequence[Layer]
    config: ImageConfig = field(default_factory=ImageConfig)
    architecture: str = "amd64"
    os: str = "linux"


@dataclass(frozen=True)
class Written:
    """One image as written: its normalised name, tag and the digests a registry or containerd would show."""

    name: str
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    diff_ids: tuple[str, ...]


# -- names -----------------------------------------------------------------------------------------------------------


def normalize_name(name: str) -> tuple[str, str]:
    """(full name, tag): `pause:3.10` → `docker.io/library/pause:3.10`, as containerd and kubelet spell it.
    A name without a tag, or with a digest, is refused: the tarball has to say which tag it provides."""
    repo, colon, tag = name.rpartition(":")
    first, slash, rest = repo.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", repo if "/" in repo else f"library/{repo}"
    if (
        not colon
        or "/" in tag
        or "@" in name
        or not _TAG.fullmatch(tag)
        or not _DOMAIN.fullmatch(domain)
        or not all(_COMPONENT.fullmatch(c) for c in path.split("/"))
    ):
        raise ImageError(
            f"image name {name!r} is not a valid reference with a tag",
            hint="e.g. registry.k8s.io/pause:3.10 (lower-case path, `:tag`, no @digest)",
        )
    return f"{domain}/{path}:{tag}", tag


# -- layers ----------------------------------------------------------------------------------------------------------


def _clean(path: str) -> str:
    p = PurePosixPath("/" + path.lstrip("/"))
    parts = [part for part in p.parts[1:] if part not in ("", ".")]
    if not parts or ".." in parts:
        raise ImageError(f"path {path!r} is not inside the image")
    return "/".join(parts)


def layer_entries(layer: Layer) -> list[tuple[str, Entry]]:
    """The layer's entries by clean path, with missing parent folders added (0755, root), sorted: a parent before
    its children. The same path twice is an error."""
    by_path: dict[str, Entry] = {}
    for entry in layer.entries:
        path = _clean(entry.path)
        if path in by_path:
            raise ImageError(f"{path!r} is twice in one layer")
        if isinstance(entry, File) and (entry.data is None) == (entry.source is None):
            raise ImageError(f"{path!r}: give either data or source")
        by_path[path] = entry
    for path in list(by_path):
        parent = PurePosixPath(path).parent
        while str(parent) != ".":
            existing = by_path.get(str(parent))
            if existing is not None and not isinstance(existing, Directory):
                raise ImageError(f"{str(parent)!r} is a parent folder of {path!r} but not a directory")
            by_path.setdefault(str(parent), Directory(str(parent)))
            parent = parent.parent
    return sorted(by_path.items())


def _tarinfo(path: str, entry: Entry) -> tuple[tarfile.TarInfo, IO[bytes] | None]:
    info = tarfile.TarInfo(path)
    info.mtime = 0
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    if isinstance(entry, Directory):
        info.type, info.mode = tarfile.DIRTYPE, entry.mode
        return info, None
    if isinstance(entry, Symlink):
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.target
        return info, None
    info.mode = entry.mode
    if entry.data is not None:
        info.size = len(entry.data)
        return info, io.BytesIO(entry.data)
    assert entry.source is not None
    try:
        fh = open(entry.source, "rb")  # noqa: SIM115 - closed by the caller once tarfile has copied it
        info.size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise ImageError(f"{path!r}: cannot read {entry.source}: {exc.strerror}") from exc
    return info, fh


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Hashing(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to `sink`."""

    def __init__(self, sink: _Sink) -> None:
        self.sink, self.sha, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.sha.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


@dataclass(frozen=True)
class _Blob:
    digest: str
    size: int
    path: Path | None = None  # a temp file, or
    data: bytes = b""  # small JSON documents


def _write_layer(layer: Layer, out_path: Path) -> tuple[_Blob, str]:
    """(gzip'd layer blob, diff_id): the tar goes through a hasher into gzip, through another into a temp file."""
    with open(out_path, "wb") as raw:
        compressed = _Hashing(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=GZIP_LEVEL, mtime=0) as gz:
            uncompressed = _Hashing(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path, entry in layer_entries(layer):
                    info, fh = _tarinfo(path, entry)
                    try:
                        tar.addfile(info, fh)
                    finally:
                        if fh is not None:
                            fh.close()
    return _Blob(compressed.digest, compressed.size, path=out_path), uncompressed.digest


# -- documents -------------------------------------------------------------------------------------------------------


def _json_blob(doc: Mapping[str, Any]) -> _Blob:
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return _Blob("sha256:" + hashlib.sha256(data).hexdigest(), len(data), data=data)


def config_document(image: Image, diff_ids: Iterable[str]) -> dict[str, Any]:
    c = image.config
    env = list(c.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, f"PATH={DEFAULT_PATH}")
    runtime: dict[str, Any] = {"Env": env}
    if c.entrypoint:
        runtime["Entrypoint"] = list(c.entrypoint)
    if c.cmd:
        runtime["Cmd"] = list(c.cmd)
    if c.working_dir:
        runtime["WorkingDir"] = c.working_dir
    if c.user:
        runtime["User"] = c.user
    if c.labels:
        runtime["Labels"] = dict(c.labels)
    if c.exposed_ports:
        runtime["ExposedPorts"] = {p: {} for p in c.exposed_ports}
    diff_ids = list(diff_ids)
    return {
        "architecture": image.architecture,
        "os": image.os,
        "created": EPOCH,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": EPOCH, "created_by": "keelson"} for _ in diff_ids],
    }


def _descriptor(media_type: str, blob: _Blob) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": blob.digest, "size": blob.size}


# -- the archive -----------------------------------------------------------------------------------------------------


def write_archive(images: Sequence[Image], out: Path) -> list[Written]:
    """Write `images` as one OCI image-layout tar at `out` (atomically: a temp file renamed into place)."""
    if not images:
        raise ImageError("no image to write")
    names = [normalize_name(i.name) for i in images]
    if len({n for n, _ in names}) != len(names):
        raise ImageError(f"the same image name twice in one archive: {[i.name for i in images]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".oci-", dir=out.parent) as tmp:
        workdir = Path(tmp) / "blobs"
        workdir.mkdir()
        blobs: dict[str, _Blob] = {}
        manifests, written = [], []
        for image, (name, tag) in zip(images, names, strict=True):
            layers, diff_ids = [], []
            for layer in image.layers:
                blob, diff_id = _write_layer(layer, workdir / f"layer-{len(blobs)}.tar.gz")
                blobs.setdefault(blob.digest, blob)
                layers.append(blob)
                diff_ids.append(diff_id)
            config = _json_blob(config_document(image, diff_ids))
            manifest = _json_blob(
                {
                    "schemaVersion": 2,
                    "mediaType": MEDIA_MANIFEST,
                    "config": _descriptor(MEDIA_CONFIG, config),
                    "layers": [_descriptor(MEDIA_LAYER_GZIP, b) for b in layers],
                }
            )
            blobs.setdefault(config.digest, config)
            blobs.setdefault(manifest.digest, manifest)
            manifests.append(
                {
                    **_descriptor(MEDIA_MANIFEST, manifest),
                    "platform": {"architecture": image.architecture, "os": image.os},
                    "annotations": {ANNOTATION_NAME: name, ANNOTATION_REF: tag},
                }
            )
            written.append(
                Written(name, tag, manifest.digest, config.digest, tuple(b.digest for b in layers), tuple(diff_ids))
            )
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests}, sort_keys=True, indent=None
        ).encode()
        layout = json.dumps({"imageLayoutVersion": "1.0.0"}).encode()
        partial = Path(tmp) / "archive.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for d in ("blobs", "blobs/sha256"):
                info, _ = _tarinfo(d, Directory(d))
                tar.addfile(info)
            for digest in sorted(blobs):
                _add_blob(tar, f"blobs/sha256/{digest.removeprefix('sha256:')}", blobs[digest])
            _add_blob(tar, "index.json", _Blob("", len(index), data=index))
            _add_blob(tar, "oci-layout", _Blob("", len(layout), data=layout))
        partial.replace(out)
    return written


def _add_blob(tar: tarfile.TarFile, name: str, blob: _Blob) -> None:
    if blob.path is None:
        info, fh = _tarinfo(name, File(name, data=blob.data))
    else:
        info, fh = _tarinfo(name, File(name, source=blob.path))
    assert fh is not None
    with fh:
        tar.addfile(info, fh)


def read_index(archive: Path) -> list[dict[str, Any]]:
    """The manifest descriptors of an archive's index.json (for listing and checks)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ImageError(f"{archive}: no index.json")
        manifests: list[dict[str, Any]] = json.load(member)["manifests"]
    return manifests
