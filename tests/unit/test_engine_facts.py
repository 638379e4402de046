"""Fact parsers on captured output (including junk), and the batch that gathers them in one command."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from roles.engine.facts import (
    Fact,
    FileInfo,
    FileState,
    KernelModules,
    OSRelease,
    PackagesInstalled,
    ServiceState,
    Sysctl,
    SysctlValue,
    UnitState,
    batch_script,
    split_batch,
)

SHA = "0f343b0931126a20f133d67c2b018a3b1b0b4c3a2b7e2d6f0e3f3d1c2b1a0f9e"


@pytest.mark.parametrize(
    ("stdout", "rc", "expected"),
    [
        (f"644 root root\n{SHA}  -\n", 0, FileState(0o644, "root", "root", SHA)),
        (f"600 etcd etcd\n{SHA}  -\n", 0, FileState(0o600, "etcd", "etcd", SHA)),
        ("", 1, None),  # missing file
        ("644 root root\n", 0, None),  # truncated output
        ("garbage\x00here and there", 0, None),
        (f"9z9 root root\n{SHA}  -\n", 0, None),  # not an octal mode
    ],
)
def test_file_info(stdout: str, rc: int, expected: FileState | None) -> None:
    assert FileInfo("/etc/x").parse(stdout, rc) == expected


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("ActiveState=active\nUnitFileState=enabled\n", UnitState("active", "enabled")),
        ("ActiveState=inactive\nUnitFileState=disabled\n", UnitState("inactive", "disabled")),
        ("ActiveState=inactive\nUnitFileState=\n", UnitState("inactive", "not-found")),  # unknown unit
        ("", UnitState("unknown", "not-found")),
        ("junk without equals\n", UnitState("unknown", "not-found")),
    ],
)
def test_service_state(stdout: str, expected: UnitState) -> None:
    assert ServiceState("x").parse(stdout, 0) == expected


def test_packages_installed() -> None:
    out = "haproxy ii \ncontainerd ii \nnginx rc \nlibfoo:amd64 ii \n\ngarbage\n"
    fact = PackagesInstalled(("haproxy", "containerd", "nginx", "libfoo"))
    assert fact.parse(out, 1) == frozenset({"haproxy", "containerd", "libfoo"})
    assert fact.parse("", 1) == frozenset()


def test_kernel_modules_only_known_names() -> None:
    fact = KernelModules(("overlay", "br_netfilter"))
    assert fact.parse("overlay\nsomething_else\n", 0) == frozenset({"overlay"})
    assert fact.parse("", 0) == frozenset()


def test_sysctl() -> None:
    fact = Sysctl(("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "kernel.x"))
    out = "net.ipv4.ip_forward rw 1\nnet.bridge.bridge-nf-call-iptables ro 0\nkernel.x ro -\nnoise\n"
    assert fact.parse(out, 0) == {
        "net.ipv4.ip_forward": SysctlValue("1", True),
        "net.bridge.bridge-nf-call-iptables": SysctlValue("0", False),
        "kernel.x": SysctlValue(None, False),
    }
    assert fact.parse("", 0)["net.ipv4.ip_forward"] == SysctlValue(None, False)


def test_os_release() -> None:
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n# comment\nbad line\n'
    assert OSRelease().parse(text, 0) == {
        "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
        "ID": "debian",
        "VERSION_ID": "12",
    }


def test_batch_roundtrip_through_a_real_shell(tmp_path) -> None:
    present = tmp_path / "present"
    present.write_text("hello\n")
    facts: list[Fact[Any]] = [
        FileInfo(str(present)),
        FileInfo(str(tmp_path / "absent")),
        ServiceState("no-such-unit-k"),
    ]
    script, nonce = batch_script(facts)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False).stdout
    parts = split_batch(out, len(facts), nonce)
    first = facts[0].parse(*parts[0])
    assert first is not None and first.sha256 == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert facts[1].parse(*parts[1]) is None
    assert parts[1][1] != 0


def test_batch_output_is_the_same_where_dd_refuses_its_options(tmp_path) -> None:
    """The batch's output goes through dd in one piece; a dd that refuses the options (an old or minimal one) leaves
    it to cat, and the facts read the same."""
    present = tmp_path / "present"
    present.write_text("hello\n")
    facts: list[Fact[Any]] = [FileInfo(str(present)), FileInfo(str(tmp_path / "absent"))]
    script, nonce = batch_script(facts)
    refusing = tmp_path / "bin"
    refusing.mkdir()
    (refusing / "dd").write_text("#!/bin/sh\necho 'dd: unknown operand status=none' >&2\nexit 1\n")
    (refusing / "dd").chmod(0o755)
    env = {**os.environ, "PATH": f"{refusing}:{os.environ['PATH']}"}
    outputs = [
        subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False, env=e)
        for e in (dict(os.environ), env)
    ]
    assert outputs[0].stdout == outputs[1].stdout and outputs[1].stderr == ""
    parts = split_batch(outputs[1].stdout, len(facts), nonce)
    assert parts[0][1] == 0 and parts[1][1] != 0
    assert batch_script([], nonce)[0].startswith("{\n:\n}")  # no facts: still a valid script


def test_split_batch_tolerates_missing_and_foreign_markers() -> None:
    out = "\n@@KF-abc 0@@\nvalue\n@@KR-abc 0 0@@\n\n@@KF-zzz 1@@\nother\n@@KR-zzz 1 0@@\n"
    assert split_batch(out, 2, "abc") == [("value", 0), ("", -1)]
    assert split_batch("total junk", 1, "abc") == [("", -1)]


def _sh(script: str) -> tuple[str, int]:
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    return proc.stdout, proc.returncode


def test_sysctl_fact_through_a_real_shell() -> None:
    fact = Sysctl(("kernel.ostype", "kernel.no_such_key_k"))
    parsed = fact.parse(*_sh(fact.command()))
    assert parsed["kernel.ostype"].value == "Linux"
    assert parsed["kernel.no_such_key_k"] == SysctlValue(None, False)


def test_kernel_modules_fact_through_a_real_shell() -> None:
    fact = KernelModules(("no_such_module_k", "overlay"))
    found = fact.parse(*_sh(fact.command()))
    assert "no_such_module_k" not in found  # never claimed; overlay depends on this kernel
