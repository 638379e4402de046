"""Node IPs discovered at run time: the fact's parser on output captured from lab hosts, the one accessor, the
runner's discovery right after Connect, and every role's files rendered from discovered IPs."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from backups.role import render as backup_render
from inventory.loader import parse_inventory
from inventory.model import OS, Cluster, Host
from roles.common import render as common_render
from roles.engine import runner as runner_module
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.events import Event, PhaseStarted
from roles.engine.nodes import NodeIPFact, NodeIPs, NodeIPUnknown, parse_node_ip, parse_windows_node_ip
from roles.engine.phase import Phase, all_hosts
from roles.engine.step import CommandStep
from roles.engine.transport import CommandResult, Transport
from roles.etcd.render import render_config
from roles.loadbalancer import render as lb
from roles.pki.store import etcd_specs
from roles.state import StateDir

VIP = ipaddress.IPv4Interface("198.18.4.100/24")
LAB_TEXT = (Path(__file__).parents[2] / "inventory" / "examples" / "lab.yaml").read_text()

# `ip -j route get 198.18.1.100; echo; echo @@; ip -j addr show` on lab host m1 (198.18.4.11, lab subnet 4)
ROUTE_M1 = (
    '[{"dst":"198.18.1.100","gateway":"198.18.4.1","dev":"host0","prefsrc":"198.18.4.11","flags":[],"uid":0,'
    '"cache":[]}]'
)
ADDRS_M1 = (
    '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue",'
    '"operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00",'
    '"broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,'
    '"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},'
    '{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","noprefixroute":true,'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":2,"link_index":63,'
    '"ifname":"host0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue",'
    '"operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"d6:a9:f7:21:bf:5a",'
    '"broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":0,"addr_info":[{"family":"inet","local":"198.18.4.11",'
    '"prefixlen":24,"broadcast":"198.18.4.255","scope":"global","label":"host0","valid_life_time":4294967295,'
    '"preferred_life_time":4294967295}]}]'
)
# the same host holding the VIP (keepalived adds it as a secondary address): the route is `local` via lo
ROUTE_HOLDER = (
    '[{"type":"local","dst":"198.18.4.100","dev":"lo","prefsrc":"198.18.4.11","flags":[],"uid":0,"cache":["local"]}]'
)
ADDRS_HOLDER = (
    '[{"ifindex":2,"link_index":63,"ifname":"host0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,'
    '"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether",'
    '"address":"d6:a9:f7:21:bf:5a","broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":0,"addr_info":[{"family":"inet",'
    '"local":"198.18.4.11","prefixlen":24,"broadcast":"198.18.4.255","scope":"global","label":"host0",'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet","local":"198.18.4.100",'
    '"prefixlen":24,"scope":"global","secondary":true,"label":"host0","valid_life_time":4294967295,'
    '"preferred_life_time":4294967295}]}]'
)


def out(route: str, addrs: str) -> str:
    return f"{route}\n\n@@\n{addrs}\n"


@pytest.mark.parametrize(
    ("stdout", "want"),
    [
        (out(ROUTE_M1, ADDRS_M1), "198.18.4.11"),
        (out(ROUTE_HOLDER, ADDRS_HOLDER), "198.18.4.11"),  # never the VIP it holds
        (out("", ADDRS_M1), "198.18.4.11"),  # no route (`RTNETLINK answers: Network is unreachable`): addresses
        (out(ROUTE_HOLDER.replace('"prefsrc":"198.18.4.11"', '"prefsrc":"198.18.4.100"'), ADDRS_HOLDER), "198.18.4.11"),
        (out("", ADDRS_HOLDER.replace('"local":"198.18.4.11"', '"local":"10.7.0.3"')), "10.7.0.3"),  # other subnet
        (out("", ADDRS_M1.split(',{"ifindex":2', maxsplit=1)[0] + "]"), None),  # loopback only
        (out("garbage", "more garbage"), None),
        ("", None),
        ("@@\n@@\n[1, 2, {}]", None),
    ],
)
def test_parse_node_ip(stdout: str, want: str | None) -> None:
    assert parse_node_ip(stdout, VIP) == (ipaddress.ip_address(want) if want else None)


def test_windows_parser_and_commands() -> None:
    assert parse_windows_node_ip("fe80::1\r\n10.30.0.31\r\n", VIP) == ipaddress.ip_address("10.30.0.31")
    assert parse_windows_node_ip("Find-NetRoute : not found\r\n", VIP) is None
    assert "Find-NetRoute -RemoteIPAddress '198.18.4.100'" in NodeIPFact(VIP, OS.WINDOWS).command()
    assert NodeIPFact(VIP).command() == "ip -j route get 198.18.4.100; echo; echo @@; ip -j addr show"


# -- the accessor -------------------------------------------------------------------------------------------------


def named(text: str = LAB_TEXT, internal: tuple[str, ...] = ()) -> Cluster:
    """The lab example with every host addressed by DNS name (those in `internal` keep their IP as internal)."""
    data = yaml.safe_load(text)
    for host in data["hosts"]:
        ip = host["address"]
        host["address"] = f"{host['name']}.lab.example"
        if host["name"] in internal:
            host["internal_address"] = ip
    return parse_inventory(yaml.safe_dump(data, sort_keys=False))


def discovered_like(ip_cluster: Cluster, cluster: Cluster) -> NodeIPs:
    nodes = NodeIPs(cluster)
    for host in nodes.to_discover():
        nodes.record(host, ip_cluster.host(host.name).address)  # type: ignore[arg-type]
    return nodes


def test_accessor_order_and_unknown() -> None:
    cluster = named(internal=("m1",))
    nodes = NodeIPs(cluster)
    assert nodes.ip(cluster.host("m1")) == ipaddress.ip_address("198.18.0.11")  # internal_address
    assert [h.name for h in nodes.to_discover()] == ["m2", "m3", "w1", "w2"]
    with pytest.raises(NodeIPUnknown, match="m2: node IP not known") as info:
        nodes.ip(cluster.host("m2"))
    assert "internal_address" in str(info.value.hint)
    nodes.record(cluster.host("m2"), ipaddress.ip_address("198.18.0.12"))
    assert nodes.ip(cluster.host("m2")) == ipaddress.ip_address("198.18.0.12")
    assert nodes.get(cluster.host("m3")) is None


def test_every_role_renders_the_same_files_from_discovered_ips(tmp_path: Path) -> None:
    """A DNS-named inventory whose node IPs the run discovered renders what the IP inventory renders: etcd config,
    member certificates' IPs, haproxy/nginx backends, keepalived peers, the /etc/hosts block, the agent config."""
    by_ip = parse_inventory(LAB_TEXT)
    cluster = named()
    nodes = discovered_like(by_ip, cluster)
    for host in cluster.etcd_members:
        assert render_config(cluster, host, nodes) == render_config(by_ip, by_ip.host(host.name))
        text = backup_render.agent_config_json(cluster, host, nodes=nodes)
        assert text == backup_render.agent_config_json(by_ip, by_ip.host(host.name))
    assert lb.haproxy_cfg(cluster, nodes=nodes) == lb.haproxy_cfg(by_ip)
    assert lb.nginx_stream_conf(cluster, nodes=nodes) == lb.nginx_stream_conf(by_ip)
    state = StateDir(tmp_path)
    m2 = cluster.host("m2")
    assert lb.keepalived_conf(cluster, m2, "host0", state, nodes=nodes) == lb.keepalived_conf(
        by_ip, by_ip.host("m2"), "host0", state
    )
    assert common_render.hosts_block(cluster, nodes) == common_render.hosts_block(by_ip, NodeIPs(by_ip))
    assert [s.ip_addresses for s in etcd_specs(cluster, nodes)] == [s.ip_addresses for s in etcd_specs(by_ip)]
    # the DNS address joins the SANs (etcdctl --endpoints=https://m1.lab.example:2379 verifies too)
    assert "m1.lab.example" in etcd_specs(cluster, nodes)[0].dns_names


