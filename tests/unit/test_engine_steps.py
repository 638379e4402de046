"""Steps yield commands only when facts differ (data-driven, pyinfra style), and commands never show secrets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from inventory.loader import parse_inventory
from roles.common.steps import HostsBlockStep, SysctlStep
from roles.engine.command import Command, FileWrite, sha256_hex
from roles.engine.context import HostContext
from roles.engine.facts import (
    FactValues,
    FileInfo,
    FileState,
    FileText,
    PackagesInstalled,
    ServiceState,
    Sysctl,
    SysctlValue,
    UnitState,
)
from roles.engine.runner import failed_command, host_script
from roles.engine.step import FileStep, PackagesStep, ServiceStep, reload, restart

LAB = (Path(__file__).parents[2] / "inventory" / "examples" / "lab.yaml").read_text()
CLUSTER = parse_inventory(LAB)
CTX = HostContext(CLUSTER, CLUSTER.masters[0], Path("/tmp/state"))


def facts(**values: object) -> FactValues:
    return FactValues(values)


def test_file_step_cases() -> None:
    step = FileStep("/etc/x.conf", "a=1\n", mode=0o640)
    same = FileState(0o640, "root", "root", sha256_hex(b"a=1\n"))
    assert step.check(CTX, facts(**{"file:/etc/x.conf": same})) == []
    wrong_mode = FileState(0o644, "root", "root", same.sha256)
    assert [c.script for c in step.check(CTX, facts(**{"file:/etc/x.conf": wrong_mode}))] == [
        "chown root:root /etc/x.conf && chmod 0640 /etc/x.conf"
    ]
    changed = step.check(CTX, facts(**{"file:/etc/x.conf": FileState(0o640, "root", "root", "0" * 64)}))
    assert len(changed) == 1 and "write /etc/x.conf" in changed[0].shown()
    assert len(step.check(CTX, facts(**{"file:/etc/x.conf": None}))) == 1


def test_service_step_cases() -> None:
    step = ServiceStep("haproxy")
    assert step.check(CTX, facts(**{"service:haproxy": UnitState("active", "enabled")})) == []
    assert [c.script for c in step.check(CTX, facts(**{"service:haproxy": UnitState("inactive", "disabled")}))] == [
        "systemctl enable --no-reload haproxy",
        "systemctl start haproxy",
    ]


def test_handlers_act_only_on_a_unit_that_was_running() -> None:
    running = facts(**{"service:nginx": UnitState("active", "enabled")})
    started_now = facts(**{"service:nginx": UnitState("inactive", "disabled")})  # this phase starts it: config fresh
    checked = reload("nginx", check="nginx -t -q")
    assert [c.script for c in checked.commands(CTX, running)] == ["nginx -t -q && systemctl reload-or-restart nginx"]
    assert checked.commands(CTX, started_now) == []
    assert [c.script for c in restart("nginx").commands(CTX, running)] == ["systemctl restart nginx"]
    assert restart("nginx").commands(CTX, started_now) == []
    assert [c.script for c in reload("haproxy").commands(CTX, facts())] == ["systemctl reload-or-restart haproxy"]


def test_packages_step_installs_only_missing() -> None:
    step = PackagesStep(("haproxy", "keepalived"))
    key = PackagesInstalled(("haproxy", "keepalived")).key
    assert step.check(CTX, facts(**{key: frozenset({"haproxy", "keepalived"})})) == []
    (cmd,) = step.check(CTX, facts(**{key: frozenset({"haproxy"})}))
    assert cmd.script.endswith("--no-install-recommends keepalived")


def test_sysctl_step_fixes_writable_and_warns_read_only() -> None:
    step = SysctlStep({"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"})
    key = Sysctl(("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables")).key
    f = facts(
        **{
            key: {
                "net.ipv4.ip_forward": SysctlValue("0", True),
                "net.bridge.bridge-nf-call-iptables": SysctlValue("0", False),
            }
        }
    )
    assert [c.script for c in step.check(CTX, f)] == ["sysctl -q -w net.ipv4.ip_forward=1"]
    assert "read-only" in step.warnings(CTX, f)[0]
    ok = facts(
        **{
            key: {
                "net.ipv4.ip_forward": SysctlValue("1", True),
                "net.bridge.bridge-nf-call-iptables": SysctlValue("1", True),
            }
        }
    )
    assert step.check(CTX, ok) == [] and step.warnings(CTX, ok) == []


def test_hosts_block_keeps_the_rest_of_the_file() -> None:
    step = HostsBlockStep()
    original = "127.0.0.1 localhost\n10.0.0.1 other\n"
    (cmd,) = step.check(CTX, facts(**{FileText("/etc/hosts").key: original}))
    wanted = step.desired(CTX, original)
    assert wanted.startswith(original) and "198.18.0.11 m1" in wanted
    assert step.check(CTX, facts(**{FileText("/etc/hosts").key: wanted})) == []
    edited = wanted.replace("198.18.0.11 m1", "198.18.0.99 m1")
    assert step.desired(CTX, edited) == wanted  # the block is rewritten, not appended twice
    assert cmd.summary_only


def test_secrets_are_masked() -> None:
    command = Command("curl -u admin:hunter2 https://x", secrets=("hunter2",))
    assert "hunter2" not in command.redacted() and "***" in command.redacted()
    secret_file = FileWrite("/etc/k.key", b"-----BEGIN PRIVATE KEY-----abc", mode=0o600, secret=True).to_command()
    assert "PRIVATE" not in secret_file.shown() and "secret" in secret_file.shown()


def test_file_write_runs_and_validates(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.conf"
    ok = FileWrite(str(target), b"x=1\n", mode=0o600, owner="root", group="root", validate="grep -q x= %s").to_command()
    subprocess.run(["bash", "-c", ok.script], check=True)
    assert target.read_bytes() == b"x=1\n" and oct(target.stat().st_mode & 0o777) == "0o600"
    bad = FileWrite(str(target), b"nope\n", validate="grep -q x= %s").to_command()
    proc = subprocess.run(["bash", "-c", bad.script], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "validation failed" in proc.stderr
    assert target.read_bytes() == b"x=1\n"  # a file that fails validation never replaces the good one
    assert [p.name for p in target.parent.iterdir()] == ["f.conf"]  # no temp file left


def test_host_script_names_the_failing_command() -> None:
    commands = [
        Command("echo one"),
        Command("echo secret-token >&2; exit 3", secrets=("secret-token",)),
        Command("echo never"),
    ]
    script = host_script(commands, "n1")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 3
    command, output = failed_command(proc.stdout, commands, "n1")
    assert command is commands[1]
    assert "secret-token" not in output and "***" in output
    assert "never" not in proc.stdout


def test_host_script_keeps_a_commands_own_set_e(tmp_path: Path) -> None:
    """A command that says `set -e` stops at its first failed line inside the host script too (bash ignores set -e
    on the left of `||`, the runner's old wrapping): the line after it never runs and the script fails there."""
    after = tmp_path / "after"
    commands = [Command(f"set -e\nfalse\ntouch {after}"), Command("echo never")]
    script = host_script(commands, "n2")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and not after.exists(), proc.stdout
    command, _ = failed_command(proc.stdout, commands, "n2")
    assert command is commands[0] and "never" not in proc.stdout


@pytest.mark.parametrize("key", [FileInfo("/a").key, ServiceState("u").key])
def test_missing_fact_is_a_programming_error(key: str) -> None:
    with pytest.raises(KeyError, match="was not gathered"):
        FileStep("/a", "x").check(CTX, facts()) if key.startswith("file") else ServiceStep("u").check(CTX, facts())


FSTAB = """# /etc/fstab
UUID=1 / ext4 errors=remount-ro 0 1
UUID=2 none swap sw 0 0
/swapfile none swap
# UUID=3 none swap sw 0 0
"""


def test_swap_fact_and_fix_agree_on_fstab(tmp_path: Path) -> None:
    """The fix comments out exactly the lines the fact counts, so a rerun sees 0 (no endless change)."""
    from roles.common.facts import SWAP
    from roles.common.steps import _swap_off

    fstab = tmp_path / "fstab"
    fstab.write_text(FSTAB)
    swaps = tmp_path / "swaps"
    swaps.write_text("Filename\tType\tSize\tUsed\tPriority\n")

    def fact() -> tuple[str, int]:
        script = SWAP.command().replace("/etc/fstab", str(fstab)).replace("/proc/swaps", str(swaps))
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
        return proc.stdout, proc.returncode

    assert fact()[0].split() == ["0", "2"]
    (fix,) = _swap_off(CTX, facts(**{SWAP.key: fact()}))
    subprocess.run(["bash", "-c", fix.script.replace("/etc/fstab", str(fstab))], check=True)
    assert fact()[0].split() == ["0", "0"]
    assert _swap_off(CTX, facts(**{SWAP.key: fact()})) == []
    assert "UUID=1 / ext4" in fstab.read_text() and fstab.read_text().count("# keelson: swap off") == 2


def test_modules_in_a_container_warn_instead_of_modprobe() -> None:
    from roles.common.facts import VIRT
    from roles.common.steps import ModulesStep
    from roles.engine.facts import KernelModules

    step = ModulesStep(("overlay", "br_netfilter"))
    key = KernelModules(("overlay", "br_netfilter")).key
    host = facts(**{key: frozenset({"overlay"}), VIRT.key: ("", 1)})
    assert [c.script for c in step.check(CTX, host)] == ["modprobe br_netfilter"] and not step.warnings(CTX, host)
    nspawn = facts(**{key: frozenset({"overlay"}), VIRT.key: ("systemd-nspawn\n", 0)})
    assert step.check(CTX, nspawn) == []
    assert "br_netfilter" in step.warnings(CTX, nspawn)[0]
    loaded = facts(**{key: frozenset({"overlay", "br_netfilter"}), VIRT.key: ("systemd-nspawn\n", 0)})
    assert step.check(CTX, loaded) == [] and step.warnings(CTX, loaded) == []


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o755, 0o4750])
def test_file_write_gives_the_mode_whatever_the_umask(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    write = FileWrite(str(target), b"\x00binary\xff" * 1000, mode=mode).to_command()
    subprocess.run(["bash", "-c", "umask 077; " + write.script], check=True)
    assert target.read_bytes() == b"\x00binary\xff" * 1000
    assert target.stat().st_mode & 0o7777 == mode
    empty = FileWrite(str(tmp_path / "new" / "empty"), b"").to_command()
    subprocess.run(["bash", "-c", empty.script], check=True)
    assert (tmp_path / "new" / "empty").read_bytes() == b""
