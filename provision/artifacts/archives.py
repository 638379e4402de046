"""Deterministic .tar.gz archives, shaped like the upstream release archives (crictl's, the CNI plugins')."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path


def write_tgz(target: Path, members: dict[str, Path], prefix: str = "") -> None:
    """`members` (name in archive -> file) as a gzip'd tar: sorted, mode 0755, owner 0:0, mtime 0."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            source = members[name].resolve()
            info = tarfile.TarInfo(prefix + name)
            info.size = source.stat().st_size
            info.mode = 0o755
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with source.open("rb") as handle:
                tar.addfile(info, handle)
    tmp = target.with_name(target.name + ".tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    tmp.replace(target)
