"""What keelson installs for the backup agent, rendered from the inventory; `keelson backup verify`."""

from __future__ import annotations

import configparser
import gzip
import json
from pathlib import Path

import pytest

from backups import agent
from backups.role import render
from backups.role.defaults import DEFAULTS
from backups.snapshots import SnapshotRejected, verify_snapshot
from inventory.loader import parse_inventory
from inventory.model import Cluster
from tests.backup_helpers import fake_db, write_snapshot

INVENTORY = """
name: bk-unit
ssh: {user: root}
hosts:
  - {name: m1, address: 198.18.0.11, roles: [master]}
  - {name: m2, address: 198.18.0.12, roles: [master]}
  - {name: m3, address: 198.18.0.13, roles: [master]}
  - {name: w1, address: 198.18.0.21, roles: [worker]}
control_plane: {vip: 198.18.0.100/24}
backups:
  schedule: "*:0/15"
  retention: 5
  targets:
    - kind: s3
      bucket: etcd
      prefix: bk-unit/
      endpoint_url: "http://198.18.0.1:9000"
      credentials_env: [BK_KEY, BK_SECRET]
    - {kind: ssh, host: w1, path: /srv/backups, port: 2222}
"""


@pytest.fixture
def cluster() -> Cluster:
    return parse_inventory(INVENTORY)


def test_agent_config_round_trips_into_the_agent(cluster: Cluster) -> None:
    text = render.agent_config_json(cluster, cluster.host("m2"))
    cfg = agent.Config.from_json(json.loads(text))
    assert cfg.cluster == "bk-unit" and cfg.member == "m2" and cfg.retention == 5
    assert cfg.etcd.endpoint == "https://198.18.0.12:2379"
    assert cfg.etcd.endpoints == [f"https://198.18.0.1{i}:2379" for i in (1, 2, 3)]
    s3, ssh = cfg.targets
    assert (s3.kind, s3.bucket, s3.access_key_env, s3.secret_key_env) == ("s3", "etcd", "BK_KEY", "BK_SECRET")
    assert s3.s3_key("x.db.gz") == "bk-unit/x.db.gz"
    assert (ssh.host, ssh.port, ssh.path) == ("198.18.0.21", 2222, "/srv/backups")  # host name → address
    assert s3.id != ssh.id and all(t.id.replace("-", "").isalnum() for t in cfg.targets)


def test_no_secret_in_the_json(cluster: Cluster) -> None:
    env = {"BK_KEY": "AKIAEXAMPLE", "BK_SECRET": "very-secret-value"}
    text = render.agent_config_json(cluster, cluster.host("m1"))
    assert "very-secret-value" not in text and "AKIAEXAMPLE" not in text
    assert render.env_file(cluster, env) == "BK_KEY='AKIAEXAMPLE'\nBK_SECRET='very-secret-value'\n"


def test_missing_credentials_are_named(cluster: Cluster) -> None:
    with pytest.raises(render.BackupConfigError, match="BK_SECRET") as err:
        render.env_file(cluster, {"BK_KEY": "x"})
    assert "BK_KEY" not in err.value.message


def test_units_render_schedule_and_agent(cluster: Cluster) -> None:
    timer = configparser.ConfigParser(interpolation=None)
    timer.read_string(render.timer_unit(cluster))
    assert timer["Timer"]["OnCalendar"] == "*:0/15"
    assert timer["Timer"]["Persistent"] == "true"
    assert int(timer["Timer"]["RandomizedDelaySec"]) <= 60
    service = configparser.ConfigParser(interpolation=None)
    service.read_string(render.service_unit(cluster))
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["EnvironmentFile"] == f"-{DEFAULTS.env_path}"
    assert service["Service"]["ExecStart"].split() == [
        "/usr/bin/python3",
        DEFAULTS.agent_path,
        "--config",
        DEFAULTS.config_path,
        "run",
    ]


def test_known_hosts_lookup_and_line() -> None:
    text = (
        "# comment\n|1|hashed= ssh-ed25519 AAAAhashed\n"
        "w1,198.18.0.21 ssh-rsa AAAArsa\n198.18.0.21 ssh-ed25519 AAAAed\n[198.18.0.22]:2222 ssh-ed25519 AAAAother\n"
    )
    assert render.find_known_host(text, ["w1", "198.18.0.21"]) == "ssh-ed25519 AAAAed"
    assert render.find_known_host(text, ["198.18.0.22"]) == "ssh-ed25519 AAAAother"
    assert render.find_known_host(text, ["nowhere"]) is None
    assert render.KnownHost("198.18.0.21", 2222, "ssh-ed25519 AAAA").line() == "[198.18.0.21]:2222 ssh-ed25519 AAAA\n"


def test_verify_snapshot_accepts_and_refuses(tmp_path: Path) -> None:
    good = verify_snapshot(write_snapshot(tmp_path / "bk-20261123T071500Z-rev12345.db.gz"))
    assert good.revision == 12345 and good.db_size == len(fake_db())
    bad = tmp_path / "bad.db.gz"
    bad.write_bytes(gzip.compress(fake_db())[:-100])
    with pytest.raises(SnapshotRejected, match="truncated") as err:
        verify_snapshot(bad)
    assert err.value.hint and "nothing was changed" in err.value.hint


def test_agent_commands_match_the_etcd_roles_builders(cluster: Cluster) -> None:
    """Contract: the agent cannot import keelson, so its etcdctl argv are checked against roles/etcd/commands.py."""
    import shlex

    from roles.etcd import commands

    cfg = agent.Config.from_json(json.loads(render.agent_config_json(cluster, cluster.host("m1"))))
    argv = cfg.etcd.etcdctl_argv("snapshot", "save", "/x.db")
    ours = [t for t in argv if not t.startswith(("--dial-timeout", "--command-timeout"))]
    theirs = shlex.split(commands.snapshot_save_cmd("/x.db", endpoint=cfg.etcd.endpoint, tls=commands.BACKUP_TLS))
    assert ["ETCDCTL_API=3", *ours] == theirs
    for version, tool in (("3.4.23", "etcdctl"), ("3.5.17", "etcdutl")):
        parsed = commands.EtcdVersion.parse(version)
        cfg = agent.Config.from_json(
            json.loads(render.agent_config_json(cluster, cluster.host("m1"), etcd_version=parsed))
        )
        argv = cfg.etcd.snapshot_status_argv("/x.db")
        assert argv[0] == tool
        assert shlex.split(commands.snapshot_status_cmd(parsed, "/x.db"))[-len(argv) :] == argv