def test_without_discovery_a_named_host_is_a_clear_error() -> None:
    with pytest.raises(NodeIPUnknown, match="m1: node IP not known"):
        lb.haproxy_cfg(named())


# -- the runner discovers right after Connect ------------------------------------------------------------------------


class FakeHost:
    """Answers the node-IP fact with canned `ip -j` output; any other script runs nowhere (rc 0, no output)."""

    def __init__(self, name: str, answer: str) -> None:
        self.host = name
        self.answer = answer
        self.commands_run = 0
        self.scripts: list[str] = []

    def run(
        self, script: str, *, timeout: float | None = None, check: bool = False, private: bool = False
    ) -> CommandResult:
        self.commands_run += 1
        self.scripts.append(script)
        return CommandResult(0, self.answer if script.startswith("ip -j route get") else "", "")

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        raise NotImplementedError

    def get(self, path: str) -> bytes:
        raise NotImplementedError

    def send_files(self, files: list[tuple[Path, str]]) -> str:
        raise NotImplementedError

    def close(self) -> None:
        return None


class FakePool:
    hosts: dict[str, FakeHost] = {}  # noqa: RUF012 - set per test

    def __init__(self, cluster: Cluster, **_: Any) -> None:
        self.cluster = cluster
        self.facts_ahead = None  # as the real pool's without logins ahead

    def get(self, host: Host) -> Transport:
        return self.hosts[host.name]

    def drop(self, host: Host) -> None:
        return None

    def listen(self, notice: Any) -> None:  # the fake hosts' keys are never trusted on first use
        return None

    def commands_run(self) -> dict[str, int]:
        return {n: h.commands_run for n, h in self.hosts.items()}

    def close(self) -> None:
        return None


