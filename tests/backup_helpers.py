"""Helpers shared by the backup tests: fake etcd snapshot files. The S3 endpoint (moto's server mode) and the etcd
keyspace helpers are lab utilities the etcd bench shares: `provision.lab.s3_endpoint`, `provision.bench.etcd_keys`."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path


def fake_db(pages: int = 3, seed: bytes = b"keelson") -> bytes:
    """A stand-in for a bbolt file as `etcdctl snapshot save` writes it: whole 4 KiB pages + sha256 of them."""
    body = (hashlib.sha256(seed).digest() * (4096 * pages // 32))[: 4096 * pages]
    return body + hashlib.sha256(body).digest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_snapshot(path: Path, db: bytes | None = None, *, compress: bool = True) -> Path:
    data = db if db is not None else fake_db()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path
