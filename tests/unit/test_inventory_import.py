"""kubespray (INI and YAML) and k0sctl inventories become keelson inventories that validate, from samples written in
each tool's documented format; what cannot become a cluster is refused with the reason (exit 2)."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from inventory.importers import ImportFailed, import_file, source_format
from inventory.loader import parse_inventory
from inventory.model import OS, Role

SAMPLES = Path(__file__).parent / "samples"
SCRIPT = Path(sys.executable).parent / "keelson"


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# -- kubespray ----------------------------------------------------------------------------------------------------


def test_kubespray_ini_as_the_docs_lay_it_out() -> None:
    result = import_file("kubespray", SAMPLES / "kubespray-inventory.ini")
    cluster = result.cluster
    assert parse_inventory(result.text) == cluster
    assert cluster.name == "prod" and cluster.kubernetes.version == "v1.37.2"
    assert [h.name for h in cluster.masters] == ["node1", "node2", "node3"]
    assert [h.name for h in cluster.workers] == ["node4", "node5"]
    node1 = cluster.host("node1")
    assert (node1.address, node1.internal_address) == (ip("203.0.113.11"), ip("10.3.0.1"))  # ansible_host, ip
    assert cluster.spec_node_ip(node1) == ip("10.3.0.1")
    assert cluster.etcd.placement == "masters"
    assert cluster.api_endpoint == "10.3.0.100:8443"  # loadbalancer_apiserver, a dict literal in [all:vars]
    assert cluster.network.cni == "calico"
    # [all:vars] SSH settings are the cluster's defaults; node5's own port and user stay on node5
    assert (cluster.ssh.user, cluster.ssh.key) == ("ubuntu", "~/.ssh/kubespray")
    assert cluster.ssh_for(cluster.host("node4")).user == "ubuntu"
    assert (cluster.ssh_for(cluster.host("node5")).user, cluster.ssh_for(cluster.host("node5")).port) == ("admin", 2222)
    assert result.notes == []


def test_kubespray_legacy_ini() -> None:
    result = import_file("kubespray", SAMPLES / "kubespray-legacy.ini", vip="10.8.0.100/24")
    cluster = result.cluster
    assert [h.name for h in cluster.masters] == ["cp1", "cp2", "cp3"]  # kube-master, a range cp[1:3]
    assert [h.name for h in cluster.workers] == ["worker-a", "worker-b", "worker-c"]  # kube-node, FQDN names
    assert cluster.host("cp1").address == "cp1"  # no ansible_host: the inventory name is the address
    assert cluster.ssh_for(cluster.host("cp2")).user == "debian"  # host-line vars in a group, [kube-master:vars]
    b, c = cluster.host("worker-b"), cluster.host("worker-c")
    assert (b.address, cluster.ssh_for(b).port, c.address, cluster.ssh_for(c).port) == (
        "gw.example.net", 2201, "gw.example.net", 2202)  # fmt: skip  # name:port, one address
    assert (b.internal_address, c.internal_address) == (ip("10.8.0.22"), ip("10.8.0.23"))  # access_ip
    assert "bastion" not in [h.name for h in cluster.hosts] and "rr1" not in [h.name for h in cluster.hosts]
    assert result.notes == [
        "group calico_rr left out (calico route reflectors are not a keelson role): rr1",
        "group bastion left out (keelson connects to each host directly, with no jump host): bastion",
        "node IP discovered from the host at the start of each run (not set in the inventory): cp1, cp2, cp3; the "
        "VIP subnet and unique node IP rules are checked for them then",
    ]


def test_kubespray_yaml_sample() -> None:
    result = import_file("kubespray", SAMPLES / "kubespray-hosts.yaml")
    cluster = result.cluster
    assert parse_inventory(result.text) == cluster
    assert [h.name for h in cluster.masters] == ["node1", "node2", "node3"]
    node1 = cluster.host("node1")
    assert (node1.address, node1.internal_address) == (ip("95.54.0.12"), ip("10.3.0.1"))
    assert cluster.api_endpoint == "10.3.0.100:8443"
    assert cluster.network.cni == "calico" and str(cluster.network.pod_cidr) == "10.233.64.0/18"
    assert cluster.host("node4").ssh.user == "ubuntu"


def test_kubespray_yaml_with_hosts_only_in_groups_and_dedicated_etcd() -> None:
    cluster = import_file("kubespray", SAMPLES / "kubespray-by-group.yaml").cluster
    assert [h.name for h in cluster.masters] == ["cp1", "cp2", "cp3"]
    assert [h.name for h in cluster.workers] == ["cp3", "node1"]
    assert cluster.etcd.placement == "dedicated"
    assert [h.name for h in cluster.etcd_members] == ["etcd1", "etcd2", "etcd3"]
    assert cluster.host("etcd2").address == "etcd2.example.org"
    assert cluster.spec_node_ip(cluster.host("etcd2")) == ip("10.4.0.32")
    assert cluster.ssh.user == "ubuntu"


def test_kubespray_without_vip_needs_flag(tmp_path: Path) -> None:
    src = (SAMPLES / "kubespray-hosts.yaml").read_text().split("    loadbalancer_apiserver:")[0]
    (tmp_path / "hosts.yaml").write_text(src)
    with pytest.raises(ImportFailed, match="--vip"):
        import_file("kubespray", tmp_path / "hosts.yaml")
    cluster = import_file("kubespray", tmp_path / "hosts.yaml", vip="10.3.0.200/24").cluster
    assert str(cluster.control_plane.vip.ip) == "10.3.0.200"


def test_two_control_plane_hosts_are_refused_with_the_reason() -> None:
    with pytest.raises(ImportFailed) as info:
        import_file("kubespray", SAMPLES / "kubespray-two-masters.ini", vip="10.3.0.100/24")
    assert info.value.exit_code == 2
    assert "cannot become a keelson cluster (1 problem)" in info.value.message
    assert "hosts: 2 masters: the control plane needs 3 or 5" in info.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# nothing yet\n", "no hosts"),
        ("[kube_node]\nnode1\n", "no control-plane host"),
        ("[etcd:children]\nmasters\n", "line 2: group 'masters' is used but never declared"),
        ("[kube_node]\nnode1 ansible_host\n", "line 2: expected key=value after the host name"),
        ("[kube_node:bogus]\n", "line 1: section [kube_node:bogus] has an unknown type 'bogus'"),
    ],
)
def test_ini_that_cannot_be_read_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "inventory.ini").write_text(text)
    with pytest.raises(ImportFailed, match="not a kubespray inventory keelson can read") as info:
        import_file("kubespray", tmp_path / "inventory.ini", vip="10.0.0.100/24")
    assert message in info.value.message and info.value.exit_code == 2


def test_format_by_extension_then_content(tmp_path: Path) -> None:
    ini = (SAMPLES / "kubespray-inventory.ini").read_text()
    assert source_format(Path("hosts"), ini) == "ini"  # `node1 ansible_host=…` lines are no YAML mapping
    assert source_format(Path("hosts"), "[all]\nnode1\n") == "ini"
    assert source_format(Path("hosts"), (SAMPLES / "kubespray-hosts.yaml").read_text()) == "yaml"
    assert source_format(Path("x.yml"), "[all]") == "yaml" and source_format(Path("x.cfg"), "all: {}") == "ini"
    assert source_format(Path("x.yaml"), "", "ini") == "ini"
    (tmp_path / "hosts").write_text(ini)  # no extension: read as INI from its content
    assert import_file("kubespray", tmp_path / "hosts").cluster.name == "prod"


# -- k0sctl -------------------------------------------------------------------------------------------------------


def test_k0sctl_sample_with_a_winrm_host() -> None:
    result = import_file("k0sctl", SAMPLES / "k0sctl.yaml")
    cluster = result.cluster
    assert parse_inventory(result.text) == cluster
    # v1.31.2 in the sample is not a release keelson installs: the imported inventory gets the default
    assert cluster.name == "k0s-prod" and cluster.kubernetes.version == "v1.37.2"
    assert len(cluster.masters) == 3
    win = cluster.host("win-a")
    assert win.os is OS.WINDOWS and win.roles == [Role.WORKER]
    assert cluster.ssh_for(win).port == 22 and cluster.ssh_for(win).user == "Administrator"
    assert str(cluster.control_plane.vip) == "172.16.5.100/24"
    assert any("winRM host: imported as a Windows worker that keelson reaches over OpenSSH" in n for n in result.notes)


def test_k0sctl_lower_case_kind_one_address_many_ports() -> None:
    result = import_file("k0sctl", SAMPLES / "k0sctl-ports.yaml")
    cluster = result.cluster
    assert [h.name for h in cluster.masters] == ["controller-1", "controller-2", "controller-3"]
    assert all(h.roles == [Role.MASTER, Role.WORKER] for h in cluster.masters)  # controller+worker, --enable-worker
    assert [cluster.ssh_for(h).port for h in cluster.masters] == [9022, 9023, 9024]
    assert {h.address for h in cluster.masters} == {ip("127.0.0.1")}
    assert cluster.spec_node_ip(cluster.host("controller-1")) is None  # a shared address: discovered
    assert cluster.spec_node_ip(cluster.host("controller-2")) == ip("10.0.5.12")  # privateAddress
    worker = cluster.host("worker1")  # an openSSH host named after its DNS address's first label
    assert worker.address == "worker1.k0s.example" and cluster.ssh_for(worker).user == "k0s"
    assert cluster.api_endpoint == "10.0.5.100:8443"
    assert cluster.kubernetes.version == "v1.37.2"  # 1.37.2+k0s.0


def test_k0sctl_single() -> None:
    cluster = import_file("k0sctl", SAMPLES / "k0sctl-single.yaml").cluster
    assert cluster.non_ha and [h.name for h in cluster.masters] == ["edge-1"]
    assert cluster.masters[0].roles == [Role.MASTER, Role.WORKER]


def test_k0sctl_config_as_a_second_document() -> None:
    result = import_file("k0sctl", SAMPLES / "k0sctl-multidoc.yaml")
    assert str(result.cluster.control_plane.vip) == "10.20.0.100/24"  # from the ClusterConfig document
    assert [h.name for h in result.cluster.hosts] == ["cp-a", "cp-b", "cp-c", "worker-1"]
    assert result.notes == [
        "document 3 (Namespace) left out: not a k0sctl Cluster",
        "spec.hosts[3]: the bastion is left out: keelson connects to each host directly",
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("role: controller\n      hostname: cp-c", "role: worker\n      hostname: cp-c"),
         "hosts: 2 masters"),
        (lambda t: t.split("  hosts:")[0] + "  hosts: []\n", "no hosts: spec.hosts must be a non-empty list"),
        (lambda t: t.replace("role: worker", "role: manager"), "spec.hosts[3].role 'manager' is not one of"),
        (lambda t: t.replace("kind: Cluster", "kind: Clusters"), "expected apiVersion k0sctl.k0sproject.io/v1beta1"),
    ],
)  # fmt: skip
def test_k0sctl_that_cannot_become_a_cluster_is_refused(tmp_path: Path, edit: object, message: str) -> None:
    text = edit((SAMPLES / "k0sctl-multidoc.yaml").read_text())  # type: ignore[operator]
    (tmp_path / "k0sctl.yaml").write_text(text)
    with pytest.raises(ImportFailed) as info:
        import_file("k0sctl", tmp_path / "k0sctl.yaml")
    assert message in info.value.message and info.value.exit_code == 2


def test_wrong_format_is_refused() -> None:
    with pytest.raises(ImportFailed, match="not a k0sctl inventory"):
        import_file("k0sctl", SAMPLES / "kubespray-hosts.yaml")
    with pytest.raises(ImportFailed, match="not a kubespray inventory"):
        import_file("kubespray", SAMPLES / "k0sctl.yaml")


# -- the CLI as a user runs it ------------------------------------------------------------------------------------


def keelson(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False)


def test_cli_prints_the_notes_and_writes_a_valid_inventory(tmp_path: Path) -> None:
    out = tmp_path / "cluster.yaml"
    proc = keelson("inventory", "import", "k0sctl", str(SAMPLES / "k0sctl.yaml"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "note: spec.hosts[5] (172.16.5.31) is a winRM host" in proc.stderr
    assert "# note: spec.hosts[5]" in out.read_text()
    assert keelson("inventory", "validate", str(out)).returncode == 0


def test_cli_refuses_two_masters_with_exit_2() -> None:
    proc = keelson("inventory", "import", "kubespray", str(SAMPLES / "kubespray-two-masters.ini"), "--vip",
                   "10.3.0.100/24")  # fmt: skip
    assert proc.returncode == 2
    assert "cannot become a keelson cluster" in proc.stderr and "2 masters" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stdout == ""


def test_cli_explicit_format(tmp_path: Path) -> None:
    (tmp_path / "inventory.txt").write_text((SAMPLES / "kubespray-inventory.ini").read_text())
    proc = keelson("inventory", "import", "kubespray", str(tmp_path / "inventory.txt"), "--format", "ini")
    assert proc.returncode == 0, proc.stderr
    assert "name: prod" in proc.stdout
