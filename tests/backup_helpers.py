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

PUT_KEYS = r"""
import base64, json, ssl, sys, http.client
prefix, start, count, addr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile="/etc/etcd/pki/ca.crt")
ctx.load_cert_chain("/etc/etcd/pki/healthcheck-client.crt", "/etc/etcd/pki/healthcheck-client.key")
conn = http.client.HTTPSConnection(addr, 2379, context=ctx, timeout=30)
b64 = lambda s: base64.b64encode(s.encode()).decode()
for first in range(start, start + count, 100):
    ops = [{"requestPut": {"key": b64(f"{prefix}{i:06d}"), "value": b64(f"value-{i}")}}
           for i in range(first, min(first + 100, start + count))]
    conn.request("POST", "/v3/kv/txn", body=json.dumps({"success": ops}), headers={"Content-Type": "application/json"})
    resp = conn.getresponse(); body = resp.read()
    if resp.status != 200: sys.exit(f"txn failed: {resp.status} {body[:200]!r}")
print("ok")
"""


def put_keys_script(prefix: str, start: int, count: int, address: str) -> str:
    """A shell command that writes `count` keys `<prefix>NNNNNN` in transactions of 100 (seconds for 10 000)."""
    return f"python3 - {prefix} {start} {count} {address} <<'PY'\n{PUT_KEYS}\nPY"


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
