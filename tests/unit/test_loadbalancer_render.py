"""The load balancer's configs, rendered from inventories (validated for real by haproxy -c / keepalived -t on lab
hosts in tests/lab/test_loadbalancer.py)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from inventory.loader import load_inventory, parse_inventory
from roles.loadbalancer import phases, render
from roles.loadbalancer.facts import parse_interface
from roles.state import StateDir

EXAMPLES = Path(__file__).parents[2] / "inventory" / "examples"


def test_colocated_haproxy_fronts_8443_with_every_master() -> None:
    cluster = load_inventory(EXAMPLES / "lab.yaml")
    cfg = render.haproxy_cfg(cluster)
    assert "bind *:8443" in cfg
    assert re.findall(r"^\s+server (\S+) (\S+)", cfg, re.M) == [
        ("m1", "198.18.0.11:6443"),
        ("m2", "198.18.0.12:6443"),
        ("m3", "198.18.0.13:6443"),
    ]
    assert "check-ssl" in cfg and "uri /healthz" in cfg and "inter 500ms fall 2 rise 2" in cfg
    assert "stats socket /run/haproxy/admin.sock" in cfg and "option redispatch" in cfg


def test_dedicated_lbs_serve_6443_and_five_backends() -> None:
    cluster = load_inventory(EXAMPLES / "ha-5-windows.yaml")
    assert [h.name for h in cluster.lb_hosts] == ["lb-1", "lb-2"]
    cfg = render.haproxy_cfg(cluster)
    assert "bind *:6443" in cfg
    assert len(re.findall(r"^\s+server cp-\d ", cfg, re.M)) == 5


def test_keepalived_peers_priorities_and_no_preempt(tmp_path: Path) -> None:
    cluster = load_inventory(EXAMPLES / "lab.yaml")
    state = StateDir(tmp_path)
    confs = {h.name: render.keepalived_conf(cluster, h, "host0", state) for h in cluster.masters}
    for name, conf in confs.items():
        me = str(cluster.host(name).address)
        peers = re.search(r"unicast_peer \{([^}]*)\}", conf)
        assert peers is not None
        assert me not in peers.group(1) and len(peers.group(1).split()) == 2
        assert f"unicast_src_ip {me}" in conf
        assert "nopreempt" in conf and "state BACKUP" in conf and "check_unicast_src" in conf
        assert "advert_int 0.2" in conf and "vrrp_version 3" in conf
        assert "198.18.0.100/24 dev host0" in conf
        assert "track_file" in conf and "weight 0" in conf
        assert "auth_pass" not in conf  # VRRPv3 has no authentication; protection is the unicast peer list
    priorities = [int(re.search(r"priority (\d+)", c).group(1)) for c in confs.values()]  # type: ignore[union-attr]
    assert priorities == sorted(priorities, reverse=True) and len(set(priorities)) == 3


def test_vrrp_v2_gets_a_stable_8_char_password(tmp_path: Path) -> None:
    from dataclasses import replace

    from roles.loadbalancer.defaults import DEFAULTS

    cluster = load_inventory(EXAMPLES / "lab.yaml")
    v2 = replace(DEFAULTS, vrrp_version=2, advert_int=1)
    state = StateDir(tmp_path)
    first = render.keepalived_conf(cluster, cluster.masters[0], "eth0", state, v2)
    second = render.keepalived_conf(cluster, cluster.masters[1], "eth0", state, v2)
    (pw,) = re.findall(r"auth_pass (\S+)", first)
    assert len(pw) == 8 and re.findall(r"auth_pass (\S+)", second) == [pw]


def test_nginx_variant_and_check_script() -> None:
    doc = yaml.safe_load((EXAMPLES / "lab.yaml").read_text())
    doc["control_plane"]["load_balancer"] = "keepalived+nginx"
    cluster = parse_inventory(yaml.safe_dump(doc))
    conf = render.nginx_stream_conf(cluster)
    assert "listen 8443;" in conf and conf.count("max_fails=1") == 3 and "proxy_next_upstream on;" in conf
    script = render.check_script(cluster)
    assert "/dev/tcp/127.0.0.1/8443" in script and "show stat" not in script
    assert "show stat" in render.check_script(load_inventory(EXAMPLES / "lab.yaml"))


def test_external_load_balancer_has_no_phase() -> None:
    doc = yaml.safe_load((EXAMPLES / "lab.yaml").read_text())
    doc["control_plane"] = {"vip": "198.18.0.100/24", "load_balancer": "external", "endpoint": "lb.example:6443"}
    cluster = parse_inventory(yaml.safe_dump(doc))
    assert phases(cluster) == []
    assert cluster.api_endpoint == "lb.example:6443"


# `interface_fact` output captured on a lab host (198.18.1.11), before and while it held the VIP 198.18.1.100
NOT_HOLDER = (
    "2: host0    inet 198.18.1.11/24 brd 198.18.1.255 scope global host0\\"
    "       valid_lft forever preferred_lft forever\n"
    "@@\n"
    "@@\n"
    "198.18.1.100 dev host0 src 198.18.1.11 uid 0 \\    cache \n"
)
HOLDER = (
    "2: host0    inet 198.18.1.11/24 brd 198.18.1.255 scope global host0\\"
    "       valid_lft forever preferred_lft forever\n"
    "@@\n"
    "2: host0    inet 198.18.1.100/24 scope global secondary host0\\       valid_lft forever preferred_lft forever\n"
    "@@\n"
    "local 198.18.1.100 dev lo src 198.18.1.11 uid 0 \\    cache <local> \n"
)


def test_vip_interface_is_the_nic_not_lo_on_the_holder() -> None:
    assert parse_interface(NOT_HOLDER) == "host0"
    assert parse_interface(HOLDER) == "host0"  # the route alone says `dev lo` there
    # the host's address is not local (NAT): the NIC holding the VIP, else the route's, but never lo
    assert parse_interface("@@\n" + HOLDER.split("@@\n", 1)[1]) == "host0"
    assert parse_interface("@@\n@@\n10.0.0.10 via 10.0.0.1 dev ens3 src 10.0.0.11 uid 0\n") == "ens3"
    assert parse_interface("5: bond0.12@bond0    inet 10.0.0.11/24 scope global bond0.12\n@@\n@@\n") == "bond0.12"
    assert parse_interface("@@\n@@\nlocal 10.0.0.10 dev lo src 10.0.0.11\n") is None
    assert parse_interface("garbage") is None and parse_interface("") is None
