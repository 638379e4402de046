"""The lab on real hosts: strict SSH, running systemd, a full mesh, kill/start, and a teardown that leaves nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inventory.loader import load_inventory
from provision.lab import Lab, LabError, LabSpec, cgroups, faults, node
from provision.lab.network import link_exists

pytestmark = pytest.mark.lab


def wait_running(lab: Lab, host: str, deadline_s: float = 60) -> str:
    """`is-system-running` says `starting` for a moment after SSH answers; wait for the final word."""
    deadline = time.monotonic() + deadline_s
    state = ""
    while time.monotonic() < deadline:
        state = lab.run(host, "systemctl is-system-running", check=False).stdout.strip()
        if state not in ("starting", "initializing", ""):
            return state
        time.sleep(0.2)
    return state


def cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # it exited meanwhile
        return ""


def test_hosts_run_systemd_and_reach_each_other(lab: Lab) -> None:
    names = [h.name for h in lab.hosts]
    assert names == ["m1", "m2", "m3", "w1", "w2"]
    for host in names:
        assert wait_running(lab, host) == "running", lab.run(host, "systemctl --failed", check=False).stdout
        mesh = lab.run(
            host, "for h in " + " ".join(names) + "; do ping -c1 -W2 -q $h >/dev/null && echo ok || echo FAIL $h; done"
        )
        assert mesh.stdout.split() == ["ok"] * len(names)


def test_ssh_is_strict(lab: Lab, tmp_path: Path) -> None:
    host = lab.hosts[0]
    ok = lab.run(host.name, "hostname")
    assert ok.stdout.strip() == host.name
    # the known_hosts the lab wrote is what makes SSH work: with an empty one, strict checking refuses
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    refused = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config_path), "-o", f"UserKnownHostsFile={empty}", "--", host.name, "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 255
    assert "Host key verification failed" in refused.stderr
    assert "StrictHostKeyChecking yes" in lab.ssh_config_path.read_text()


def test_known_hosts_holds_each_hosts_own_key(lab: Lab) -> None:
    lines = lab.known_hosts_path.read_text().splitlines()
    assert len(lines) == len(lab.hosts)
    for host, line in zip(lab.hosts, lines, strict=True):
        names, kind, key = line.split()
        assert names == f"{host.name},{host.address}" and kind == "ssh-ed25519"
        on_host = lab.run(host.name, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
        assert on_host == key


def test_generated_inventory_validates(lab: Lab) -> None:
    cluster = load_inventory(lab.inventory_path)
    assert [h.name for h in cluster.masters] == ["m1", "m2", "m3"]
    assert str(cluster.control_plane.vip.ip) == lab.vip
    assert cluster.ssh_for(cluster.masters[0]).known_hosts == str(lab.known_hosts_path)


def test_up_again_is_a_no_op_and_a_different_shape_is_refused(lab_factory) -> None:
    lab = lab_factory("t-again", masters=1, workers=0)
    before = lab.known_hosts_path.read_text()
    again = lab_factory("t-again", masters=1, workers=0)
    assert again.known_hosts_path.read_text() == before
    with pytest.raises(LabError, match="already exists"):
        Lab.up(LabSpec(name="t-again", masters=3, workers=0))


def test_kill_then_start_keeps_the_host_key(lab_factory) -> None:
    lab = lab_factory("t-fault", masters=1, workers=1)
    key_before = lab.known_hosts_path.read_text()
    faults.power_off(lab, "w1")
    assert not lab.is_running("w1")
    assert lab.run("w1", "true", check=False, timeout=30).returncode == 255
    faults.power_on(lab, "w1")
    assert lab.run("w1", "hostname").stdout.strip() == "w1"
    assert lab.known_hosts_path.read_text() == key_before
    assert lab.run("m1", "ping -c1 -W2 -q w1", check=False).returncode == 0


def test_down_leaves_nothing_behind(lab_factory) -> None:
    lab = lab_factory("t-down", masters=1, workers=1)
    pids = [lab._launcher_pid(h.name) for h in lab.hosts]
    machines = [lab.net.machine(h.name) for h in lab.hosts]
    root = lab.paths.root
    inventory = lab.inventory_path
    assert all(pids) and link_exists(lab.net.bridge) and inventory.exists()
    # each host's own folder in every cgroup hierarchy (v1 controllers too) and its plain disk folders
    cgroup_dirs = {h.name: lab._cgroup_dirs(h.name) for h in lab.hosts}
    nested = {h.name: list(cgroups.nested_dirs(lab.name, h.name).values()) for h in lab.hosts}
    disks = [lab.paths.host_dir(h.name) / "disk" / p.lstrip("/") for h in lab.hosts for p in node.PLAIN_DIRS]
    for host in lab.hosts:
        assert all(d in cgroup_dirs[host.name] and d.is_dir() for d in nested[host.name])
        assert len(nested[host.name]) == len(cgroups.hierarchies())
    assert all(d.is_dir() for d in disks)
    lab.down()
    lab.down()  # idempotent
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or b"provision.lab.launcher" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
    cmdlines = [cmdline(p) for p in Path("/proc").iterdir() if p.name.isdigit()]
    assert not [c for c in cmdlines if str(root) in c or any(f"-M {m} " in c for m in machines)]
    assert str(root) not in Path("/proc/mounts").read_text()
    leftover = [p for p in Path("/sys/fs/cgroup").glob(f"*/{cgroups.top()}/t-down")] + [
        d for h in lab.hosts for d in cgroup_dirs[h.name] if d.exists() or d.parent.exists()
    ]
    assert leftover == []
    assert not any(d.exists() for d in disks)
    assert not link_exists(lab.net.bridge)
    assert not any(link_exists(f"vb-{m}") for m in machines)
    assert not root.exists()
    assert not inventory.exists()  # it named a key and addresses that are gone
    assert "t-down" not in Lab.names()


@pytest.mark.slow
def test_twenty_hosts(lab_factory) -> None:
    lab = lab_factory("t-twenty", masters=5, workers=15)
    assert len(lab.hosts) == 20
    for host in lab.hosts:
        assert wait_running(lab, host.name) == "running"
    far = lab.hosts[-1]
    assert lab.run("m1", f"ping -c1 -W2 -q {far.name}", check=False).returncode == 0
    lab.down()


def test_cli_up_ssh_kill_start_down(tmp_path: Path) -> None:
    """The commands a user types, end to end; the inventory lands under the current directory by default."""

    def keelson(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "keelson", *args]
        return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)

    try:
        up = keelson("lab", "up", "--masters", "1", "--workers", "1", "--name", "t-cli", "--json")
        assert up.returncode == 0, up.stderr
        info = json.loads(up.stdout.splitlines()[-1])
        assert info["inventory"] == str(tmp_path / "inventory/generated/t-cli.yaml")
        assert [(h["name"], h["role"]) for h in info["hosts"]] == [("m1", "master"), ("w1", "worker")]
        valid = keelson("inventory", "validate", "inventory/generated/t-cli.yaml")
        assert valid.returncode == 0, valid.stderr
        assert keelson("lab", "ssh", "w1", "--name", "t-cli", "--", "hostname; exit 7").returncode == 7
        assert keelson("lab", "kill", "w1", "--name", "t-cli").returncode == 0
        assert keelson("lab", "ssh", "w1", "--name", "t-cli", "--", "true").returncode == 255
        status = json.loads(keelson("lab", "status", "--json").stdout)
        assert "t-cli" in [lab["name"] for lab in status]
        assert keelson("lab", "start", "w1", "--name", "t-cli").returncode == 0
        assert keelson("lab", "ssh", "m1", "--name", "t-cli", "--", "ping -c1 -W2 -q w1").returncode == 0
    finally:
        assert keelson("lab", "down", "--name", "t-cli").returncode == 0
    assert keelson("lab", "down", "--name", "t-cli").returncode == 0  # idempotent
    assert not (tmp_path / "inventory/generated/t-cli.yaml").exists()
