"""Operator-side snapshot handling: verify a file with no etcd binary, fetch one from S3, and describe it.

The integrity check itself lives in the agent (`backups/agent.py`, stdlib only) so the hosts and the operator run the
very same code: the gzip stream and its CRC, then etcd's own trailer (sha256 of the db appended by the server's
Snapshot RPC; `etcdctl snapshot restore` refuses a file whose size is not ≡ 32 mod 512 or whose trailer mismatches).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backups import agent
from inventory.errors import KeelsonError
from inventory.model import Cluster, S3Target


class SnapshotRejected(KeelsonError):
    """The snapshot failed verification: nothing was (or will be) changed on the cluster."""

    exit_code = 3


class SnapshotFetchError(KeelsonError):
    """The snapshot could not be fetched from its offsite location."""


@dataclass(frozen=True)
class VerifiedSnapshot:
    path: Path
    name: str
    file_sha256: str  # what is compared on every host after upload
    db_sha256: str
    db_size: int
    revision: int | None  # from the name, when it follows keelson's naming

    def describe(self) -> str:
        rev = f", revision {self.revision}" if self.revision is not None else ""
        return f"{self.name}: ok — etcd snapshot of {self.db_size} bytes{rev}, sha256 {self.file_sha256[:16]}…"


def verify_snapshot(path: Path) -> VerifiedSnapshot:
    if not path.is_file():
        raise SnapshotRejected(f"{path}: not a file" if path.exists() else f"{path}: no such file")
    try:
        check = agent.check_snapshot_file(path)
    except agent.SnapshotInvalid as exc:
        raise SnapshotRejected(
            f"{path}: not a valid etcd snapshot: {exc}",
            hint="take another copy (local, S3 or the SSH backup host); nothing was changed on the cluster",
        ) from None
    except OSError as exc:
        raise SnapshotRejected(f"{path}: cannot read: {exc}") from exc
    parsed = agent.parse_snapshot_name(path.name)
    return VerifiedSnapshot(
        path=path,
        name=path.name,
        file_sha256=check.file_sha256,
        db_sha256=check.db_sha256,
        db_size=check.db_size,
        revision=parsed.revision if parsed else None,
    )


def parse_s3_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket or not key:
        raise SnapshotFetchError(f"{url}: expected s3://bucket/key")
    return bucket, key


def s3_target_for(cluster: Cluster, bucket: str) -> S3Target:
    for target in cluster.backups.targets:
        if isinstance(target, S3Target) and target.bucket == bucket:
            return target
    raise SnapshotFetchError(
        f"bucket {bucket!r} is not one of the inventory's S3 backup targets",
        hint="the endpoint, region and credential variables are taken from the matching backups.targets entry",
    )


def fetch_s3(cluster: Cluster, url: str, dest_dir: Path) -> Path:
    """Download with the credentials named by the inventory's matching S3 target (from this environment)."""
    bucket, key = parse_s3_url(url)
    target = s3_target_for(cluster, bucket)
    access_var, secret_var = target.credentials_env
    if not os.environ.get(access_var) or not os.environ.get(secret_var):
        raise SnapshotFetchError(f"S3 credentials not set: {access_var}, {secret_var}")
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=target.endpoint_url,
        region_name=target.region,
        aws_access_key_id=os.environ[access_var],
        aws_secret_access_key=os.environ[secret_var],
    )
    dest = dest_dir / Path(key).name
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        client.download_file(bucket, key, tmp)
        os.replace(tmp, dest)
    except Exception as exc:  # botocore's errors, without the credentials
        Path(tmp).unlink(missing_ok=True)
        raise SnapshotFetchError(f"{url}: download failed: {exc}") from None
    return dest


class UnsupportedSnapshotLocation(KeelsonError):
    """`--snapshot` names a location keelson cannot read (http://, ftp://, …)."""

    exit_code = 2


def check_ref(ref: str) -> None:
    """Refuse, before anything else happens, a snapshot location that is neither a local file nor s3://bucket/key."""
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", ref)
    if scheme is not None and scheme.group(1) != "s3":
        raise UnsupportedSnapshotLocation(
            f"--snapshot {ref}: {scheme.group(1)}:// is not supported (a local file or s3://bucket/key)",
            hint="download the snapshot first and pass the local file",
        )
    if scheme is not None:
        parse_s3_url(ref)
    elif not Path(ref).is_file():
        raise SnapshotRejected(f"{ref}: not a file" if Path(ref).exists() else f"{ref}: no such file")


def obtain(cluster: Cluster, ref: str, work_dir: Path) -> VerifiedSnapshot:
    """A local path or s3://bucket/key → a verified local file (refused before anything else happens)."""
    check_ref(ref)
    path = fetch_s3(cluster, ref, work_dir) if ref.startswith("s3://") else Path(ref)
    return verify_snapshot(path)


@contextlib.contextmanager
def obtained(cluster: Cluster, ref: str) -> Iterator[VerifiedSnapshot]:
    """`obtain` into a private temp folder that is removed afterwards (with the downloaded copy, if any)."""
    with tempfile.TemporaryDirectory(prefix="keelson-restore-") as work:
        yield obtain(cluster, ref, Path(work))
