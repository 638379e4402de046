"""`keelson exec` and SSH through a bastion on real lab hosts (3 masters).

exec: output per host, a failing host and a killed one make the exit non-zero with the host named. Bastion: the test's
keelson runs in a network namespace whose only link goes to m1 (tests/lab/only_via.py): no other host is reachable
from there, and plan, a no-op apply and exec go through m1 — with `ssh.bastion` in the inventory, and with nothing
in the inventory but an ssh config (alias, HostName, User, IdentityFile, ProxyJump). Changed host keys behind the
bastion, and of the bastion itself, are refused like direct ones."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from provision.lab import Lab, faults
from tests.lab.only_via import BASTION_IP, OPERATOR_IP, OnlyVia, operator_behind

pytestmark = pytest.mark.lab
KEELSON = str(Path(sys.executable).parent / "keelson")
LAB = "ops3"


@pytest.fixture(scope="module")
def olab(lab_factory) -> Lab:
    lab: Lab = lab_factory(LAB, masters=3, workers=0)
    return lab


def keelson(*args: str, via: OnlyVia | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    argv = [KEELSON, *args] if via is None else via.argv(KEELSON, *args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def events(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def outputs(proc: subprocess.CompletedProcess[str]) -> dict[str, tuple[int, str]]:
    return {e["host"]: (e["rc"], e["stdout"]) for e in events(proc) if e["event"] == "host_output"}


# -- exec, direct ----------------------------------------------------------------------------------------------


def test_exec_output_per_host_and_failures_named(olab: Lab) -> None:
    inv = str(olab.inventory_path)
    proc = keelson("exec", "-i", inv, "--", "sh", "-c", 'echo "I am $(cat /etc/hostname)"; echo "to stderr" >&2')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in ("m1", "m2", "m3"):
        assert f"── {host} (exit 0, " in proc.stdout and f"I am {host}\n" in proc.stdout
    assert proc.stdout.count("to stderr") == 3
    assert proc.stdout.rstrip().splitlines()[-1].startswith("3 hosts: 3 ok, 0 failed, 0 timed out, 0 unreachable in")

    failing = keelson("exec", "-i", inv, "--prefix", "--hosts", "m1,m2", "--", "sh", "-c", "grep -v m2 /etc/hostname")
    assert failing.returncode == 1
    assert "m1: m1" in failing.stdout.splitlines() and "m2: failed, exit 1" in failing.stdout
    assert "2 hosts: 1 ok, 1 failed (m2 exit 1), 0 timed out, 0 unreachable" in failing.stdout

    faults.power_off(olab, "m3")
    try:
        down = keelson("exec", "-i", inv, "--json", "--role", "master", "--", "cat", "/etc/hostname")
        assert down.returncode == 1
        assert outputs(down) == {"m1": (0, "m1\n"), "m2": (0, "m2\n")}
        (failed,) = [e for e in events(down) if e["event"] == "host_failed"]
        assert failed["host"] == "m3" and "cannot connect to" in failed["error"]
        assert events(down)[-1]["hosts"]["m3"]["status"] == "unreachable"
        assert "1 unreachable (m3)" in events(down)[-1]["summary"]
    finally:
        faults.power_on(olab, "m3")


def test_exec_timeout_stops_the_command_on_the_host(olab: Lab) -> None:
    inv = str(olab.inventory_path)
    marker = "/var/tmp/keelson-exec-slow"
    olab.run("m2", f"rm -f {marker}")
    proc = keelson("exec", "-i", inv, "--hosts", "m2", "--timeout", "2", "--json", "--", "sh", "-c",
                   f"sleep 8; touch {marker}")  # fmt: skip
    assert proc.returncode == 1
    assert outputs(proc) == {"m2": (124, "")}
    olab.run("m2", "sleep 8")  # longer than the command would have slept: it never touched its marker
    assert olab.run("m2", f"test -e {marker}", check=False).returncode != 0


# -- through a bastion -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def via(olab: Lab) -> Iterator[OnlyVia]:
    with operator_behind(olab, "m1") as only:
        yield only


def _key_of(olab: Lab, host: str) -> str:
    line = next(x for x in olab.known_hosts_path.read_text().splitlines() if x.startswith(f"{host},"))
    return line.split(" ", 1)[1]


def _known_hosts(olab: Lab, path: Path, forge: dict[str, str] | None = None) -> Path:
    """The lab's known_hosts plus the bastion's second address (m1's own key: the same machine). `forge` gives a
    host (or the bastion's address) another host's key."""
    lines = [*olab.known_hosts_path.read_text().splitlines(), f"{BASTION_IP} {_key_of(olab, 'm1')}"]
    for name, other in (forge or {}).items():
        lines = [
            (line.split(" ", 1)[0] + " " + _key_of(olab, other)) if line.split(" ", 1)[0].split(",")[0] == name
            else line
            for line in lines
        ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def _with_bastion(olab: Lab, tmp: Path, known: Path) -> str:
    doc = yaml.safe_load(olab.inventory_path.read_text())
    doc["ssh"].update({"bastion": {"host": BASTION_IP}, "known_hosts": str(known), "config": "none"})
    path = tmp / "bastion.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _accepted_from_operator(olab: Lab) -> int:
    """sshd logins on m1 that came from the operator's namespace: the bastion connections keelson opened."""
    pattern = f"Accepted publickey for root from {OPERATOR_IP} "
    out = olab.run("m1", f"journalctl -q --no-pager -t sshd | grep -c '{pattern}'", check=False).stdout
    return int(out.strip() or 0)


def test_nothing_but_the_bastion_is_reachable(olab: Lab, via: OnlyVia) -> None:
    assert via.tcp_reaches(BASTION_IP)
    for host in olab.hosts:
        assert not via.tcp_reaches(host.address), host.name


def test_plan_apply_exec_through_the_bastion(olab: Lab, via: OnlyVia, tmp_path: Path) -> None:
    inv = _with_bastion(olab, tmp_path, _known_hosts(olab, tmp_path / "known_hosts"))
    state = ["--state-dir", str(tmp_path / "state")]
    first = keelson("apply", "-i", inv, "--only", "prepare-hosts", "--json", *state, via=via)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    before = _accepted_from_operator(olab)
    noop = keelson("apply", "-i", inv, "--only", "prepare-hosts", "--json", *state, via=via)
    assert noop.returncode == 0, noop.stdout[-3000:] + noop.stderr
    finished = events(noop)[-1]
    assert finished["event"] == "run_finished" and finished["ok"]
    assert {h: c["changed"] for h, c in finished["hosts"].items()} == {"m1": 0, "m2": 0, "m3": 0}
    assert finished["ssh_commands"] == {"m1": 1, "m2": 1, "m3": 1}  # the no-op budget, through the bastion too
    assert _accepted_from_operator(olab) == before + 1  # one bastion login for the run, shared by all three
    plan = keelson("plan", "-i", inv, "--only", "prepare-hosts", *state, via=via)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "no changes: every host already matches the inventory" in plan.stdout
    ran = keelson("exec", "-i", inv, "--json", "--", "cat", "/etc/hostname", via=via)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert outputs(ran) == {"m1": (0, "m1\n"), "m2": (0, "m2\n"), "m3": (0, "m3\n")}


def test_changed_host_keys_behind_and_of_the_bastion_are_refused(olab: Lab, via: OnlyVia, tmp_path: Path) -> None:
    m2 = olab.host("m2").address
    inv = _with_bastion(olab, tmp_path, _known_hosts(olab, tmp_path / "kh-m2", forge={"m2": "m3"}))
    proc = keelson("exec", "-i", inv, "--json", "--", "true", via=via)
    assert proc.returncode == 1
    assert set(outputs(proc)) == {"m1", "m3"}
    (failed,) = [e for e in events(proc) if e["event"] == "host_failed"]
    assert failed["host"] == "m2"
    assert f"host key CHANGED for {m2}:22 through bastion root@{BASTION_IP}:22" in failed["error"]
    plan = keelson("plan", "-i", inv, "--only", "prepare-hosts", "--state-dir", str(tmp_path / "s"), via=via)
    assert plan.returncode == 1 and "host key CHANGED" in plan.stdout

    inv = _with_bastion(olab, tmp_path, _known_hosts(olab, tmp_path / "kh-b", forge={BASTION_IP: "m2"}))
    proc = keelson("exec", "-i", inv, "--json", "--", "true", via=via)
    assert proc.returncode == 1 and outputs(proc) == {}
    errors = {e["host"]: e["error"] for e in events(proc) if e["event"] == "host_failed"}
    assert set(errors) == {"m1", "m2", "m3"}
    assert all(f"bastion root@{BASTION_IP}:22: host key CHANGED for {BASTION_IP}:22" in e for e in errors.values())


def test_the_ssh_config_alone_gives_aliases_users_keys_and_the_jump(olab: Lab, via: OnlyVia, tmp_path: Path) -> None:
    net = olab.host("m1").address.rsplit(".", 1)[0]
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host m2-alias\n    HostName {olab.host('m2').address}\n\n"
        f"Host {net}.* m2-alias\n    User root\n    IdentityFile {olab.key_path}\n    ProxyJump jump\n\n"
        f"Host jump\n    HostName {BASTION_IP}\n    User root\n    IdentityFile {olab.key_path}\n"
    )
    doc = yaml.safe_load(olab.inventory_path.read_text())
    doc["ssh"] = {"known_hosts": str(_known_hosts(olab, tmp_path / "known_hosts")), "config": str(config)}
    m2 = next(h for h in doc["hosts"] if h["name"] == "m2")
    m2.update({"address": "m2-alias", "internal_address": olab.host("m2").address})
    inv = tmp_path / "aliases.yaml"
    inv.write_text(yaml.safe_dump(doc))
    ran = keelson("exec", "-i", str(inv), "--json", "--", "sh", "-c", "cat /etc/hostname; id -un", via=via)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert outputs(ran) == {"m1": (0, "m1\nroot\n"), "m2": (0, "m2\nroot\n"), "m3": (0, "m3\nroot\n")}
