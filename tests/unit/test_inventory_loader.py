"""The inventory loader: examples validate, every user mistake is located by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory.errors import InventoryError
from inventory.loader import load_inventory, parse_inventory
from inventory.model import Role

EXAMPLES = Path(__file__).parents[2] / "inventory" / "examples"
LAB = (EXAMPLES / "lab.yaml").read_text()


@pytest.mark.parametrize("name", ["lab", "ha-3", "ha-5-windows"])
def test_examples_validate(name: str) -> None:
    cluster = load_inventory(EXAMPLES / f"{name}.yaml")
    assert len(cluster.masters) in (3, 5)
    assert len(cluster.etcd_members) % 2 == 1


def test_ha5_windows_shape() -> None:
    cluster = load_inventory(EXAMPLES / "ha-5-windows.yaml")
    assert len(cluster.masters) == 5
    assert [h.name for h in cluster.lb_hosts] == ["lb-1", "lb-2"]
    assert cluster.api_port == 6443  # dedicated load balancers serve the apiserver port itself
    assert sum(1 for h in cluster.workers if h.os.value == "windows") == 2
    assert sum(1 for h in cluster.workers if h.os.value == "linux") == 3


def test_colocated_lb_uses_8443() -> None:
    cluster = load_inventory(EXAMPLES / "lab.yaml")
    assert cluster.api_endpoint == "198.18.0.100:8443"
    assert cluster.lb_hosts == cluster.masters


def _problem(text: str) -> tuple[int | None, str, str]:
    with pytest.raises(InventoryError) as info:
        parse_inventory(text, source="inv.yaml")
    first = info.value.problems[0]
    assert first.file == "inv.yaml"
    return first.line, first.field, first.message


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_four_masters() -> None:
    text = LAB.replace(
        "{name: w1, address: 198.18.0.21, roles: [worker]}",
        "{name: w1, address: 198.18.0.21, roles: [master]}",
    )
    line, field, message = _problem(text)
    assert field == "hosts"
    assert line == text.splitlines().index("hosts:") + 1
    assert "4 masters" in message and "3 or 5" in message


def test_duplicate_address_points_at_second_host() -> None:
    text = LAB.replace("address: 198.18.0.22", "address: 198.18.0.12")
    line, field, message = _problem(text)
    assert field == "hosts[4].address"
    assert line == _line_of(text, "name: w2")
    assert "198.18.0.12" in message and "hosts[1]" in message


def test_vip_outside_subnet() -> None:
    text = LAB.replace("vip: 198.18.0.100/24", "vip: 10.9.0.100/24")
    line, field, message = _problem(text)
    assert field == "control_plane.vip"
    assert line == _line_of(text, "vip:")
    assert "subnet" in message


def test_vip_equal_to_host_address() -> None:
    text = LAB.replace("vip: 198.18.0.100/24", "vip: 198.18.0.12/24")
    _, field, message = _problem(text)
    assert field == "control_plane.vip" and "m2" in message


def test_windows_master() -> None:
    text = LAB.replace(
        "{name: m3, address: 198.18.0.13, roles: [master]}",
        "{name: m3, address: 198.18.0.13, roles: [master], os: windows}",
    )
    line, field, message = _problem(text)
    assert (line, field) == (_line_of(text, "name: m3"), "hosts[2].roles")
    assert "worker" in message


def test_yaml_syntax_error_has_line() -> None:
    text = LAB.replace("  cni: flannel", "  cni: [flannel")
    line, _, message = _problem(text)
    assert line is not None and line >= _line_of(text, "cni: [flannel")
    assert "YAML syntax error" in message


def test_unknown_field_names_it() -> None:
    text = LAB.replace("  retention: 8", "  retension: 8")
    line, field, message = _problem(text)
    assert (line, field) == (_line_of(text, "retension"), "backups.retension")
    assert "unknown field" in message


def test_literal_lists_allowed_values() -> None:
    text = LAB.replace("  cni: flannel", "  cni: weave")
    _, field, message = _problem(text)
    assert field == "network.cni"
    assert "'weave'" in message and "calico" in message


def test_bad_discriminated_target() -> None:
    text = LAB.replace("{kind: ssh, host: w2, path: /var/backups/keelson}", "{kind: ftp, host: w2}")
    line, field, message = _problem(text)
    assert field == "backups.targets[0]" and line == _line_of(text, "kind: ftp")
    assert "'s3'" in message and "'ssh'" in message


def test_missing_required_field() -> None:
    text = LAB.replace("  - {name: w2, address: 198.18.0.22, roles: [worker]}\n", "  - {name: w2, roles: [worker]}\n")
    line, field, message = _problem(text)
    assert field == "hosts[4].address" and "missing" in message
    assert line == _line_of(text, "name: w2")


def test_overlapping_cidrs() -> None:
    text = LAB.replace("service_cidr: 10.96.0.0/12", "service_cidr: 10.244.128.0/20")
    _, field, message = _problem(text)
    assert field == "network.service_cidr" and "overlaps" in message


def test_pod_cidr_containing_hosts() -> None:
    text = LAB.replace("pod_cidr: 10.244.0.0/16", "pod_cidr: 198.18.0.0/16")
    _, field, _ = _problem(text)
    assert field == "network.pod_cidr"


def test_one_master_needs_non_ha() -> None:
    text = "\n".join(line for line in LAB.splitlines() if "name: m2" not in line and "name: m3" not in line)
    _, field, message = _problem(text)
    assert field == "hosts" and "non_ha" in message
    cluster = parse_inventory("non_ha: true\n" + text)
    assert len(cluster.masters) == 1


def test_even_dedicated_etcd() -> None:
    text = LAB.replace("roles: [worker]}", "roles: [worker, etcd]}") + "etcd: {placement: dedicated}\n"
    _, field, message = _problem(text)
    assert field == "etcd.placement" and "odd" in message


def test_every_problem_is_reported() -> None:
    text = LAB.replace("vip: 198.18.0.100/24", "vip: 10.9.0.100/24").replace(
        "address: 198.18.0.22", "address: 198.18.0.12"
    )
    with pytest.raises(InventoryError) as info:
        parse_inventory(text)
    assert {p.field for p in info.value.problems} == {"hosts[4].address", "control_plane.vip"}


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n", "42\n"])
def test_not_a_mapping(text: str) -> None:
    line, _, message = _problem(text)
    assert line == 1 and "mapping" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="file not found"):
        load_inventory(tmp_path / "nope.yaml")


def test_relative_key_resolves_next_to_file(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(LAB.replace("key: /var/lib/keelson/lab/lab/keys/lab_ed25519", "key: keys/id"))
    cluster = load_inventory(tmp_path / "inv.yaml")
    assert cluster.ssh_for(cluster.masters[0]).key == str(tmp_path / "keys" / "id")


def test_views() -> None:
    cluster = parse_inventory(LAB)
    assert [h.name for h in cluster.with_role(Role.WORKER)] == ["w1", "w2"]
    assert cluster.ssh_for(cluster.host("w1")).user == "root"
