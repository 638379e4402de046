"""kubespray and k0sctl inventories become keelson inventories that validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory.importers import ImportFailed, import_file
from inventory.loader import parse_inventory
from inventory.model import OS

SAMPLES = Path(__file__).parent / "samples"


def test_kubespray_sample() -> None:
    text, cluster = import_file("kubespray", SAMPLES / "kubespray-hosts.yaml")
    assert parse_inventory(text) == cluster
    assert [h.name for h in cluster.masters] == ["node1", "node2", "node3"]
    assert [h.name for h in cluster.workers] == ["node4", "node5"]
    assert str(cluster.masters[0].address) == "10.3.0.1"  # `ip`, not the public ansible_host
    assert cluster.api_endpoint == "10.3.0.100:8443"
    assert cluster.network.cni == "calico" and str(cluster.network.pod_cidr) == "10.233.64.0/18"
    assert cluster.host("node4").ssh.user == "ubuntu"
    assert cluster.etcd.placement == "masters"


def test_k0sctl_sample() -> None:
    text, cluster = import_file("k0sctl", SAMPLES / "k0sctl.yaml")
    assert parse_inventory(text) == cluster
    assert cluster.name == "k0s-prod" and cluster.kubernetes_version == "1.31.2"
    assert len(cluster.masters) == 3
    win = cluster.host("win-a")
    assert win.os is OS.WINDOWS and [r.value for r in win.roles] == ["worker"]
    assert str(cluster.control_plane.vip) == "172.16.5.100/24"


def test_kubespray_without_vip_needs_flag(tmp_path: Path) -> None:
    src = (SAMPLES / "kubespray-hosts.yaml").read_text().split("    loadbalancer_apiserver:")[0]
    (tmp_path / "hosts.yaml").write_text(src)
    with pytest.raises(ImportFailed, match="--vip"):
        import_file("kubespray", tmp_path / "hosts.yaml")
    _, cluster = import_file("kubespray", tmp_path / "hosts.yaml", vip="10.3.0.200/24")
    assert str(cluster.control_plane.vip.ip) == "10.3.0.200"


def test_wrong_format_is_refused() -> None:
    with pytest.raises(ImportFailed, match="not a k0sctl inventory"):
        import_file("k0sctl", SAMPLES / "kubespray-hosts.yaml")
    with pytest.raises(ImportFailed, match="not a kubespray inventory"):
        import_file("kubespray", SAMPLES / "k0sctl.yaml")
