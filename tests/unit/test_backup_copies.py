"""Offsite copies: S3 against a real endpoint (moto's server on loopback), the SSH side's remote commands in bash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backups import agent
from provision.lab.s3_endpoint import S3Endpoint, moto_s3, s3_env
from tests.backup_helpers import file_sha256, write_snapshot

NAME = "lab-20261123T071500Z-rev42.db.gz"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Endpoint]:
    with moto_s3("127.0.0.1") as endpoint:
        endpoint.client().create_bucket(Bucket="etcd")
        yield endpoint


def s3_target(endpoint: S3Endpoint, prefix: str = "lab/") -> agent.Target:
    return agent.Target(
        id="s3-etcd", kind="s3", display="s3://etcd/lab", bucket="etcd", prefix=prefix, endpoint_url=endpoint.url
    )


def test_s3_copy_stores_sha256_and_verifies_by_download(tmp_path: Path, s3: S3Endpoint) -> None:
    snap = write_snapshot(tmp_path / NAME)
    sha = file_sha256(snap)
    with s3_env(s3):
        where = agent.s3_copy(s3_target(s3), snap, sha)
        listed = agent.s3_list(s3_target(s3))
    assert where == f"s3://etcd/lab/{NAME}"
    head = s3.client().head_object(Bucket="etcd", Key=f"lab/{NAME}")
    assert head["Metadata"]["sha256"] == sha
    assert [o["name"] for o in listed] == [NAME]


def test_s3_copy_without_credentials_names_the_variables_not_values(tmp_path: Path, s3: S3Endpoint) -> None:
    snap = write_snapshot(tmp_path / NAME)
    target = agent.Target(
        id="s3",
        kind="s3",
        display="s3",
        bucket="etcd",
        endpoint_url=s3.url,
        access_key_env="NOPE_A",
        secret_key_env="NOPE_B",
    )
    with pytest.raises(agent.AgentError, match="NOPE_A and NOPE_B"):
        agent.s3_copy(target, snap, "0" * 64)


class CorruptingClient:
    """A real client whose downloads come back altered: the copy must be reported as not verified."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def put_object(self, **kwargs: Any) -> Any:
        return self.real.put_object(**kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        obj = self.real.get_object(**kwargs)
        data = bytearray(obj["Body"].read())
        data[10] ^= 1

        class Body:
            def iter_chunks(self, size: int) -> Iterator[bytes]:
                yield bytes(data)

        return {**obj, "Body": Body()}


def test_s3_copy_detects_a_corrupt_copy(tmp_path: Path, s3: S3Endpoint) -> None:
    snap = write_snapshot(tmp_path / NAME)
    with pytest.raises(agent.AgentError, match="sha256 mismatch"):
        agent.s3_copy(s3_target(s3, prefix=""), snap, file_sha256(snap), client=CorruptingClient(s3.client()))


def test_s3_upload_errors_are_retried_then_reported(tmp_path: Path, s3: S3Endpoint, monkeypatch) -> None:
    monkeypatch.setattr("backups.agent.time.sleep", lambda s: None)
    snap = write_snapshot(tmp_path / NAME)
    target = agent.Target(id="s3", kind="s3", display="s3", bucket="no-such-bucket", endpoint_url=s3.url)
    with s3_env(s3), pytest.raises(agent.TransientCopyError, match="no-such-bucket"):
        agent.s3_copy(target, snap, file_sha256(snap))


def test_ssh_argv_pins_the_host_key_and_never_prompts() -> None:
    target = agent.Target(id="ssh", kind="ssh", display="d", host="198.18.0.21", port=2222, user="backup", path="/b")
    argv = agent.ssh_argv(target, "true")
    joined = " ".join(argv)
    assert "StrictHostKeyChecking=yes" in joined and "BatchMode=yes" in joined
    assert "UserKnownHostsFile=/etc/keelson/backup/known_hosts" in joined and "GlobalKnownHostsFile=/dev/null" in joined
    assert argv[-3:] == ["--", "backup@198.18.0.21", "true"] and argv[argv.index("-p") + 1] == "2222"
    assert argv.index("--") > max(i for i, a in enumerate(argv) if a.startswith("-") and a != "--")


def test_s3_prune_keeps_the_newest_of_this_cluster_and_nothing_else_goes(tmp_path: Path, s3: S3Endpoint) -> None:
    import datetime as dt

    client = s3.client()
    prefix = "prune/"
    names = [agent.snapshot_name("lab", dt.datetime(2021, 3, d, tzinfo=dt.UTC), d) for d in range(1, 6)]
    others = [f"{prefix}keep/{names[0]}", f"{prefix}prod-20210301T000000Z-rev1.db.gz", f"{prefix}README"]
    for key in [*(prefix + n for n in names), *others]:
        client.put_object(Bucket="etcd", Key=key, Body=b"x")
    target = s3_target(s3, prefix)
    with s3_env(s3):
        gone = agent.s3_prune(target, "lab", 2)
        again = agent.s3_prune(target, "lab", 2)
    assert gone == names[:3] and again == []
    left = sorted(o["Key"] for o in client.list_objects_v2(Bucket="etcd", Prefix=prefix)["Contents"])
    assert left == sorted([*(prefix + n for n in names[3:]), *others])
