"""Contract tests of the version-aware etcd command builders (roles/etcd/commands.py): 3.4 vs 3.5+."""

from __future__ import annotations

import shlex

import pytest

from inventory.model import Cluster
from roles.etcd.commands import (
    BACKUP_TLS,
    HEALTHCHECK_TLS,
    EtcdVersion,
    EtcdVersionError,
    TLSPaths,
    client_endpoints,
    cluster_token,
    endpoint_health_cmd,
    etcdctl,
    initial_cluster,
    member_client_url,
    member_peer_url,
    snapshot_restore_cmd,
    snapshot_save_cmd,
    snapshot_status_cmd,
)

ETCD_34_OUTPUT = """etcd Version: 3.4.23
Git SHA: Not provided (use ./build instead of go build)
Go Version: go1.19.8
Go OS/Arch: linux/amd64
"""
ETCD_35_OUTPUT = "etcd Version: 3.5.17\nGit SHA: 507c0de\nGo Version: go1.22.9\nGo OS/Arch: linux/amd64\n"
ETCD_36_OUTPUT = "etcd Version: 3.6.1\nGit SHA: 1a2b3c\nGo Version: go1.24.1\nGo OS/Arch: linux/amd64\n"


def cluster(n: int = 3, **etcd) -> Cluster:
    return Cluster.model_validate(
        {
            "name": "cmdtest",
            "hosts": [{"name": f"m{i}", "address": f"10.1.0.{10 + i}", "roles": ["master"]} for i in range(1, n + 1)],
            "control_plane": {"vip": "10.1.0.100/24"},
            "etcd": etcd,
        }
    )


RESTORE_ARGS = {
    "snapshot": "/var/backups/keelson/etcd/snap.db",
    "name": "m2",
    "initial_cluster": "m1=https://10.1.0.11:2380,m2=https://10.1.0.12:2380,m3=https://10.1.0.13:2380",
    "token": "keelson-cmdtest",
    "peer_url": "https://10.1.0.12:2380",
    "data_dir": "/var/lib/etcd.restored",
}


def flags(argv: list[str]) -> dict[str, str]:
    out = {}
    for i, tok in enumerate(argv):
        if tok.startswith("--") and "=" not in tok and i + 1 < len(argv):
            out[tok] = argv[i + 1]
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ETCD_34_OUTPUT, EtcdVersion(3, 4, 23)),
        (ETCD_35_OUTPUT, EtcdVersion(3, 5, 17)),
        (ETCD_36_OUTPUT, EtcdVersion(3, 6, 1)),
        ("3.5.0", EtcdVersion(3, 5, 0)),
        ("v3.6.2", EtcdVersion(3, 6, 2)),
    ],
)
def test_version_parse(text, expected):
    assert EtcdVersion.parse(text) == expected


@pytest.mark.parametrize("junk", ["", "bash: etcd: command not found", "etcd Version: unknown"])
def test_version_parse_junk_is_a_keelson_error(junk):
    with pytest.raises(EtcdVersionError) as err:
        EtcdVersion.parse(junk)
    assert err.value.hint


def test_version_ordering_and_tool_switch():
    assert EtcdVersion(3, 4, 23) < EtcdVersion(3, 5, 0) < EtcdVersion(3, 6, 0)
    assert not EtcdVersion(3, 4, 99).uses_etcdutl
    assert EtcdVersion(3, 5, 0).uses_etcdutl
    assert EtcdVersion(3, 6, 1).uses_etcdutl


def test_restore_34_is_etcdctl_with_api3_and_all_flags():
    cmd = snapshot_restore_cmd(EtcdVersion.parse(ETCD_34_OUTPUT), **RESTORE_ARGS)
    assert cmd.startswith("ETCDCTL_API=3 etcdctl snapshot restore ")
    argv = shlex.split(cmd)
    assert argv[:5] == ["ETCDCTL_API=3", "etcdctl", "snapshot", "restore", RESTORE_ARGS["snapshot"]]
    assert flags(argv) == {
        "--name": "m2",
        "--initial-cluster": RESTORE_ARGS["initial_cluster"],
        "--initial-cluster-token": "keelson-cmdtest",
        "--initial-advertise-peer-urls": "https://10.1.0.12:2380",
        "--data-dir": "/var/lib/etcd.restored",
    }
    assert "etcdutl" not in cmd


