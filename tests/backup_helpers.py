"""Helpers shared by the backup tests: fake etcd snapshot files and a real S3 endpoint (moto's server mode)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

S3_ACCESS = "keelson-test-access"
S3_SECRET = "keelson-test-secret-never-printed"


def fake_db(pages: int = 3, seed: bytes = b"keelson") -> bytes:
    """A stand-in for a bbolt file as `etcdctl snapshot save` writes it: whole 4 KiB pages + sha256 of them."""
    body = (hashlib.sha256(seed).digest() * (4096 * pages // 32))[: 4096 * pages]
    return body + hashlib.sha256(body).digest()


def write_snapshot(path: Path, db: bytes | None = None, *, compress: bool = True) -> Path:
    data = db if db is not None else fake_db()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str = S3_ACCESS
    secret_key: str = S3_SECRET

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


@contextlib.contextmanager
def moto_s3(address: str = "127.0.0.1") -> Iterator[S3Endpoint]:
    """A real S3 endpoint over HTTP on `address` (loopback, or the lab bridge's gateway for lab hosts)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=address, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Endpoint(url=f"http://{host}:{port}")
    finally:
        server.stop()


@contextlib.contextmanager
def s3_env(
    endpoint: S3Endpoint, access_var: str = "AWS_ACCESS_KEY_ID", secret_var: str = "AWS_SECRET_ACCESS_KEY"
) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (access_var, secret_var)}
    os.environ[access_var], os.environ[secret_var] = endpoint.access_key, endpoint.secret_key
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- data in a live etcd (lab hosts): written and read on the members themselves -------------------------------

TXN_BATCHES = r"""
import os, sys
prefix, start, count, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.makedirs(out, exist_ok=True)
for n, first in enumerate(range(start, start + count, 100)):
    puts = "".join(f"put {prefix}{i:06d} value-{i}\n" for i in range(first, min(first + 100, start + count)))
    with open(f"{out}/{n:05d}", "w") as f:
        f.write("\n" + puts + "\n\n")
"""


def put_keys_script(prefix: str, start: int, count: int, address: str) -> str:
    """A shell command that writes `count` keys `<prefix>NNNNNN` = `value-N` in `etcdctl txn` batches of 100
    (etcd's default --max-txn-ops is 128): seconds for 10 000 keys, where one `etcdctl put` each takes minutes."""
    from roles.etcd import commands

    txn = commands.etcdctl(["txn"], endpoints=f"https://{address}:2379", tls=commands.HEALTHCHECK_TLS)
    out = "/tmp/.bk-txn"
    return (
        f"set -e; rm -rf {out}; python3 - {prefix} {start} {count} {out} <<'PY'\n{TXN_BATCHES}\nPY\n"
        f'for f in {out}/*; do {txn} < "$f" > /dev/null; done; rm -rf {out}; echo ok'
    )


def etcdctl_on(address: str, *args: str) -> str:
    """etcdctl against ONE member with the health-check client certificate (the etcd role's builder)."""
    from roles.etcd import commands

    return commands.etcdctl(list(args), endpoints=f"https://{address}:2379", tls=commands.HEALTHCHECK_TLS)


def digest_script(address: str, prefix: str) -> str:
    """Prints `<number of keys> <sha256 of every key and value>` as served by THIS member (serializable read)."""
    from roles.etcd import commands

    get = commands.etcdctl(
        ["get", prefix, "--prefix", "--consistency=s"],
        endpoints=f"https://{address}:2379",
        tls=commands.HEALTHCHECK_TLS,
    )
    out = "/tmp/.bk-digest"
    return f"set -o pipefail; {get} > {out} && echo $(( $(wc -l < {out}) / 2 )) $(sha256sum < {out} | cut -c1-64)"
