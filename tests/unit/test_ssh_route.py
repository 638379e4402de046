"""How keelson reaches each host: the inventory's ssh settings, the user's ssh config for what they leave unset, and
the jump hosts in between (roles/engine/ssh_route.py), with the config parsed by paramiko's SSHConfig."""

from __future__ import annotations

from pathlib import Path

import pytest
from paramiko import SSHConfig

from inventory.errors import InventoryError
from inventory.loader import parse_inventory
from inventory.model import Cluster
from roles.engine.ssh_route import Endpoint, Route, RouteError, load_config, parse_hop, resolve

BASE = """
name: c1
ssh: {SSH}
hosts:
  - {name: m1, address: 10.0.0.11, roles: [master]}
  - {name: m2, address: 10.0.0.12, roles: [master], ssh: {HOST2}}
  - {name: m3, address: m3.lab, internal_address: 10.0.0.13, roles: [master]}
control_plane: {vip: 10.0.0.100/24}
"""

CONFIG = """
Host m3.lab
    HostName 10.0.0.13
    Port 2203
    User ops
    IdentityFile ~/.ssh/m3_key
    ProxyJump jump

Host jump
    HostName 192.0.2.5
    User gate
    Port 2222
    IdentityFile /keys/jump

Host far
    HostName 192.0.2.9
    ProxyJump jump

Host 10.0.0.*
    User admin
"""


def cluster(ssh: str = "{}", host2: str = "{}") -> Cluster:
    return parse_inventory(BASE.replace("{SSH}", ssh).replace("{HOST2}", host2))


def route(c: Cluster, name: str, config: str | None = CONFIG) -> Route:
    return resolve(c, c.host(name), SSHConfig.from_text(config) if config is not None else None)


def test_no_config_no_bastion_is_direct_as_root() -> None:
    c = cluster()
    assert route(c, "m1", None) == Route(Endpoint("10.0.0.11", 22, "root"))


def test_the_config_fills_what_the_inventory_leaves_unset() -> None:
    c = cluster()
    home = str(Path("~").expanduser())
    r = route(c, "m3")
    assert r.target == Endpoint("10.0.0.13", 2203, "ops", (f"{home}/.ssh/m3_key",))  # alias → HostName, Port, …
    assert r.jumps == (Endpoint("192.0.2.5", 2222, "gate", ("/keys/jump",)),)  # … and its ProxyJump
    assert r.via == "through bastion gate@192.0.2.5:2222"
    assert route(c, "m1").target.user == "admin"  # a `Host 10.0.0.*` block applies to addresses too


def test_the_inventory_wins_over_the_config() -> None:
    c = cluster(ssh="{user: root, key: /inv/key, port: 2022}")
    r = route(c, "m3")
    assert r.target == Endpoint("10.0.0.13", 2022, "root", ("/inv/key",))
    assert r.jumps[0].user == "gate"  # the jump host keeps its own config entry


def test_a_cluster_bastion_serves_every_host_but_itself() -> None:
    c = cluster(ssh="{user: root, key: /inv/key, bastion: {host: 10.0.0.11}}")
    bastion = Endpoint("10.0.0.11", 22, "root", ("/inv/key",))  # the cluster's user and key by default
    assert route(c, "m2", None) == Route(Endpoint("10.0.0.12", 22, "root", ("/inv/key",)), (bastion,))
    assert route(c, "m1", None).jumps == ()  # the bastion is m1 itself: reached directly
    assert route(c, "m3", None).jumps == (bastion,)  # the inventory's bastion, not the config's ProxyJump


def test_a_host_overrides_the_bastion_or_opts_out() -> None:
    c = cluster(ssh="{bastion: {host: 10.0.0.11, user: jumper, port: 2200, key: /k}}", host2="{bastion: none}")
    assert route(c, "m2").jumps == ()
    assert route(c, "m3").jumps == (Endpoint("10.0.0.11", 2200, "jumper", ("/k",)),)
    c2 = cluster(host2="{bastion: {host: jump}}")  # per host only; an alias the config resolves
    assert route(c2, "m2").jumps == (Endpoint("192.0.2.5", 2222, "gate", ("/keys/jump",)),)
    assert route(c2, "m1").jumps == ()


def test_a_bastion_named_by_its_inventory_name_is_its_address() -> None:
    c = cluster(ssh="{bastion: {host: m1}}")
    assert route(c, "m2", None).jumps == (Endpoint("10.0.0.11", 22, "root"),)
    assert route(c, "m1", None).jumps == ()  # itself: direct