def answer(ip: str) -> str:
    return out(ROUTE_M1.replace("198.18.4.11", ip), ADDRS_M1.replace("198.18.4.11", ip))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeHost]:
    ips = {h.name: str(h.address) for h in parse_inventory(LAB_TEXT).hosts}
    made = {name: FakeHost(name, answer(ip)) for name, ip in ips.items()}
    monkeypatch.setattr(FakePool, "hosts", made)
    monkeypatch.setattr(runner_module, "ConnectionPool", FakePool)
    return made


def echo_ips_plan() -> list[Phase]:
    """One phase whose command names this host's node IP and every peer's (what a config would hold)."""

    def commands(ctx: HostContext, facts: object) -> list[Command]:
        peers = ",".join(str(ctx.nodes.ip(h)) for h in ctx.cluster.hosts)
        return [Command(f"echo {ctx.nodes.ip(ctx.host)} {peers}")]

    return [Phase("Echo", all_hosts, [CommandStep("echo | ips", (), lambda ctx, f: False, commands)])]


def run(cluster: Cluster, events: list[Event], **kw: Any) -> tuple[runner_module.RunReport, RunContext]:
    rc = RunContext(cluster, Path("/nonexistent"), dry_run=True, events=events.append, **kw)
    return runner_module.run_plan(echo_ips_plan(), rc), rc


def test_plan_discovers_node_ips_right_after_connect(fake: dict[str, FakeHost]) -> None:
    events: list[Event] = []
    report, rc = run(named(internal=("m1",)), events)
    assert report.ok, report.hosts
    started = [e.phase for e in events if isinstance(e, PhaseStarted)]
    assert started == ["Connect", "Discover node IPs", "Echo"]
    every = "198.18.0.11,198.18.0.12,198.18.0.13,198.18.0.21,198.18.0.22"
    assert report.changes()["w1"] == [f"Echo: echo 198.18.0.21 {every}"]
    assert {n: str(ip) for n, ip in rc.nodes.discovered().items()} == {
        "m2": "198.18.0.12",
        "m3": "198.18.0.13",
        "w1": "198.18.0.21",
        "w2": "198.18.0.22",
    }
    assert not any(s.startswith("ip -j") for s in fake["m1"].scripts)  # internal_address: nothing to discover


def test_discovery_reaches_hosts_a_hosts_run_leaves_alone(fake: dict[str, FakeHost]) -> None:
    report, _ = run(named(), [], host_names=frozenset({"w1"}))
    assert report.ok and list(report.changes()) == ["w1"]
    assert all(any(s.startswith("ip -j") for s in fake[n].scripts) for n in ("m1", "m2", "m3", "w2"))


def test_ip_inventory_discovers_nothing(fake: dict[str, FakeHost]) -> None:
    events: list[Event] = []
    report, _ = run(parse_inventory(LAB_TEXT), events)
    assert report.ok
    assert "Discover node IPs" not in [e.phase for e in events if isinstance(e, PhaseStarted)]
    assert not any(s.startswith("ip -j") for h in fake.values() for s in h.scripts)


def test_host_without_a_usable_address_stops_the_run(fake: dict[str, FakeHost]) -> None:
    fake["m3"].answer = out("", "[]")
    report, _ = run(named(), [])
    assert not report.ok and report.stopped_after == "Discover node IPs"
    assert report.hosts["m3"].errors == [
        "Discover node IPs: m3: cannot tell its node IP: no route toward the VIP 198.18.0.100 gives a source "
        "address and it has no global address"
    ]
    assert "m3" not in report.changes()  # nothing after discovery ran


def test_discovered_ips_are_checked_by_the_node_ip_rules(fake: dict[str, FakeHost]) -> None:
    fake["w2"].answer = answer("198.18.0.21")  # two names, one machine
    fake["m2"].answer = answer("10.9.0.12")  # outside the VIP's subnet
    report, _ = run(named(), [])
    assert not report.ok and report.stopped_after == "Discover node IPs"
    w2 = report.hosts["w2"].errors[0]
    assert "hosts[4].address: host 'w2' has node IP 198.18.0.21, the node IP of 'w1' (hosts[3]) too" in w2
    assert "with the node IPs discovered from the hosts" in w2
    m2 = report.hosts["m2"].errors[0]
    assert "control_plane.vip: VIP 198.18.0.100/24 is not in the masters' subnet: m2 (10.9.0.12)" in m2
