"""The cgroup version fact on captured output: this machine (hybrid v1), a pure v2 host, a v1 host without the
unified mount, and junk."""

from __future__ import annotations

import subprocess

import pytest

from roles.kubernetes_node.facts import CapabilityBounds, CgroupInfo, CgroupVersion, can_lower_oom_score

# captured with CgroupVersion().command() (stderr dropped, as the batch does)
HYBRID = "root tmpfs\nunified cgroup2fs\n"  # this machine, and every lab host on it
V2 = "root cgroup2fs\n"  # Debian 12 / Ubuntu 22.04+ defaults: no /sys/fs/cgroup/unified
V1_LEGACY = "root tmpfs\n"  # systemd.legacy_systemd_cgroup_controller: no unified mount


@pytest.mark.parametrize(
    ("stdout", "rc", "expected", "label"),
    [
        (HYBRID, 0, CgroupInfo(1, hybrid=True), "v1 (hybrid)"),
        (V2, 0, CgroupInfo(2), "v2"),
        (V1_LEGACY, 0, CgroupInfo(1), "v1"),
        ("root tmpfs\nunified tmpfs\n", 0, CgroupInfo(1), "v1"),  # a unified folder that is not a cgroup2 mount
        ("", 0, CgroupInfo(None), "unknown"),  # no /sys/fs/cgroup at all
        ("root ext2/ext3\n", 0, CgroupInfo(None), "unknown"),
        ("stat: cannot read file system information\n\x00garbage", 1, CgroupInfo(None), "unknown"),
        ("unified cgroup2fs\nroot cgroup2fs extra\n", 0, CgroupInfo(None), "unknown"),  # malformed root line
    ],
)
def test_cgroup_version_parser(stdout: str, rc: int, expected: CgroupInfo, label: str) -> None:
    info = CgroupVersion().parse(stdout, rc)
    assert info == expected
    assert info.label == label


def test_cgroup_version_command_runs_here() -> None:
    """The command itself, on this machine: its output parses to a known layout."""
    out = subprocess.run(["sh", "-c", CgroupVersion().command()], capture_output=True, text=True, check=False)
    assert out.returncode == 0
    info = CgroupVersion().parse(out.stdout, out.returncode)
    real = subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True, check=True)
    assert info.version == {"tmpfs": 1, "cgroup2fs": 2}[real.stdout.strip()]


@pytest.mark.parametrize(
    ("stdout", "rc", "bounds", "lower"),
    [
        ("CapBnd:\t000001fffcfeffff\n", 0, 0x1FFFCFEFFFF, False),  # a lab host here: no CAP_SYS_RESOURCE (24)
        ("CapBnd:\t000001ffffffffff\n", 0, 0x1FFFFFFFFFF, True),  # a real machine's root
        ("CapBnd:\t00000000a80425fb\n", 0, 0xA80425FB, False),  # docker's default set
        ("", 1, None, True),  # unreadable: assume a real machine
        ("CapBnd:\tzz\n", 0, None, True),
        ("garbage", 0, None, True),
    ],
)
def test_capability_bounds(stdout: str, rc: int, bounds: int | None, lower: bool) -> None:
    parsed = CapabilityBounds().parse(stdout, rc)
    assert parsed == bounds
    assert can_lower_oom_score(parsed) is lower