def test_cluster_bastion_none_ignores_the_configs_proxyjump() -> None:
    assert route(cluster(ssh="{bastion: none}"), "m3").jumps == ()


def test_jump_chains_from_the_config() -> None:
    config = CONFIG + "\nHost chained\n    HostName 10.9.9.9\n    ProxyJump far,u@10.8.8.8:2022\n"
    c = cluster(host2="{bastion: {host: chained}}")
    r = route(c, "m2", config)
    assert [str(j) for j in r.jumps] == [
        "gate@192.0.2.5:2222",  # far's own ProxyJump first
        "root@192.0.2.9:22",
        "u@10.8.8.8:2022",
        "root@10.9.9.9:22",
    ]
    assert r.via.startswith("through jump hosts gate@192.0.2.5:2222 → ")


def test_a_proxyjump_loop_is_an_error() -> None:
    config = "Host a\n    ProxyJump b\nHost b\n    ProxyJump a\n"
    c = cluster(host2="{bastion: {host: a}}")
    with pytest.raises(RouteError, match="ProxyJump loop"):
        route(c, "m2", config)


@pytest.mark.parametrize(
    ("hop", "parsed"),
    [
        ("jump", (None, "jump", None)),
        ("ops@jump:2222", ("ops", "jump", 2222)),
        ("[2001:db8::1]:22", (None, "2001:db8::1", 22)),
        ("u@10.0.0.1", ("u", "10.0.0.1", None)),
    ],
)
def test_proxyjump_hops(hop: str, parsed: tuple[str | None, str, int | None]) -> None:
    assert parse_hop(hop) == parsed


@pytest.mark.parametrize("hop", ["ssh://jump", "a b", "u@jump:99999", ""])
def test_bad_hops(hop: str) -> None:
    with pytest.raises(RouteError):
        parse_hop(hop)


def test_bad_port_in_the_config() -> None:
    with pytest.raises(RouteError, match="not a TCP port"):
        route(cluster(), "m3", "Host m3.lab\n    Port http\n")


def test_config_file_none_or_missing(tmp_path: Path) -> None:
    assert load_config("none") is None
    assert load_config(str(tmp_path / "absent")) is None
    (tmp_path / "config").write_text(CONFIG)
    loaded = load_config(str(tmp_path / "config"))
    assert loaded is not None and loaded.lookup("jump")["hostname"] == "192.0.2.5"


@pytest.mark.parametrize(
    ("ssh", "field"),
    [
        ("{bastion: {host: 10.0.0.5, typo: 1}}", "ssh.bastion.typo"),
        ("{bastion: {host: -oProxyCommand=x}}", "ssh.bastion.host"),
        ("{bastion: {host: 10.0.0.5, port: 0}}", "ssh.bastion.port"),
        ("{bastion: {host: 10.0.0.5, user: -x}}", "ssh.bastion.user"),
        ("{bastion: maybe}", "ssh.bastion"),
    ],
)
def test_bad_bastions_name_their_line_and_field(ssh: str, field: str) -> None:
    with pytest.raises(InventoryError) as caught:
        cluster(ssh=ssh)
    assert f"<inventory>:3: {field}" in str(caught.value)


def test_relative_paths_are_next_to_the_inventory(tmp_path: Path) -> None:
    from inventory.loader import load_inventory

    (tmp_path / "inv.yaml").write_text(
        BASE.replace("{SSH}", "{config: ssh/config, bastion: {host: 10.0.0.11, key: keys/jump}}").replace(
            "{HOST2}", "{bastion: {host: 10.0.0.12, key: keys/other}}"
        )
    )
    c = load_inventory(tmp_path / "inv.yaml")
    assert c.ssh.config == str(tmp_path / "ssh" / "config")
    assert c.ssh.bastion is not None and c.ssh.bastion != "none" and c.ssh.bastion.key == str(tmp_path / "keys/jump")
    b2 = c.host("m2").ssh.bastion
    assert b2 is not None and b2 != "none" and b2.key == str(tmp_path / "keys/other")


def test_match_exec_is_refused_not_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import paramiko.config

    marker = tmp_path / "ran"
    monkeypatch.setattr(paramiko.config, "invoke", None)  # as in the CLI, which keeps invoke out of the process
    monkeypatch.setattr(paramiko.config, "invoke_import_error", ImportError("invoke is not imported"))
    config = f'Match exec "touch {marker}"\n    User other\n'
    with pytest.raises(RouteError, match="Match exec"):
        route(cluster(), "m1", config)
    assert not marker.exists()
