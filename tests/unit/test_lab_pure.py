"""The lab's pure parts: mirror discovery, addresses, the generated inventory, the rootfs recipe hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory.loader import parse_inventory
from provision.lab import LabError, LabSpec, rootfs
from provision.lab.files import hosts_file
from provision.lab.inventory_out import render as inventory
from provision.lab.network import LabNetwork, bridge_indexes, pick_index
from provision.lab.topology import hosts_for, worker_octet

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
"""


def test_mirror_from_deb822_skips_security() -> None:
    assert rootfs.mirror_from_sources([DEB822], []) == "http://deb.debian.org/debian"
    security_first = DEB822.split("\n\n")[1] + "\n\n" + DEB822.split("\n\n", maxsplit=1)[0]
    assert rootfs.mirror_from_sources([security_first], []) == "http://deb.debian.org/debian"


def test_mirror_from_one_line_format() -> None:
    text = "# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\ndeb-src http://x/y bookworm main\n"
    assert rootfs.mirror_from_sources([], [text]) == "http://mirror.example/debian"
    assert (
        rootfs.mirror_from_sources([], ["deb http://security.debian.org/debian-security bookworm-security main"])
        is None
    )


def test_recipe_hash_follows_the_package_list(monkeypatch: pytest.MonkeyPatch) -> None:
    before = rootfs.recipe_hash()
    monkeypatch.setattr(rootfs, "PACKAGES", (*rootfs.PACKAGES, "strace"))
    assert rootfs.recipe_hash() != before


def test_networks_do_not_collide() -> None:
    assert pick_index(set(), "lab") == 0
    assert pick_index({0}, "lab") == 1
    assert pick_index({0, 1, 3}, "other") == 2
    a, b = LabNetwork(0), LabNetwork(7)
    assert str(a.subnet) == "198.18.0.0/24" and str(b.subnet) == "198.18.7.0/24"
    assert str(LabNetwork(255).subnet) == "198.18.255.0/24"
    assert a.bridge != b.bridge and len(f"vb-{b.machine('w139')}") <= 15


def test_addresses_are_unique_for_big_labs() -> None:
    spec = LabSpec(name="x", masters=5, workers=60, lbs=2)
    hosts = hosts_for(spec, LabNetwork(3))
    addresses = [h.address for h in hosts]
    assert len(set(addresses)) == len(addresses)
    assert "198.18.3.100" not in addresses  # the VIP
    assert worker_octet(0) == 21 and worker_octet(19) == 110


@pytest.mark.parametrize(("masters", "workers", "lbs"), [(3, 2, 0), (1, 0, 0), (5, 3, 2)])
def test_generated_inventory_validates(masters: int, workers: int, lbs: int) -> None:
    spec = LabSpec(name="gen", masters=masters, workers=workers, lbs=lbs)
    net = LabNetwork(4)
    text = inventory(spec, hosts_for(spec, net), net, Path("/k/key"), Path("/k/known_hosts"))
    cluster = parse_inventory(text)
    assert len(cluster.masters) == masters and cluster.non_ha == (masters == 1)
    assert str(cluster.control_plane.vip) == "198.18.4.100/24"
    assert "198.18.4.100 lab-vip" in hosts_file(hosts_for(spec, net), net)


@pytest.mark.parametrize("spec", [LabSpec(masters=4), LabSpec(masters=0), LabSpec(name="Bad_Name"), LabSpec(lbs=12)])
def test_bad_specs_are_refused(spec: LabSpec) -> None:
    with pytest.raises(LabError):
        spec.validate()


def test_generated_inventory_is_plain_yaml_one_host_per_line() -> None:
    spec = LabSpec(name="plain", masters=3, workers=2)
    net = LabNetwork(0)
    text = inventory(spec, hosts_for(spec, net), net, Path("/k/key"), Path("/k/known_hosts"))
    assert "&id" not in text and "*id" not in text  # no YAML anchors/aliases
    assert "  - {name: w2, address: 198.18.0.22, roles: [worker]}" in text.splitlines()
    assert "kubernetes: {version: v1.37.2" in text


def test_mirror_from_the_machines_apt_dir(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(LabError, match="no Debian mirror"):
        rootfs.machine_mirror(tmp_path)
    (tmp_path / "sources.list").write_text("deb http://old.example/debian bookworm main\n")
    assert rootfs.machine_mirror(tmp_path) == "http://old.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822.replace("deb.debian.org", "m.example"))
    assert rootfs.machine_mirror(tmp_path) == "http://m.example/debian"  # deb822 first


def test_bridges_on_the_machine_count_as_taken() -> None:
    names = ["lo", "eth0", "kl0", "vb-k0m1", "kl12", "klx", "kl"]
    assert bridge_indexes(names) == {0, 12}
    assert pick_index({0} | bridge_indexes(names), "lab") == 1
