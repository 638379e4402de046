#!/usr/bin/python3
"""keelson etcd backup agent: runs on every etcd member from `keelson-etcd-backup.timer`.

Self-contained on purpose (Python 3.11 stdlib + boto3, the host's python3): keelson uploads this one file to
`/usr/local/lib/keelson/backup_agent.py` with its config `/etc/keelson/backup.json`. It never imports keelson.

One run: ask the local member whether it is the raft leader (followers exit 0, so the job still happens with a member
down); the leader saves a snapshot, verifies it (etcd's trailing sha256 + `snapshot status`: hash, revision, keys),
gzips it as `<cluster>-<UTC time>-rev<revision>.db.gz`, keeps the newest `retention` locally, then copies it to each
offsite target and verifies each copy's sha256 (S3: stored as object metadata and re-read by download; SSH:
`sha256sum` on the remote side), and after each successful copy prunes that target to the newest `retention` copies
of this cluster's snapshots too (S3: list under the prefix, delete; SSH: the receiver's `prune`). Each target's
last success / last failure is kept in a status file; the exit status is non-zero when anything failed. Secrets
(S3 keys) come from the environment (the unit's EnvironmentFile=) only.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

DEFAULT_CONFIG = "/etc/keelson/backup.json"
HASH_SIZE = 32  # etcd appends sha256(db) to a snapshot; its size is then ≡ 32 (mod 512), see etcd's v3_snapshot.go
CHUNK = 1 << 20
NAME_RE = re.compile(r"^(?P<cluster>[a-z0-9-]+)-(?P<time>\d{8}T\d{6}Z)-rev(?P<rev>\d+)\.db\.gz$")
RUN_REQUEST = "run-request"  # in the status dir: the id `keelson backup now` asks the next run to carry
LAST_RUN = "last-run.json"  # in the status dir: the latest run's report
RUN_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
T = TypeVar("T")


class AgentError(Exception):
    """A failure the agent reports (status file + non-zero exit); never carries a secret."""


class SnapshotInvalid(AgentError):
    """The snapshot file is truncated, corrupt or not an etcd snapshot."""


# -- snapshot files: names, integrity ---------------------------------------------------------------------------


def snapshot_name(cluster: str, when: dt.datetime, revision: int) -> str:
    return f"{cluster}-{when.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-rev{revision}.db.gz"


@dataclass(frozen=True)
class SnapshotName:
    cluster: str
    time: dt.datetime
    revision: int


def parse_snapshot_name(name: str) -> SnapshotName | None:
    m = NAME_RE.match(Path(name).name)
    if not m:
        return None
    when = dt.datetime.strptime(m["time"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return SnapshotName(m["cluster"], when, int(m["rev"]))


def expired(names: Sequence[str], cluster: str, keep: int) -> list[str]:
    """The snapshot names of `cluster` beyond the newest `keep` (other files are never touched)."""
    ours = sorted((n for n in names if (p := parse_snapshot_name(n)) and p.cluster == cluster), reverse=True)
    return sorted(ours[keep:])


def offsite_expired(keys: Sequence[str], prefix: str, cluster: str, keep: int) -> list[str]:
    """The S3 keys to delete under `prefix` (a target's `s3_key("")`): `cluster`'s snapshots beyond the newest
    `keep`. Only keys directly under the prefix whose name is a snapshot name count: nothing in a sub-folder, no
    other file, no other cluster's snapshot is ever a candidate."""
    names = {key[len(prefix) :]: key for key in keys if key.startswith(prefix) and "/" not in key[len(prefix) :]}
    return [names[name] for name in expired(list(names), cluster, keep)]


@dataclass(frozen=True)
class FileCheck:
    db_size: int
    db_sha256: str  # of the whole .db (trailer included): what `etcdctl snapshot restore` reads
    file_sha256: str  # of the file as stored (.db.gz or .db)
    compressed: bool


def check_db_stream(chunks: Iterator[bytes]) -> tuple[int, str]:
    """Check etcd's integrity trailer: size ≡ 32 (mod 512) and the last 32 bytes = sha256(the rest)."""
    body, whole, tail, size = hashlib.sha256(), hashlib.sha256(), b"", 0
    for chunk in chunks:
        whole.update(chunk)
        size += len(chunk)
        buf = tail + chunk
        body.update(buf[:-HASH_SIZE])
        tail = buf[-HASH_SIZE:]
    if size < 4096 + HASH_SIZE:
        raise SnapshotInvalid(f"{size} bytes: too small to be an etcd snapshot (truncated?)")
    if size % 512 != HASH_SIZE:
        raise SnapshotInvalid(f"{size} bytes: no etcd integrity hash at the end (truncated, or not from snapshot save)")
    if body.digest() != tail:
        raise SnapshotInvalid("etcd integrity hash mismatch: the snapshot is corrupt")
    return size, whole.hexdigest()


def check_snapshot_file(path: Path) -> FileCheck:
    """Verify a .db or .db.gz snapshot with no etcd binary: gzip stream + CRC, then etcd's trailing sha256."""
    file_hash = hashlib.sha256()
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)

        def tee_raw() -> Iterator[bytes]:
            while chunk := raw.read(CHUNK):
                file_hash.update(chunk)
                yield chunk

        try:
            if compressed:
                decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)

                def inflate() -> Iterator[bytes]:
                    for chunk in tee_raw():
                        yield decomp.decompress(chunk)
                    if not decomp.eof:
                        raise SnapshotInvalid("gzip stream ends early: the file is truncated")
                    if decomp.unused_data.strip(b"\0"):
                        raise SnapshotInvalid("trailing data after the gzip stream")

                size, db_sha = check_db_stream(inflate())
            else:
                size, db_sha = check_db_stream(tee_raw())
        except zlib.error as exc:
            raise SnapshotInvalid(f"gzip data is corrupt ({exc})") from None
    return FileCheck(size, db_sha, file_hash.hexdigest(), compressed)