@pytest.mark.parametrize("version", [ETCD_35_OUTPUT, ETCD_36_OUTPUT, "3.5.0"])
def test_restore_35_plus_is_etcdutl_with_the_same_flags(version):
    cmd = snapshot_restore_cmd(version, **RESTORE_ARGS)
    argv = shlex.split(cmd)
    assert argv[:4] == ["etcdutl", "snapshot", "restore", RESTORE_ARGS["snapshot"]]
    assert flags(argv)["--name"] == "m2"
    assert flags(argv)["--initial-cluster"] == RESTORE_ARGS["initial_cluster"]
    assert flags(argv)["--initial-cluster-token"] == "keelson-cmdtest"
    assert flags(argv)["--initial-advertise-peer-urls"] == "https://10.1.0.12:2380"
    assert flags(argv)["--data-dir"] == "/var/lib/etcd.restored"
    assert "etcdctl" not in cmd


def test_status_by_version():
    assert shlex.split(snapshot_status_cmd("3.4.23", "/tmp/s.db")) == [
        "ETCDCTL_API=3",
        "etcdctl",
        "snapshot",
        "status",
        "/tmp/s.db",
        "-w",
        "json",
    ]
    assert shlex.split(snapshot_status_cmd("3.5.9", "/tmp/s.db")) == [
        "etcdutl",
        "snapshot",
        "status",
        "/tmp/s.db",
        "-w",
        "json",
    ]


def test_paths_with_spaces_are_quoted():
    cmd = snapshot_status_cmd("3.4.23", "/tmp/my snap.db")
    assert "'/tmp/my snap.db'" in cmd


def test_etcdctl_carries_api3_endpoints_and_tls():
    tls = TLSPaths(ca="/a/ca.crt", cert="/a/c.crt", key="/a/c.key")
    argv = shlex.split(
        etcdctl(["member", "list", "-w", "json"], endpoints=["https://h1:2379", "https://h2:2379"], tls=tls)
    )
    assert argv == [
        "ETCDCTL_API=3",
        "etcdctl",
        "--endpoints=https://h1:2379,https://h2:2379",
        "--cacert=/a/ca.crt",
        "--cert=/a/c.crt",
        "--key=/a/c.key",
        "member",
        "list",
        "-w",
        "json",
    ]


def test_contract_tls_paths():
    assert (
        TLSPaths(
            ca="/etc/keelson/backup/etcd-ca.crt",
            cert="/etc/keelson/backup/etcd-client.crt",
            key="/etc/keelson/backup/etcd-client.key",
        )
        == BACKUP_TLS
    )
    assert HEALTHCHECK_TLS.ca == "/etc/etcd/pki/ca.crt"


def test_health_cmd_whole_cluster():
    cmd = endpoint_health_cmd(endpoints="https://127.0.0.1:2379", tls=HEALTHCHECK_TLS)
    argv = shlex.split(cmd)
    assert argv[argv.index("health") - 1 :][:3] == ["endpoint", "health", "--cluster"]
    assert "-w" in argv


def test_snapshot_save_takes_one_endpoint():
    cmd = snapshot_save_cmd("/tmp/s.db", endpoint="https://127.0.0.1:2379", tls=BACKUP_TLS)
    assert shlex.split(cmd)[-3:] == ["snapshot", "save", "/tmp/s.db"]
    with pytest.raises(ValueError, match="one endpoint"):
        snapshot_save_cmd("/tmp/s.db", endpoint="https://a:2379,https://b:2379", tls=BACKUP_TLS)


def test_urls_and_initial_cluster():
    c = cluster(3, peer_port=12380, client_port=12379)
    assert initial_cluster(c) == "m1=https://10.1.0.11:12380,m2=https://10.1.0.12:12380,m3=https://10.1.0.13:12380"
    assert member_peer_url(c, c.host("m2")) == "https://10.1.0.12:12380"
    assert member_client_url(c, c.host("m3")) == "https://10.1.0.13:12379"
    assert client_endpoints(c).count("https://") == 3
    assert cluster_token(c) == "keelson-cmdtest"


def test_ipv6_urls_are_bracketed():
    c = Cluster.model_validate(
        {
            "name": "v6",
            "hosts": [{"name": f"m{i}", "address": f"fd00::{i}", "roles": ["master"]} for i in (1, 2, 3)],
            "control_plane": {"vip": "10.0.0.100/24"},
        }
    )
    assert member_peer_url(c, c.host("m1")) == "https://[fd00::1]:2380"


def test_five_members_in_inventory_order():
    c = cluster(5)
    assert [p.split("=")[0] for p in initial_cluster(c).split(",")] == ["m1", "m2", "m3", "m4", "m5"]


def test_role_phases_can_be_built_twice():
    """`roles.pki.phases` / `roles.etcd.phases` stay functions after the role modules are imported."""
    from roles import etcd, pki

    c = cluster(3)
    for _ in range(2):
        titles = [p.title for p in [*pki.phases(c), *etcd.phases(c)]]
        assert titles[0].startswith("PKI | ")
        assert titles[-1].startswith("etcd | ")
