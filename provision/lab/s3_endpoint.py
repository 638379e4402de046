"""A real S3 HTTP API for lab hosts: moto's server mode, bound to loopback or the lab bridge's gateway.

The backup tests and `keelson bench etcd` send etcd snapshots to it (the lab has no network beyond its bridge, so no
cloud S3). moto is not a dependency of keelson itself: it comes with the `bench` extra (`pip install
'keelson[bench]'`) and the dev group.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from provision.lab.errors import LabError

S3_ACCESS = "keelson-test-access"  # the lab endpoint's own credentials (moto accepts any): never a real account
S3_SECRET = "keelson-test-secret-never-printed"  # noqa: S105


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
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise LabError(
            "the lab's S3 endpoint needs moto's server mode", hint="pip install 'keelson[bench]' (or 'moto[server]')"
        ) from exc

    server = ThreadedMotoServer(ip_address=address, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Endpoint(url=f"http://{host}:{port}")
    finally:
        server.stop()


@contextlib.contextmanager
def s3_env(
    endpoint: S3Endpoint,
    access_var: str = "AWS_ACCESS_KEY_ID",
    secret_var: str = "AWS_SECRET_ACCESS_KEY",  # noqa: S107 - a variable's name
) -> Iterator[None]:
    """The endpoint's credentials in the variables a backup target's `credentials_env` names, for the block."""
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