def gzip_file(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as gz:
        while chunk := fin.read(CHUNK):
            gz.write(chunk)


# -- etcdctl: commands and their output -------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointStatus:
    endpoint: str
    member_id: int
    leader: int
    revision: int
    version: str

    @property
    def is_leader(self) -> bool:
        return self.leader != 0 and self.member_id == self.leader


def parse_endpoint_status(text: str) -> list[EndpointStatus]:
    """`etcdctl endpoint status -w json`: a JSON list (also printed, partial, when some endpoint failed)."""
    start = text.find("[")
    try:
        items = json.loads(text[start:]) if start >= 0 else []
    except json.JSONDecodeError:
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        status = item.get("Status") or {}
        header = status.get("header") or {}
        out.append(
            EndpointStatus(
                endpoint=str(item.get("Endpoint", "")),
                member_id=int(header.get("member_id", 0)),
                leader=int(status.get("leader", 0)),
                revision=int(header.get("revision", 0)),
                version=str(status.get("version", "")),
            )
        )
    return out


@dataclass(frozen=True)
class SnapshotStatus:
    hash: int
    revision: int
    total_keys: int
    total_size: int


def parse_snapshot_status(text: str) -> SnapshotStatus:
    """`etcdctl|etcdutl snapshot status FILE -w json` → hash, revision, totalKey, totalSize."""
    start = text.find("{")
    try:
        data = json.loads(text[start : text.rfind("}") + 1]) if start >= 0 else {}
        return SnapshotStatus(int(data["hash"]), int(data["revision"]), int(data["totalKey"]), int(data["totalSize"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise SnapshotInvalid(f"unreadable `snapshot status` output: {text.strip()[:200]!r}") from None


@dataclass(frozen=True)
class EtcdAccess:
    endpoint: str  # this member's client URL
    endpoints: list[str]  # every member's client URL
    cacert: str
    cert: str
    key: str
    etcdctl: str = "etcdctl"
    status_tool: str = "auto"  # `etcdutl` from etcd 3.5 on; auto: etcdutl when installed, else etcdctl

    def etcdctl_argv(self, *args: str, endpoints: Sequence[str] | None = None) -> list[str]:
        eps = ",".join(endpoints or [self.endpoint])
        tls = [f"--cacert={self.cacert}", f"--cert={self.cert}", f"--key={self.key}"]
        return [self.etcdctl, f"--endpoints={eps}", *tls, "--dial-timeout=3s", "--command-timeout=15s", *args]

    def snapshot_status_argv(self, snapshot: str) -> list[str]:
        tool = self.status_tool
        if tool == "auto":
            tool = "etcdutl" if shutil.which("etcdutl") else "etcdctl"
        return [tool, "snapshot", "status", snapshot, "-w", "json"]


# -- configuration ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    id: str  # file-name safe, stable: names the status file
    kind: str  # s3 | ssh
    display: str
    # s3
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_env: str = "AWS_ACCESS_KEY_ID"
    secret_key_env: str = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - the variable's name, not a secret
    # ssh
    host: str = ""
    port: int = 22
    user: str = "keelson-backup"
    path: str = ""
    identity: str = "/etc/keelson/backup/id_ed25519"
    known_hosts: str = "/etc/keelson/backup/known_hosts"

    def s3_key(self, name: str) -> str:
        return f"{self.prefix.strip('/')}/{name}" if self.prefix.strip("/") else name


@dataclass(frozen=True)
class Config:
    cluster: str
    member: str
    etcd: EtcdAccess
    retention: int
    local_dir: str = "/var/backups/keelson/etcd"
    status_dir: str = "/var/lib/keelson/backup"
    targets: list[Target] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Config:
        return cls(
            cluster=data["cluster"],
            member=data["member"],
            etcd=EtcdAccess(**data["etcd"]),
            retention=int(data["retention"]),
            local_dir=data.get("local_dir", cls.local_dir),
            status_dir=data.get("status_dir", cls.status_dir),
            targets=[Target(**t) for t in data.get("targets", [])],
        )

    @classmethod
    def load(cls, path: str) -> Config:
        with open(path, encoding="utf-8") as f:
            return cls.from_json(json.load(f))


# -- offsite copies ---------------------------------------------------------------------------------------------


def retry(action: Callable[[], T], *, attempts: int = 3, delay: float = 1.0) -> T:
    """Retry a network copy (never a failed verification) with a doubling delay."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (OSError, subprocess.SubprocessError, TransientCopyError):
            if attempt == attempts:
                raise
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


class TransientCopyError(AgentError):
    """A copy failed in transport (connection, timeout): worth another attempt."""


def s3_client(target: Target) -> Any:
    import boto3  # only when an S3 target is configured

    access, secret = os.environ.get(target.access_key_env), os.environ.get(target.secret_key_env)
    if not access or not secret:
        raise AgentError(f"S3 credentials missing: set {target.access_key_env} and {target.secret_key_env}")
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint_url,
        region_name=target.region,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
    )


def s3_copy(target: Target, local: Path, sha256: str, client: Any = None) -> str:
    client = client or s3_client(target)
    key = target.s3_key(local.name)
    with open(local, "rb") as f:
        md5 = base64.b64encode(hashlib.md5(f.read(), usedforsecurity=False).digest()).decode()

    def put() -> None:
        try:
            with open(local, "rb") as f:
                client.put_object(Bucket=target.bucket, Key=key, Body=f, ContentMD5=md5, Metadata={"sha256": sha256})
        except Exception as exc:  # botocore's errors: connection, throttling, 5xx
            raise TransientCopyError(f"upload to s3://{target.bucket}/{key} failed: {exc}") from None

    retry(put)
    obj = client.get_object(Bucket=target.bucket, Key=key)
    stored = obj.get("Metadata", {}).get("sha256")
    h = hashlib.sha256()
    for chunk in obj["Body"].iter_chunks(CHUNK):
        h.update(chunk)
    if stored != sha256 or h.hexdigest() != sha256:
        raise AgentError(
            f"s3://{target.bucket}/{key}: sha256 mismatch after upload (metadata {stored}, data {h.hexdigest()})"
        )
    return f"s3://{target.bucket}/{key}"


def s3_list(target: Target, client: Any = None) -> list[dict[str, Any]]:
    client = client or s3_client(target)
    prefix = target.s3_key("")
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if parse_snapshot_name(obj["Key"]):
                out.append(
                    {
                        "name": Path(obj["Key"]).name,
                        "size": obj["Size"],
                        "location": f"s3://{target.bucket}/{obj['Key']}",
                    }
                )
    return out


def s3_prune(target: Target, cluster: str, keep: int, client: Any = None) -> list[str]:
    """Delete `cluster`'s snapshots under the target's prefix beyond the newest `keep`; returns their names."""
    client = client or s3_client(target)
    prefix = target.s3_key("")
    keys = [
        obj["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
    gone = offsite_expired(keys, prefix, cluster, keep)
    for key in gone:
        client.delete_object(Bucket=target.bucket, Key=key)
    return [Path(key).name for key in gone]


RECEIVER_NAME = "keelson-backup-receiver"
RECEIVER = r"""#!/bin/sh
# keelson-backup-receiver: the only thing keelson's backup key may do on a backup host.
#   put NAME          stdin -> DIR/.NAME.part (0600), prints its sha256
#   commit NAME SHA   checks the .part's sha256 is SHA, moves it to DIR/NAME, writes DIR/NAME.sha256
#   list              "SIZE NAME" for every DIR/*.db.gz
#   prune CLUSTER N   deletes CLUSTER's snapshots (CLUSTER-<UTC time>-rev<N>.db.gz, and their .sha256) beyond
#                     the newest N, prints each name deleted; no other file is ever touched
# Two ways in. Restricted key (authorized_keys: restrict,command="THIS_FILE DIR"): sshd runs this file with the
# pinned DIR whatever the client asked; the request is the tail of SSH_ORIGINAL_COMMAND after the last
# " keelson-backup-receiver " and its DIR must be the pinned one. Plain account: the agent sends this same text as
# `sh -c TEXT keelson-backup-receiver DIR OP ARGS`. Files are 0600 and DIR 0700 either way (umask 077).
set -eu
umask 077
fail() { echo "keelson-backup-receiver: $*" >&2; exit 2; }
if [ -n "${SSH_ORIGINAL_COMMAND+set}" ]; then
    [ "$#" -eq 1 ] || fail "installed wrongly: the forced command must name exactly one folder"
    pinned=$1
    request=${SSH_ORIGINAL_COMMAND##*" keelson-backup-receiver "}
    set -f
    IFS=" "
    # shellcheck disable=SC2086 # split on purpose; globbing is off
    set -- $request
    set +f
    [ "$#" -ge 2 ] || fail "refused: this key only stores etcd snapshots (put, commit, list, prune)"
    [ "$1" = "$pinned" ] || fail "refused: this key may only write to $pinned"
fi
[ "$#" -ge 2 ] || fail "refused: expected DIR put NAME | DIR commit NAME SHA256 | DIR list | DIR prune CLUSTER N"
dir=$1
op=$2
shift 2
case $dir in
    /*) ;;
    *) fail "DIR must be an absolute path" ;;
esac
case $dir in
    *[!A-Za-z0-9._/-]* | */../* | */.. | */./* | */.) fail "DIR must be a plain absolute path" ;;
esac
check_name() {
    case $1 in
        "" | .* | *[!A-Za-z0-9._-]*) fail "bad snapshot name" ;;
        *.db.gz) ;;
        *) fail "bad snapshot name" ;;
    esac
}
check_sha() {
    case $1 in
        *[!0-9a-f]*) fail "bad sha256" ;;
    esac
    [ "${#1}" -eq 64 ] || fail "bad sha256"
}
digest() { sha256sum < "$1" | cut -d " " -f 1; }
case $op in
    put)
        [ "$#" -eq 1 ] || fail "usage: DIR put NAME"
        check_name "$1"
        mkdir -p -m 0700 -- "$dir"
        chmod 0700 -- "$dir" 2>/dev/null || true
        part="$dir/.$1.part"
        rm -f -- "$part"
        cat > "$part"
        digest "$part"
        ;;
    commit)
        [ "$#" -eq 2 ] || fail "usage: DIR commit NAME SHA256"
        check_name "$1"
        check_sha "$2"
        part="$dir/.$1.part"
        [ -f "$part" ] || fail "no upload of $1 to commit"
        [ "$(digest "$part")" = "$2" ] || fail "sha256 mismatch: $1 was not stored"
        chmod 0600 -- "$part"
        mv -f -- "$part" "$dir/$1"
        printf "%s  %s\n" "$2" "$1" > "$dir/.$1.sha256.part"
        mv -f -- "$dir/.$1.sha256.part" "$dir/$1.sha256"
        ;;
    list)
        [ "$#" -eq 0 ] || fail "usage: DIR list"
        cd -- "$dir" 2>/dev/null || exit 0
        for f in *.db.gz; do
            [ -f "$f" ] && printf "%s %s\n" "$(stat -c %s -- "$f")" "$f"
        done
        ;;
    prune)
        [ "$#" -eq 2 ] || fail "usage: DIR prune CLUSTER N"
        case $1 in
            "" | -* | *[!a-z0-9-]*) fail "bad cluster name" ;;
        esac
        case $2 in
            "" | 0* | *[!0-9]*) fail "N must be a number of snapshots to keep, 1 or more" ;;
        esac
        [ "${#2}" -le 6 ] || fail "N must be a number of snapshots to keep, 1 or more"
        cd -- "$dir" 2>/dev/null || exit 0
        for f in "$1"-*.db.gz; do
            [ -f "$f" ] && printf "%s\n" "$f"
        done | grep -E "^$1-[0-9]{8}T[0-9]{6}Z-rev[0-9]+[.]db[.]gz\$" | LC_ALL=C sort -r | tail -n "+$(($2 + 1))" |
            while IFS= read -r f; do
                rm -f -- "$f" "$f.sha256"
                printf "%s\n" "$f"
            done
        ;;
    *) fail "refused: unknown request $op (put, commit, list, prune)" ;;
