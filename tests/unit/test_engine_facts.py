"""Fact parsers on captured output (including junk), and the batch that gathers them in one command."""

from __future__ import annotations

import os
import shutil
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


# A stand-in systemctl with systemd's behaviour for several units: `show` prints a block per unit in order,
# `is-enabled` prints a line per unit and stops at the first unit it cannot find (exit 1).
FAKE_SYSTEMCTL = r"""#!/bin/bash
declare -A act=([a.service]=active [b.service]=inactive [c.timer]=failed)
declare -A en=([a.service]=enabled [b.service]=disabled [c.timer]=static)
verb=$1; shift; [ "$1" = --property=ActiveState ] && shift; [ "$1" = -- ] && shift
first=1; rc=0
for u in "$@"; do
  case $u in *.*) ;; *) u=$u.service ;; esac
  if [ "$verb" = show ]; then [ $first = 1 ] || echo; first=0; echo "ActiveState=${act[$u]:-inactive}"; continue; fi
  [ -n "${en[$u]}" ] || { echo "Failed to get unit file state for $u: No such file or directory" >&2; exit 1; }
  echo "${en[$u]}"; [ "${en[$u]}" = enabled ] || rc=1
done
exit $rc
"""
# dpkg-query -W: a line per installed or known package (two for a multi-arch one), an error for an unknown name.
FAKE_DPKG_QUERY = r"""#!/bin/bash
declare -A st=([haproxy]="ii " [socat]="ii " [nginx]="rc " [libfoo]="ii ")
shift 2; rc=0
for n in "$@"; do
  [ -n "${st[$n]}" ] || { echo "dpkg-query: no packages found matching $n" >&2; rc=1; continue; }
  printf '%s %s\n' "$n" "${st[$n]}"; [ "$n" = libfoo ] && printf '%s %s\n' "$n" "ii "
done
exit $rc
"""


def test_shared_facts_print_in_a_batch_what_their_own_commands_print(tmp_path) -> None:
    """Facts of one kind share one stat, one sha256sum, one systemctl show/is-enabled, one dpkg-query in a batch:
    each fact's output there is its own command's, byte for byte, for odd file names (a blank, a newline, a
    backslash, quotes, globs), links, folders and missing files, units is-enabled cannot find, unknown packages."""
    files = tmp_path / "files"
    files.mkdir()
    names = ["plain", "with space", "trail ", "back\\slash", "new\nline", "star*", "dollar$x", "q'uote", "[br]", "new"]
    for name in names:
        (files / name).write_text(f"content {name}\n")
    (files / "plain").chmod(0o600)
    (files / "dir").mkdir()
    (files / "link").symlink_to(files / "plain")
    (files / "dangling").symlink_to(files / "nothing")
    paths = [str(files / n) for n in [*names, "dir", "link", "dangling", "missing", "plain"]]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("systemctl", FAKE_SYSTEMCTL), ("dpkg-query", FAKE_DPKG_QUERY)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(script: str) -> tuple[str, int]:
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False, env=env)
        return proc.stdout, proc.returncode

    groups: list[list[Fact[Any]]] = [
        [FileInfo(p) for p in paths],
        [ServiceState(u) for u in ("a", "b.service", "c.timer")],
        [ServiceState(u) for u in ("a", "nope", "c.timer")],  # is-enabled stops at nope: each unit asks alone
        [
            PackagesInstalled(("haproxy", "socat")),
            PackagesInstalled(("nginx",)),
            PackagesInstalled(("libfoo", "haproxy")),
            PackagesInstalled(("missing", "haproxy")),
        ],
    ]
    for facts in groups:
        script, nonce = batch_script(facts)
        assert script.count("2>&1") == 1  # the kind's one shared script
        for fact, (out, rc) in zip(facts, split_batch(run(script)[0], len(facts), nonce), strict=True):
            alone, alone_rc = run(fact.command())
            assert out == alone, fact.key
            assert fact.parse(out, rc) == fact.parse(alone, alone_rc), fact.key


def test_shared_file_facts_run_one_stat_and_one_sha256sum(tmp_path) -> None:
    """What the sharing is for: 20 files, one stat and one sha256sum in the batch (each call logged by a wrapper)."""
    paths = []
    for i in range(20):
        (tmp_path / f"f{i}").write_text(f"{i}\n")
        paths.append(str(tmp_path / f"f{i}"))
    bin_dir, log = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    for tool in ("stat", "sha256sum"):
        real = shutil.which(tool)
        (bin_dir / tool).write_text(f'#!/bin/bash\necho {tool} >> {log}\nexec {real} "$@"\n')
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    facts = [FileInfo(p) for p in paths]
    script, nonce = batch_script(facts)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False, env=env).stdout
    assert [f.parse(*part) for f, part in zip(facts, split_batch(out, len(facts), nonce), strict=True)] == [
        FileInfo(p).parse(*_sh(FileInfo(p).command())) for p in paths
    ]
    assert sorted(log.read_text().split()) == ["sha256sum", "stat"]
