"""The lab's cgroup discovery on captured /proc files (this machine's hybrid layout, a co-mounted cpu,cpuacct, pure
v2, junk), and the nspawn options each named node adjustment adds."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.lab import cgroups, node, rootfs
from provision.lab.cgroups import Hierarchy, parse_proc_cgroup, parse_v1_mounts, v1_hierarchies

# captured on this machine (hybrid: v1 controllers, name=systemd, cgroup2 at unified with hugetlb only)
PROC_CGROUP = """\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/738b1530133435b9ed94e5ba62d94dd4
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
"""
MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
# a typical systemd hybrid machine: cpu and cpuacct co-mounted, net_cls,net_prio, perf_event, hugetlb as v1
COMOUNTED_CGROUP = """\
12:net_cls,net_prio:/
13:cpuset:/
11:cpu,cpuacct:/user.slice
10:memory:/user.slice/user-0.slice/session-1.scope
9:perf_event:/
8:hugetlb:/
1:name=systemd:/user.slice/user-0.slice/session-1.scope
0::/user.slice/user-0.slice/session-1.scope
"""
COMOUNTED_MOUNTS = """\
30 25 0:26 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
31 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
32 25 0:30 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid - cgroup cgroup rw,net_cls,net_prio
33 25 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory,nsroot=/
37 25 0:34 / /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup rw,cpuset,cpuset_v2_mode,clone_children
34 25 0:32 / /sys/fs/cgroup/perf_event rw,nosuid - cgroup cgroup rw,perf_event
35 25 0:33 / /sys/fs/cgroup/hugetlb rw,nosuid - cgroup cgroup rw,hugetlb
36 25 0:31 /user.slice /mnt/elsewhere rw,nosuid - cgroup cgroup rw,memory
"""


def test_hierarchies_of_this_machine() -> None:
    found = v1_hierarchies(PROC_CGROUP, MOUNTINFO)
    assert [h.name for h in found] == ["blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"]
    memory = next(h for h in found if h.name == "memory")
    assert memory == Hierarchy("memory", Path("/sys/fs/cgroup/memory"), "/process_api/738b1530133435b9ed94e5ba62d94dd4")


def test_comounted_and_optional_controllers() -> None:
    found = {h.name: h for h in v1_hierarchies(COMOUNTED_CGROUP, COMOUNTED_MOUNTS)}
    assert set(found) == {"cpu,cpuacct", "cpuset", "net_cls,net_prio", "memory", "perf_event", "hugetlb"}
    assert found["cpuset"].mountpoint == Path("/sys/fs/cgroup/cpuset")  # mount options beside the controllers
    assert found["cpu,cpuacct"].mountpoint == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert found["cpu,cpuacct"].controllers == {"cpu", "cpuacct"}
    assert found["memory"].mountpoint == Path("/sys/fs/cgroup/memory")  # the first mount of a hierarchy
    assert found["memory"].own == "/user.slice/user-0.slice/session-1.scope"


def test_pure_v2_and_junk_have_no_v1_hierarchies() -> None:
    v2_mounts = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert v1_hierarchies("0::/init.scope\n", v2_mounts) == []
    assert parse_proc_cgroup("0::/init.scope\nnot a line\n7:pids\n") == {"": "/init.scope"}
    assert parse_v1_mounts("garbage\n1 2 3\n - cgroup\n") == []
    # a controller the caller is in but the machine does not mount (or the other way round) is left out
    assert v1_hierarchies("3:rdma:/\n", MOUNTINFO) == []


def test_nested_dirs_sit_under_the_callers_own_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "is_v2_only", lambda: False)
    monkeypatch.setattr(cgroups, "hierarchies", lambda: v1_hierarchies(PROC_CGROUP, MOUNTINFO))
    monkeypatch.setattr(cgroups, "top", lambda: "keelson-lab")
    dirs = cgroups.nested_dirs("lab", "m1")
    assert dirs["cpu"] == Path("/sys/fs/cgroup/cpu/keelson-lab/lab/m1")
    assert dirs["memory"] == Path(
        "/sys/fs/cgroup/memory/process_api/738b1530133435b9ed94e5ba62d94dd4/keelson-lab/lab/m1"
    )
    assert len(dirs) == 8


def test_nspawn_options_name_each_adjustment(tmp_path: Path) -> None:
    dirs = {"cpu": Path("/sys/fs/cgroup/cpu/keelson-lab/lab/m1"), "memory": Path("/cg/memory/x/keelson-lab/lab/m1")}
    options = node.nspawn_options(dirs, tmp_path / "hosts" / "m1")
    assert options == [
        "--bind=/sys/fs/cgroup/cpu/keelson-lab/lab/m1:/run/keelson-lab/cgroup/cpu",
        "--bind=/cg/memory/x/keelson-lab/lab/m1:/run/keelson-lab/cgroup/memory",
        "--capability=all",
        "--drop-capability=CAP_SYS_MODULE,CAP_SYS_TIME",
        "--system-call-filter=@keyring bpf",
        f"--bind={tmp_path}/hosts/m1/disk/var/lib/containerd:/var/lib/containerd",
        f"--bind={tmp_path}/hosts/m1/disk/var/lib/kubelet:/var/lib/kubelet",
    ]


def test_the_node_unit_and_script_are_in_the_rootfs_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shipped = {str(p.relative_to(rootfs.ROOTFS_FILES)) for p in rootfs.rootfs_files()}
    assert shipped == {"etc/systemd/system/keelson-lab-node.service", "usr/local/sbin/keelson-lab-node"}
    assert "keelson-lab-node.service" in rootfs.ENABLED_UNITS
    script = rootfs.ROOTFS_FILES / "usr/local/sbin/keelson-lab-node"
    assert script.stat().st_mode & 0o111  # executable in the rootfs too (the copy keeps the mode)
    calls = [line for line in script.read_text().splitlines() if line and not line.startswith((" ", "#", "}"))]
    assert calls[-4:] == ["fix_cgroup", "fix_kmsg", "fix_mount", "show_kubelet_kernel_settings"]
    # the recipe hash follows the shipped files: a changed script builds a new rootfs
    before = rootfs.recipe_hash()
    copy = tmp_path / "files"
    for f in rootfs.rootfs_files():
        target = copy / f.relative_to(rootfs.ROOTFS_FILES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.read_bytes())
        target.chmod(f.stat().st_mode & 0o777)
    monkeypatch.setattr(rootfs, "ROOTFS_FILES", copy)
    assert rootfs.recipe_hash() == before
    (copy / "usr/local/sbin/keelson-lab-node").write_text("#!/bin/bash\n")
    assert rootfs.recipe_hash() != before


def test_pure_v2_delegates_through_the_labs_own_folders_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On a pure cgroup v2 machine (not this one: simulated folders), the lab's folders pass on what the machine's
    root offers; the root itself is never written."""
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("cpu memory pids\n")
    monkeypatch.setattr(cgroups, "CG", root)

    real_mkdir = Path.mkdir

    def mkdir(self: Path, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        real_mkdir(self, mode, parents, exist_ok)  # and, as the kernel does, the new folder's interface files:
        enabled = (self.parent / "cgroup.subtree_control").read_text().replace("+", "").split()
        (self / "cgroup.controllers").write_text(" ".join(enabled) + "\n")
        (self / "cgroup.subtree_control").write_text("")

    monkeypatch.setattr(Path, "mkdir", mkdir)
    host = root / "keelson-lab" / "lab" / "m1"
    cgroups._make(host, v2_only=True)
    assert (root / "cgroup.subtree_control").read_text() == "cpu memory pids\n"  # untouched
    assert (root / "keelson-lab" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (root / "keelson-lab" / "lab" / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (host / "cgroup.subtree_control").read_text() == ""  # nspawn enables the host's own after moving in


def test_v1_folders_get_cpus_and_the_labs_cpu_weight(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Simulated v1 `cpu` and `cpuset` folders: each new cpuset folder gets its parent's CPUs and memory nodes (the
    kernel leaves them empty), and the lab's own folders weigh LAB_CPU_SHARES, the host's the default."""
    real_mkdir = Path.mkdir

    def mkdir(self: Path, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        real_mkdir(self, mode, parents, exist_ok)
        if "cpuset" in self.parts:
            (self / "cpuset.cpus").write_text("\n")
            (self / "cpuset.mems").write_text("\n")
        else:
            (self / "cpu.shares").write_text("1024\n")

    monkeypatch.setattr(Path, "mkdir", mkdir)
    cpuset, cpu = tmp_path / "cpuset", tmp_path / "cpu"
    cpuset.mkdir()
    (cpuset / "cpuset.cpus").write_text("0-1\n")
    (cpuset / "cpuset.mems").write_text("0\n")
    cpu.mkdir()
    for root in (cpuset, cpu):
        cgroups._make(root / "keelson-lab" / "lab" / "m1", v2_only=False)
    for folder in ("keelson-lab", "keelson-lab/lab", "keelson-lab/lab/m1"):
        assert (cpuset / folder / "cpuset.cpus").read_text() == "0-1\n"
        assert (cpuset / folder / "cpuset.mems").read_text() == "0\n"
    assert (cpu / "keelson-lab" / "cpu.shares").read_text() == str(cgroups.LAB_CPU_SHARES)
    assert (cpu / "keelson-lab" / "lab" / "cpu.shares").read_text() == str(cgroups.LAB_CPU_SHARES)
    assert (cpu / "keelson-lab" / "lab" / "m1" / "cpu.shares").read_text() == "1024\n"
    cgroups._make(cpu / "keelson-lab" / "lab" / "m2", v2_only=False)  # a second host: the lab's folders stay
    assert (cpu / "keelson-lab" / "lab" / "m2" / "cpu.shares").read_text() == "1024\n"
    (cpuset / "keelson-lab" / "lab" / "cpuset.cpus").write_text("\n")  # made by a launcher that died before the CPUs
    cgroups._make(cpuset / "keelson-lab" / "lab" / "m2", v2_only=False)
    assert (cpuset / "keelson-lab" / "lab" / "cpuset.cpus").read_text() == "0-1\n"
    assert (cpuset / "keelson-lab" / "lab" / "m2" / "cpuset.cpus").read_text() == "0-1\n"


def test_labs_under_two_roots_get_different_networks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Registries are per lab root, bridges per machine: allocating makes the bridge under the machine-wide lock, so
    the next root's allocation sees the index taken (two roots' `t-main` once shared 198.18.1.0/24 here)."""
    from provision.lab import network

    bridges: list[str] = []
    monkeypatch.setattr(network, "MACHINE_LOCK", tmp_path / "lock")
    monkeypatch.setattr(network, "links", lambda: list(bridges))
    monkeypatch.setattr(network, "ensure_bridge", lambda net: bridges.append(net.bridge))
    monkeypatch.setenv("KEELSON_LAB_ROOT", str(tmp_path / "a"))
    first = network.allocate("t-main")
    monkeypatch.setenv("KEELSON_LAB_ROOT", str(tmp_path / "b"))
    second = network.allocate("t-main")
    assert first.index != second.index and bridges == [first.bridge, second.bridge]
    assert network.allocate("t-main") == second  # the same lab again: its own network, bridge ensured