esac
exit 0
"""


def receiver_command(path: str, op: str, *args: str) -> str:
    """The remote command for one receiver request. A plain account's shell runs RECEIVER with these arguments; a
    restricted key's forced receiver ignores the text before the request. Names and hashes are checked here too."""
    return shlex.join(["sh", "-c", RECEIVER, RECEIVER_NAME, path, op, *args])


def ssh_argv(target: Target, remote_command: str) -> list[str]:
    """ssh to the backup host with keelson's key, its host key pinned (strict), never a prompt; `--` ends the
    options, so nothing in the destination can be read as one (the inventory also validates user and host)."""
    return [
        "ssh",
        "-i", target.identity,
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={target.known_hosts}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=10",
        "-p", str(target.port),
        "--",
        f"{target.user}@{target.host}",
        remote_command,
    ]  # fmt: skip


def ssh_copy(target: Target, local: Path, sha256: str) -> str:
    """Stream to a .part on the backup host, compare its sha256, then let the host check it again and move it in."""

    def upload() -> str:
        with open(local, "rb") as f:
            argv = ssh_argv(target, receiver_command(target.path, "put", local.name))
            proc = subprocess.run(argv, stdin=f, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise TransientCopyError(f"ssh {target.host}: upload failed ({proc.stderr.strip()[-300:]})")
        return proc.stdout

    remote = (retry(upload).split() or [""])[0]
    if remote != sha256:
        raise AgentError(f"{target.display}: sha256 mismatch on the backup host (remote {remote}, local {sha256})")
    argv = ssh_argv(target, receiver_command(target.path, "commit", local.name, sha256))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise AgentError(f"ssh {target.host}: could not move the copy into place ({proc.stderr.strip()[-300:]})")
    return f"{target.user}@{target.host}:{target.path.rstrip('/')}/{local.name}"


def ssh_list(target: Target) -> list[dict[str, Any]]:
    argv = ssh_argv(target, receiver_command(target.path, "list"))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    out = []
    for line in proc.stdout.splitlines():
        size, _, name = line.partition(" ")
        if parse_snapshot_name(name) and size.isdigit():
            out.append({"name": name, "size": int(size), "location": f"{target.host}:{target.path.rstrip('/')}/{name}"})
    return out


def ssh_prune(target: Target, cluster: str, keep: int) -> list[str]:
    """The receiver deletes `cluster`'s snapshots beyond the newest `keep` in its folder; returns their names."""
    argv = ssh_argv(target, receiver_command(target.path, "prune", cluster, str(keep)))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise AgentError(f"ssh {target.host}: pruning old copies failed ({proc.stderr.strip()[-300:]})")
    return [name for name in proc.stdout.split() if parse_snapshot_name(name)]


def prune_offsite(target: Target, cluster: str, keep: int) -> list[str]:
    """After a successful copy: the target keeps `keep` copies of this cluster's snapshots, like the local folder."""
    if target.kind == "s3":
        return s3_prune(target, cluster, keep)
    if target.kind == "ssh":
        return ssh_prune(target, cluster, keep)
    raise AgentError(f"unknown target kind {target.kind!r}")


def copy_to(target: Target, local: Path, sha256: str) -> str:
    if target.kind == "s3":
        return s3_copy(target, local, sha256)
    if target.kind == "ssh":
        return ssh_copy(target, local, sha256)
    raise AgentError(f"unknown target kind {target.kind!r}")


# -- status files -----------------------------------------------------------------------------------------------


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def record(status_dir: Path, target_id: str, display: str, *, ok: bool, when: dt.datetime, **detail: Any) -> None:
    """Update `target-<id>.json`: the last success and the last failure (with its error), each kept until replaced."""
    path = status_dir / f"target-{target_id}.json"
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = {}
    current.update({"target": display, "last_success" if ok else "last_failure": {"time": when.isoformat(), **detail}})
    current.setdefault("last_success", None)
    current.setdefault("last_failure", None)
    write_json(path, current)


# -- one run ----------------------------------------------------------------------------------------------------

Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


def run_cmd(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ETCDCTL_API": "3"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=env)


def claim_run_id(status_dir: Path) -> str:
    """This run's id: the one `keelson backup now` wrote to the request file just before starting the unit (the file
    is consumed, so only one run carries it), else a fresh one (a timer run). The CLI waits for a report with its id,
    so an earlier run's report is never shown as the one it asked for."""
    request = status_dir / RUN_REQUEST
    try:
        requested = request.read_text(encoding="utf-8").strip()
        request.unlink()
    except OSError:
        requested = ""
    return requested if RUN_ID_RE.match(requested) else f"timer-{os.urandom(8).hex()}"


@dataclass
class BackupRun:
    """What one run of the agent did (printed as JSON, kept as last-run.json)."""

    member: str
    time: str
    run_id: str = ""
    outcome: str = "failed"  # snapshot | skipped | failed
    reason: str = ""
    snapshot: str = ""
    revision: int = 0
    total_keys: int = 0
    sha256: str = ""
    copies: dict[str, str] = field(default_factory=dict)
    pruned: dict[str, list[str]] = field(default_factory=dict)  # "local" or a target id -> the snapshots deleted
    errors: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0


def leader_decision(cfg: Config, run: Runner) -> tuple[bool, str]:
    """(take the snapshot?, why). Local member down → skip if another member reports a leader, else fail."""
    local = run(cfg.etcd.etcdctl_argv("endpoint", "status", "-w", "json"))
    mine = [s for s in parse_endpoint_status(local.stdout) if s.member_id]
    if mine:
        if mine[0].is_leader:
            return True, "this member is the leader"
        return False, f"not the leader (leader id {mine[0].leader:x})"
    every = run(cfg.etcd.etcdctl_argv("endpoint", "status", "-w", "json", endpoints=cfg.etcd.endpoints))
    leaders = {s.leader for s in parse_endpoint_status(every.stdout) if s.leader}
    if leaders:
        return False, f"local member unreachable; leader {min(leaders):x} is elsewhere"
    raise AgentError(f"no etcd member answered with a leader ({(local.stderr or every.stderr).strip()[-300:]})")


def take_snapshot(cfg: Config, run: Runner, report: BackupRun, when: dt.datetime) -> Path:
    local_dir = Path(cfg.local_dir)
    local_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=local_dir, prefix=".snap-") as tmp:
        db = Path(tmp) / "snapshot.db"
        saved = run(cfg.etcd.etcdctl_argv("snapshot", "save", str(db)))
        if saved.returncode != 0:
            raise AgentError(f"snapshot save failed: {saved.stderr.strip()[-300:]}")
        check_snapshot_file(db)
        status_out = run(cfg.etcd.snapshot_status_argv(str(db)))
        if status_out.returncode != 0:
            raise SnapshotInvalid(f"snapshot status failed: {status_out.stderr.strip()[-300:]}")
        status = parse_snapshot_status(status_out.stdout)
        if status.revision < 0 or status.total_keys < 0 or status.total_size <= 0:
            raise SnapshotInvalid(f"snapshot status makes no sense: {status}")  # a fresh cluster is at revision 0
        final = local_dir / snapshot_name(cfg.cluster, when, status.revision)
        part = Path(tmp) / final.name
        gzip_file(db, part)
        check = check_snapshot_file(part)
        os.replace(part, final)
    (final.parent / f"{final.name}.sha256").write_text(f"{check.file_sha256}  {final.name}\n", encoding="utf-8")
    report.snapshot, report.revision, report.total_keys = final.name, status.revision, status.total_keys
    report.sha256 = check.file_sha256
    return final


def prune_local(cfg: Config) -> list[str]:
    local_dir = Path(cfg.local_dir)
    gone = expired([p.name for p in local_dir.glob("*.db.gz")], cfg.cluster, cfg.retention)
    for name in gone:
        (local_dir / name).unlink(missing_ok=True)
        (local_dir / f"{name}.sha256").unlink(missing_ok=True)
    return gone


Prune = Callable[[Target, str, int], list[str]]


def run_backup(
    cfg: Config,
    run: Runner = run_cmd,
    copy: Callable[[Target, Path, str], str] = copy_to,
    prune: Prune = prune_offsite,
) -> BackupRun:
    started, when = time.monotonic(), now_utc()
    status_dir = Path(cfg.status_dir)
    report = BackupRun(member=cfg.member, time=when.isoformat(), run_id=claim_run_id(status_dir))
    try:
        take, report.reason = leader_decision(cfg, run)
        if not take:
            report.outcome = "skipped"
            return report
        final = take_snapshot(cfg, run, report, when)
        report.pruned["local"] = prune_local(cfg)
        detail = {"snapshot": final.name, "revision": report.revision, "total_keys": report.total_keys}
        record(status_dir, "local", f"local {cfg.local_dir}", ok=True, when=when, sha256=report.sha256, **detail)
        report.outcome = "copying"
    except AgentError as exc:
        report.errors["local"] = str(exc)
        record(status_dir, "local", f"local {cfg.local_dir}", ok=False, when=when, error=str(exc))
        return report
    finally:
        report.duration_s = round(time.monotonic() - started, 3)
        write_json(status_dir / LAST_RUN, asdict(report))
    for target in cfg.targets:
        try:
            report.copies[target.id] = copy(target, final, report.sha256)
            where = report.copies[target.id]
            record(status_dir, target.id, target.display, ok=True, when=now_utc(), snapshot=final.name, location=where)
            report.pruned[target.id] = prune(target, cfg.cluster, cfg.retention)
        except Exception as exc:  # a target's failure must not stop the others; reported, never swallowed
            error = str(exc) or type(exc).__name__
            if target.id in report.copies:
                error = f"copied, but pruning the old copies failed: {error}"
            report.errors[target.id] = error
            record(status_dir, target.id, target.display, ok=False, when=now_utc(), snapshot=final.name, error=error)
    report.outcome = "snapshot" if not report.errors else "failed"
    report.duration_s = round(time.monotonic() - started, 3)
    write_json(status_dir / LAST_RUN, asdict(report))
    return report


# -- entry point ------------------------------------------------------------------------------------------------


def list_snapshots(cfg: Config, offsite: bool) -> dict[str, Any]:
    status_dir, local_dir = Path(cfg.status_dir), Path(cfg.local_dir)
    statuses = {}
    for path in sorted(status_dir.glob("target-*.json")):
        try:
            statuses[path.stem.removeprefix("target-")] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
    local = [
        {"name": p.name, "size": p.stat().st_size, "location": str(p)}
        for p in sorted(local_dir.glob("*.db.gz"))
        if parse_snapshot_name(p.name)
    ]
    result: dict[str, Any] = {"member": cfg.member, "status": statuses, "local": local, "offsite": {}}
    for target in cfg.targets if offsite else []:
        try:
            result["offsite"][target.id] = s3_list(target) if target.kind == "s3" else ssh_list(target)
        except Exception as exc:  # listing is best effort, the error is shown instead
            result["offsite"][target.id] = {"error": str(exc)}
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keelson-backup-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="take, verify, keep and copy a snapshot if this member leads (default)")
    verify = sub.add_parser("verify", help="check a snapshot file (.db or .db.gz)")
    verify.add_argument("snapshot")
    listing = sub.add_parser("list", help="status files and snapshots, as JSON")
    listing.add_argument("--offsite", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            print(json.dumps(asdict(check_snapshot_file(Path(args.snapshot)))))
            return 0
        cfg = Config.load(args.config)
        if args.command == "list":
            print(json.dumps(list_snapshots(cfg, args.offsite)))
            return 0
        report = run_backup(cfg)
    except (AgentError, OSError, ValueError, KeyError) as exc:
        print(f"keelson-backup: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report)))
    for target_id, error in report.errors.items():
        print(f"keelson-backup: {target_id}: {error}", file=sys.stderr)
    return 0 if report.outcome in ("snapshot", "skipped") else 1


if __name__ == "__main__":
    os.umask(0o077)  # snapshots, their .sha256 and the status files hold every Kubernetes Secret: owner only
    sys.exit(main())
