"""Nested containers on a lab host, the way kubelet runs pods: containerd configured by `roles/containerd`, an image
written by keelson's OCI writer (busybox from Debian's busybox-static), imported with `ctr -n k8s.io images import`
and run with `ctr run` — own cgroups, a memory limit the kernel enforces, the systemd cgroup driver, a privileged
host-network container (static pods' shape), and `lab down` with containers running leaves nothing behind.

(Pods through the CRI need crictl, which the artifact build brings: not here yet.)
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from inventory.loader import load_inventory
from provision.artifacts.oci import Directory, File, Image, ImageConfig, Layer, Symlink, write_archive
from provision.lab import Lab, cgroups
from provision.lab.network import link_exists
from roles import common, containerd, validate
from roles.engine.context import RunContext
from roles.engine.runner import run_plan
from roles.kubernetes_node.facts import CapabilityBounds, CgroupVersion, can_lower_oom_score

pytestmark = pytest.mark.lab

IMAGE = "registry.k8s.io/keelson-test/busybox:1.35"
APPLETS = ("sh", "echo", "cat", "dd", "sleep", "ls", "grep", "hostname", "id", "ip", "true")
MIB = 2**20
# what ctr's own spec lacks and the CRI always adds: the container's own cgroups at /sys/fs/cgroup, read-only
CGROUP_MOUNT = "--mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:nodev:noexec"
KUBELET_SETTINGS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's static busybox, from the mirror apt already uses, as an OCI image tarball written by keelson."""
    work = tmp_path_factory.mktemp("busybox")
    download = subprocess.run(
        ["apt-get", "download", "busybox-static"], cwd=work, capture_output=True, text=True, timeout=300, check=False
    )
    assert download.returncode == 0, f"apt-get download busybox-static: {download.stderr}"
    [deb] = work.glob("busybox-static_*.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True, timeout=60)
    busybox = work / "root" / "bin" / "busybox"
    image = Image(
        IMAGE,
        layers=[
            Layer(
                [
                    File("bin/busybox", source=busybox, mode=0o755),
                    *(Symlink(f"bin/{a}", "busybox") for a in APPLETS),
                    Directory("tmp", mode=0o1777),
                ]
            )
        ],
        config=ImageConfig(cmd=("sh",), labels={"org.opencontainers.image.source": "debian busybox-static"}),
    )
    out = work / "busybox.tar"
    write_archive([image], out)
    return out


@pytest.fixture(scope="module")
def plab(lab_factory, busybox_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """One lab host with containerd as `roles/containerd` configures it, and the image imported."""
    lab: Lab = lab_factory("t-pods", masters=1, workers=0)
    cluster = load_inventory(lab.inventory_path)
    plan = [*validate.phases(cluster), *common.phases(cluster), *containerd.phases(cluster)]
    report = run_plan(plan, RunContext(cluster, tmp_path_factory.mktemp("pods-state")))
    assert report.ok, {h: s.errors for h, s in report.hosts.items()}
    copy = subprocess.run(
        ["scp", "-q", "-F", str(lab.ssh_config_path), str(busybox_tar), "m1:/root/busybox.tar"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert copy.returncode == 0, copy.stderr
    return lab


def sh(lab: Lab, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return lab.run("m1", command, check=False, timeout=timeout)


def machine_v1_names() -> list[str]:
    return [h.name for h in cgroups.hierarchies()]


def test_the_host_has_what_nested_containers_need(plab: Lab) -> None:
    machine_settings = {k: Path("/proc/sys", k).read_text().strip() for k in KUBELET_SETTINGS}
    names = machine_v1_names()
    probe = " ; ".join(
        f"mkdir /sys/fs/cgroup/{c}/keelson-probe && rmdir /sys/fs/cgroup/{c}/keelson-probe && echo {c} writable"
        for c in names
    )
    out = sh(plab, probe)
    assert out.stdout.split("\n")[:-1] == [f"{c} writable" for c in names], out.stderr
    assert sh(plab, "readlink /dev/kmsg").stdout.strip() == "/dev/console"
    assert sh(plab, "findmnt -no PROPAGATION /").stdout.strip() == "shared"
    machine_fs = subprocess.run(
        ["stat", "-fc", "%T", str(plab.paths.host_dir("m1"))], capture_output=True, text=True, check=True
    ).stdout.strip()
    for path in ("/var/lib/containerd", "/var/lib/kubelet"):
        fs = sh(plab, f"stat -fc %T {path}").stdout.strip()
        assert fs == machine_fs and fs != "overlayfs", f"{path} is on {fs}"
    shown = sh(plab, "cd /proc/sys && cat " + " ".join(KUBELET_SETTINGS)).stdout.split()
    assert shown == list(KUBELET_SETTINGS.values())
    # … while the machine keeps its own values, and the host cannot change them
    assert sh(plab, "echo 0 > /proc/sys/kernel/panic").returncode != 0
    assert {k: Path("/proc/sys", k).read_text().strip() for k in KUBELET_SETTINGS} == machine_settings
    caps = sh(plab, "grep CapBnd /proc/1/status").stdout.split()[1]
    assert int(caps, 16) & (1 << 21)  # CAP_SYS_ADMIN
    # the cgroup version fact reads the host as the machine is (a lab host has the machine's layout)
    fact = CgroupVersion()
    on_host = fact.parse(sh(plab, fact.command()).stdout, 0)
    here = subprocess.run(["sh", "-c", fact.command()], capture_output=True, text=True, check=False)
    assert on_host == fact.parse(here.stdout, 0) and on_host.version in (1, 2)
    # root here may lower an oom_score_adj (as kubelet asks for pod sandboxes) only if the machine can give it
    # CAP_SYS_RESOURCE; the fact says which, and containerd's CRI must restrict oom_score_adj when it cannot
    bounds = CapabilityBounds()
    host_can = can_lower_oom_score(bounds.parse(sh(plab, bounds.command()).stdout, 0))
    ours = subprocess.run(["grep", "-m1", "^CapBnd:", "/proc/self/status"], capture_output=True, text=True, check=True)
    machine_can = can_lower_oom_score(bounds.parse(ours.stdout, 0))  # what the lab's launcher can pass on
    assert host_can == machine_can
    assert (sh(plab, "echo -998 > /proc/self/oom_score_adj").returncode == 0) == host_can
    ok = sh(plab, "systemctl is-system-running --wait; systemctl --failed --no-legend")
    assert ok.stdout.split("\n")[0] == "running", ok.stdout


def test_keelson_image_imports_and_runs(plab: Lab) -> None:
    imported = sh(plab, "ctr -n k8s.io images import /root/busybox.tar && ctr -n k8s.io images ls -q")
    assert imported.returncode == 0, imported.stderr
    assert IMAGE in imported.stdout.split()
    ran = sh(plab, f"ctr -n k8s.io run --rm {IMAGE} hello sh -c 'echo nested-ok; id -u'")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["nested-ok", "0"]


def cgroup_lines(text: str) -> dict[str, str]:
    return dict(line.split(":", 2)[1:] for line in text.splitlines() if line.count(":") >= 2)


@pytest.mark.parametrize("driver", ["cgroupfs", "systemd"])
def test_nested_container_gets_its_own_cgroups_and_memory_limit(plab: Lab, driver: str) -> None:
    sh(plab, f"ctr -n k8s.io images ls -q | grep -qx {IMAGE} || ctr -n k8s.io images import /root/busybox.tar")
    cid = f"limit-{driver}"
    flags = f"--runc-systemd-cgroup --cgroup system.slice:keelson:{cid}" if driver == "systemd" else ""
    expected_path = f"/system.slice/keelson-{cid}.scope" if driver == "systemd" else f"/k8s.io/{cid}"
    limit = 64 * MIB
    started = sh(plab, f"ctr -n k8s.io run -d {flags} --memory-limit {limit} {CGROUP_MOUNT} {IMAGE} {cid} sleep 6087")
    assert started.returncode == 0, started.stderr
    try:
        own = cgroup_lines(sh(plab, f"ctr -n k8s.io task exec --exec-id c {cid} cat /proc/self/cgroup").stdout)
        for name in machine_v1_names():
            assert own.get(name) == expected_path, own
        inside = sh(plab, f"ctr -n k8s.io task exec --exec-id l {cid} cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
        assert inside.stdout.strip() == str(limit), inside.stderr
        # the kernel's own view, from the machine: the limit sits in the host's memory cgroup, below the lab's
        memory = cgroups.nested_dirs(plab.name, "m1")["memory"]
        assert (memory / expected_path.lstrip("/") / "memory.limit_in_bytes").read_text().strip() == str(limit)
        # and it is enforced: touching 100 MiB in a 64 MiB container gets it OOM-killed
        big = sh(plab, f"ctr -n k8s.io task exec --exec-id d {cid} dd if=/dev/zero of=/dev/null bs=100M count=1")
        assert big.returncode == 137, (big.returncode, big.stderr)
        small = sh(plab, f"ctr -n k8s.io task exec --exec-id s {cid} dd if=/dev/zero of=/dev/null bs=16M count=1")
        assert small.returncode == 0, small.stderr
    finally:
        sh(
            plab,
            f"ctr -n k8s.io task kill -s KILL {cid}; sleep 0.2; ctr -n k8s.io task rm -f {cid}; "
            f"ctr -n k8s.io container rm {cid}",
        )


def test_privileged_host_network_container(plab: Lab) -> None:
    """The shape of a static pod (host network) and of kube-proxy or a CNI daemon (privileged)."""
    sh(plab, f"ctr -n k8s.io images ls -q | grep -qx {IMAGE} || ctr -n k8s.io images import /root/busybox.tar")
    script = "hostname; ip -o link show host0 >/dev/null && echo host0; grep CapEff /proc/self/status"
    ran = sh(plab, f"ctr -n k8s.io run --rm --privileged --net-host {IMAGE} priv sh -c {shlex.quote(script)}")
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.split("\n")
    assert lines[:2] == ["m1", "host0"]
    host_caps = sh(plab, "grep CapEff /proc/1/status").stdout.split()[1]
    assert lines[2].split()[1] == host_caps  # privileged: everything the lab host has


def test_container_adding_capabilities(plab: Lab) -> None:
    """A pod may ask for capabilities beyond the default set (databases: IPC_LOCK; eBPF CNIs: BPF); runc can only
    grant what the lab host has (`--capability=all`)."""
    sh(plab, f"ctr -n k8s.io images ls -q | grep -qx {IMAGE} || ctr -n k8s.io images import /root/busybox.tar")
    ran = sh(
        plab, f"ctr -n k8s.io run --rm --cap-add CAP_IPC_LOCK --cap-add CAP_BPF {IMAGE} caps grep CapEff /proc/1/status"
    )
    assert ran.returncode == 0, ran.stderr
    caps = int(ran.stdout.split()[1], 16)
    assert caps & (1 << 14) and caps & (1 << 39)  # CAP_IPC_LOCK, CAP_BPF


def test_down_with_nested_containers_running_leaves_nothing(plab: Lab) -> None:
    sh(plab, f"ctr -n k8s.io images ls -q | grep -qx {IMAGE} || ctr -n k8s.io images import /root/busybox.tar")
    for cid, flags in (("left-fs", ""), ("left-sd", "--runc-systemd-cgroup --cgroup system.slice:keelson:left-sd")):
        started = sh(plab, f"ctr -n k8s.io run -d {flags} {IMAGE} {cid} sleep 6087")
        assert started.returncode == 0, started.stderr
    dirs = plab._cgroup_dirs("m1")
    memory = cgroups.nested_dirs(plab.name, "m1")["memory"]
    assert (memory / "k8s.io" / "left-fs").is_dir() and (memory / "system.slice" / "keelson-left-sd.scope").is_dir()
    disk = plab.paths.host_dir("m1") / "disk"
    assert any((disk / "var/lib/containerd").iterdir())
    root = plab.paths.root
    plab.down()
    assert [d for d in dirs if d.exists()] == []
    assert not [d for d in cgroups.nested_dirs(plab.name, "m1").values() if d.parent.exists()]
    assert not disk.exists() and not root.exists()
    assert str(root) not in Path("/proc/mounts").read_text()
    leftover = subprocess.run(["pgrep", "-f", "sleep 6087"], capture_output=True, text=True, check=False)
    assert leftover.stdout == "", "a nested container outlived its host"
    assert not link_exists(plab.net.bridge)
