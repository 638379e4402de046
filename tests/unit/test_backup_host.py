"""What keelson puts on an inventory backup host: account, folder, restricted key (facts in, commands out)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from backups.role import backup_host, render
from backups.role.steps import backup_ssh_key
from inventory.loader import parse_inventory
from inventory.model import Cluster
from roles.engine.context import HostContext
from roles.engine.errors import HostCheckFailed
from roles.engine.facts import FactValues
from roles.state import StateDir

INVENTORY = """
name: bk-host
ssh: {user: root}
hosts:
  - {name: m1, address: 198.18.0.11, roles: [master]}
  - {name: m2, address: 198.18.0.12, roles: [master]}
  - {name: m3, address: 198.18.0.13, roles: [master]}
  - {name: w1, address: 198.18.0.21, roles: [worker]}
  - {name: w2, address: 198.18.0.22, roles: [worker]}
control_plane: {vip: 198.18.0.100/24}
backups:
  targets:
    - {kind: ssh, host: w1}
    - {kind: ssh, host: 198.18.0.22, user: root, path: /srv/etcd}
    - {kind: ssh, host: 10.9.9.9, user: backup}
"""


@pytest.fixture
def cluster() -> Cluster:
    return parse_inventory(INVENTORY)


def ctx(cluster: Cluster, host: str, state: Path) -> HostContext:
    return HostContext(cluster, cluster.host(host), state)


def public_key(state: Path) -> str:
    key: str = backup_ssh_key(StateDir(state), "bk-host")[1]
    return key


def test_defaults_and_which_hosts_are_backup_hosts(cluster: Cluster) -> None:
    w1, w2 = cluster.host("w1"), cluster.host("w2")
    assert [(t.user, t.path) for t in backup_host.targets_on(cluster, w1)] == [
        ("keelson-backup", "/var/backups/keelson")
    ]
    assert [(t.user, t.path) for t in backup_host.targets_on(cluster, w2)] == [("root", "/srv/etcd")]
    assert [h.name for h in backup_host.backup_hosts(cluster)] == ["w1", "w2"]  # 10.9.9.9 is not ours to touch
    ssh_targets = json.loads(render.agent_config_json(cluster, cluster.host("m1")))["targets"]
    assert [t["user"] for t in ssh_targets] == ["keelson-backup", "root", "backup"]


def test_authorized_line_forces_the_receiver_on_the_folder(cluster: Cluster, tmp_path: Path) -> None:
    key = public_key(tmp_path)
    line = backup_host.authorized_line(cluster.backups.targets[0], key)  # type: ignore[arg-type]
    assert line == f'restrict,command="/usr/local/lib/keelson/backup-receiver /var/backups/keelson" {key}'
    assert backup_host.key_blob(key) == key.split()[1] and key.startswith("ssh-ed25519 ")


def test_account_fact_and_step(cluster: Cluster, tmp_path: Path) -> None:
    fact = backup_host.AccountFact("keelson-backup")
    line = "keelson-backup:x:998:998::/var/lib/keelson-backup:/bin/sh\n"
    assert fact.parse(line, 0) == backup_host.Account("/var/lib/keelson-backup", "/bin/sh")
    assert (
        fact.parse("", 2) is None
        and fact.parse("garbage", 0) is None
        and fact.parse(line.replace("keelson-", ""), 0) is None
    )
    step = backup_host.AccountsStep()
    w1 = ctx(cluster, "w1", tmp_path)
    assert [f.key for f in step.facts(w1)] == ["account:keelson-backup"]
    assert step.facts(ctx(cluster, "w2", tmp_path)) == []  # root: nothing to create
    assert step.check(w1, FactValues({fact.key: fact.parse(line, 0)})) == []
    (create,) = step.check(w1, FactValues({fact.key: None}))
    assert "useradd --system" in create.script and "--shell /bin/sh keelson-backup" in create.script
    assert "chmod 0700 /var/lib/keelson-backup" in create.script
    nologin = backup_host.Account("/home/keelson-backup", "/usr/sbin/nologin")
    with pytest.raises(HostCheckFailed, match="nologin"):
        step.check(w1, FactValues({fact.key: nologin}))


def test_folder_step(cluster: Cluster, tmp_path: Path) -> None:
    fact = backup_host.FolderFact("/var/backups/keelson")
    assert fact.parse("keelson-backup 700\n", 0) == ("keelson-backup", "700")
    assert fact.parse("", 1) is None and fact.parse("x", 0) is None
    step, w1 = backup_host.FoldersStep(), ctx(cluster, "w1", tmp_path)
    assert step.check(w1, FactValues({fact.key: ("keelson-backup", "700")})) == []
    for state in (None, ("root", "755"), ("keelson-backup", "755")):
        (fix,) = step.check(w1, FactValues({fact.key: state}))
        assert fix.script == (
            "mkdir -p /var/backups/keelson && chown keelson-backup: /var/backups/keelson && "
            "chmod 0700 /var/backups/keelson"
        )


def test_key_holders_fact_reads_every_accounts_authorized_keys(tmp_path: Path) -> None:
    """The fact's own command, run here with a stand-in `getent` listing homes under tmp_path."""
    key = public_key(tmp_path / "state")
    blob = backup_host.key_blob(key)
    homes = {"root": tmp_path / "root", "keelson-backup": tmp_path / "kb", "alice": tmp_path / "alice"}
    for home in homes.values():
        (home / ".ssh").mkdir(parents=True)
    (homes["root"] / ".ssh" / "authorized_keys").write_text(f"ssh-ed25519 AAAAother op@laptop\n{key}\n")
    restricted = f'restrict,command="/x /y" {key}'
    (homes["keelson-backup"] / ".ssh" / "authorized_keys").write_text(restricted + "\n")
    (homes["alice"] / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAAalice alice@x\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    passwd = (
        "".join(f"{u}:x:0:0::{h}:/bin/sh\\n" for u, h in homes.items()) + "nobody:x:65534:65534::/nonexistent:/x\\n"
    )
    (bin_dir / "getent").write_text(f"#!/bin/sh\nprintf '{passwd}'\n")
    (bin_dir / "getent").chmod(0o755)
    fact = backup_host.KeyHolders(blob)
    proc = subprocess.run(
        ["bash", "-c", fact.command()],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert fact.parse(proc.stdout, proc.returncode) == {("root", key), ("keelson-backup", restricted)}
    assert fact.parse("garbage\nroot\tno key here\n", 0) == frozenset()


def test_authorized_key_step_restricts_and_removes_other_lines(cluster: Cluster, tmp_path: Path) -> None:
    key = public_key(tmp_path)
    blob = backup_host.key_blob(key)
    step, w1 = backup_host.AuthorizedKeyStep(), ctx(cluster, "w1", tmp_path)
    fact = backup_host.KeyHolders(blob)
    assert [f.key for f in step.facts(w1)] == [fact.key]
    wanted = backup_host.authorized_line(cluster.backups.targets[0], key)  # type: ignore[arg-type]
    assert step.check(w1, FactValues({fact.key: frozenset({("keelson-backup", wanted)})})) == []
    # an unrestricted line left by an earlier keelson in root's authorized_keys: removed, the restricted one added
    (fix,) = step.check(w1, FactValues({fact.key: frozenset({("root", key)})}))
    assert "getent passwd root" in fix.script and f"grep -vF -- {blob}" in fix.script
    assert "getent passwd keelson-backup" in fix.script and "restrict,command=" in fix.script
    assert fix.shown() == "authorize keelson's backup key (restricted) for keelson-backup"
    # the restricted line next to a stale unrestricted copy in the same file: both go, the restricted one is re-added
    (fix,) = step.check(w1, FactValues({fact.key: frozenset({("keelson-backup", wanted), ("keelson-backup", key)})}))
    assert fix.script.count("grep -vF") == 1 and fix.script.count(">> ") == 1


def test_backup_host_steps_are_per_host(cluster: Cluster, tmp_path: Path) -> None:
    w2 = ctx(cluster, "w2", tmp_path)
    keys = [f.key for step in backup_host.steps() for f in step.facts(w2)]
    assert "folder:/srv/etcd" in keys and not any("keelson-backup" in k or "/var/backups" in k for k in keys)


def test_a_target_named_by_internal_address_is_that_host() -> None:
    text = INVENTORY.replace(
        "{name: w2, address: 198.18.0.22, roles: [worker]}",
        "{name: w2, address: w2.example.net, internal_address: 198.18.0.22, roles: [worker]}",
    )
    cluster = parse_inventory(text)
    assert [t.path for t in backup_host.targets_on(cluster, cluster.host("w2"))] == ["/srv/etcd"]
