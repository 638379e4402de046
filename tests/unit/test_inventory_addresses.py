"""Host addresses from the real world: DNS names, internal addresses, several hosts behind one address.

The model and the offline rules (no network): what is accepted, what is refused with file:line:field, and which
node IP the inventory alone gives each host.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory.errors import InventoryError
from inventory.loader import parse_inventory
from inventory.model import Cluster
from inventory.rules import notes

LAB = yaml.safe_load((Path(__file__).parents[2] / "inventory" / "examples" / "lab.yaml").read_text())


def doc(**host_changes: dict[str, Any]) -> dict[str, Any]:
    """The lab example with some hosts changed: doc(m1={"address": "m1.example"})."""
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(LAB))
    for host in out["hosts"]:
        host.update(host_changes.get(host["name"], {}))
    return out


def load(data: dict[str, Any]) -> Cluster:
    return parse_inventory(yaml.safe_dump(data, sort_keys=False), source="inv.yaml")


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InventoryError) as info:
        load(data)
    assert all(p.file == "inv.yaml" and p.line is not None for p in info.value.problems)
    return [(p.field, p.message) for p in info.value.problems]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("m1.example.com", "m1.example.com"),
        ("M1.Example.COM.", "m1.example.com"),  # DNS is case-insensitive; a trailing dot is the root
        ("node-1", "node-1"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_dns_names_are_addresses(given: str, kept: str) -> None:
    cluster = load(doc(m1={"address": given}))
    assert cluster.host("m1").address == kept
    assert cluster.spec_node_ip(cluster.host("m1")) is None  # discovered from the host at run time


@pytest.mark.parametrize("bad", ["10.0.0.300", "-m1.example", "m1..example", "m1_x.example", "a" * 64 + ".example"])
def test_bad_addresses_are_refused_with_their_line(bad: str) -> None:
    found = problems(doc(m2={"address": bad}))
    assert found == [("hosts[1].address", f"{bad!r} is neither an IP address nor a DNS name")]


@pytest.mark.parametrize("bad", [True, 42])
def test_yaml_scalars_are_no_addresses(bad: object) -> None:
    assert problems(doc(m2={"address": bad})) == [
        ("hosts[1].address", f"{bad!r} is neither an IP address nor a DNS name")
    ]


def test_internal_address_is_the_node_ip() -> None:
    cluster = load(doc(m1={"address": "m1.example", "internal_address": "198.18.0.11"}))
    m1 = cluster.host("m1")
    assert cluster.spec_node_ip(m1) == ipaddress.ip_address("198.18.0.11")
    assert problems(doc(m1={"internal_address": "m1.internal"}))[0][0] == "hosts[0].internal_address"


def test_several_hosts_behind_one_address_on_different_ports() -> None:
    """k0sctl's smoke test shape: one address, one SSH port per host. That address is no host's own: the node IPs
    are discovered (or given as internal_address)."""
    data = doc(
        m1={"address": "203.0.113.7", "ssh": {"port": 2201}},
        m2={"address": "203.0.113.7", "ssh": {"port": 2202}},
        m3={"address": "203.0.113.7", "ssh": {"port": 2203}, "internal_address": "198.18.0.13"},
    )
    cluster = load(data)
    assert [cluster.spec_node_ip(cluster.host(n)) for n in ("m1", "m2")] == [None, None]
    assert cluster.spec_node_ip(cluster.host("m3")) == ipaddress.ip_address("198.18.0.13")
    data["hosts"][1]["ssh"] = {"port": 2201}
    assert problems(data) == [
        (
            "hosts[1].address",
            "duplicate address 203.0.113.7 on SSH port 2201 (also hosts[0]); hosts may share an address only on "
            "different SSH ports",
        )
    ]


def test_default_ssh_port_counts_for_uniqueness() -> None:
    data = doc(m1={"address": "gw.example", "ssh": {"port": 22}}, m2={"address": "gw.example"})
    assert [f for f, _ in problems(data)] == ["hosts[1].address"]
    data["ssh"]["port"] = 2222  # the cluster default applies to m2; m1 keeps 22
    assert load(data).host("m2").address == "gw.example"


def test_internal_addresses_are_unique() -> None:
    found = problems(doc(w1={"internal_address": "198.18.0.50"}, w2={"internal_address": "198.18.0.50"}))
    assert found == [("hosts[4].internal_address", "duplicate internal_address 198.18.0.50 (also hosts[3])")]


def test_an_internal_address_may_not_be_another_hosts_address() -> None:
    found = problems(doc(m2={"address": "m2.example", "internal_address": "198.18.0.11"}))
    assert found[0][0] == "hosts[1].internal_address"
    assert "node IP 198.18.0.11" in found[0][1] and "'m1'" in found[0][1]


def test_vip_subnet_uses_internal_addresses_and_names_what_it_cannot_check() -> None:
    data = doc(
        m1={"address": "m1.example", "internal_address": "10.9.0.11"},
        m2={"address": "m2.example"},
        m3={"address": "m3.example"},
    )
    found = problems(data)
    assert found == [
        (
            "control_plane.vip",
            "VIP 198.18.0.100/24 is not in the masters' subnet: m1 (10.9.0.11) lie outside 198.18.0.0/24; not "
            "checked yet: m2, m3 (node IP discovered at run time)",
        )
    ]
    data["hosts"][0]["internal_address"] = "198.18.0.11"
    cluster = load(data)
    assert notes(cluster) == [
        "node IP discovered from the host at the start of each run (not set in the inventory): m2, m3; the VIP "
        "subnet and unique node IP rules are checked for them then"
    ]


def test_vip_may_not_be_a_node_ip() -> None:
    found = problems(doc(m1={"address": "m1.example", "internal_address": "198.18.0.100"}))
    assert ("control_plane.vip", "VIP 198.18.0.100 is the node IP of host 'm1' (hosts[0])") in found


def test_ip_inventory_needs_no_discovery() -> None:
    cluster = load(doc())
    assert all(cluster.spec_node_ip(h) == h.address for h in cluster.hosts)
    assert notes(cluster) == []
