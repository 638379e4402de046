"""The engine on real lab hosts: dry-run → apply → dry-run, host keys, an SSH cut mid-phase, sudo, PowerShell."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory.loader import load_inventory, parse_inventory
from inventory.model import Cluster
from provision.lab import Lab, faults
from roles import common, containerd, validate
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.events import Event, HostPlanned, HostWarning
from roles.engine.facts import CommandOutput
from roles.engine.phase import Phase, all_hosts
from roles.engine.runner import RunReport, run_plan
from roles.engine.step import CommandStep, FileStep
from roles.engine.transport import ConnectionPool, PowerShellTransport

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def elab(lab_factory) -> Lab:
    lab: Lab = lab_factory("e-engine", masters=3, workers=2)
    return lab


def cluster_plan(cluster: Cluster) -> list[Phase]:
    """The engine's own roles only: other roles have lab tests of their own."""
    return [*validate.phases(cluster), *common.phases(cluster), *containerd.phases(cluster)]


def run(cluster: Cluster, state: Path, *, dry_run: bool = False, plan=None, events=None, **kw) -> RunReport:
    rc = RunContext(cluster, state, dry_run=dry_run, events=events or (lambda e: None), **kw)
    return run_plan(plan if plan is not None else cluster_plan(cluster), rc)


def shown(report: RunReport) -> dict[tuple[str, str], list[str]]:
    return {
        (phase, host): [c.shown() for c in cmds]
        for phase, hosts in report.planned.items()
        for host, cmds in hosts.items()
    }


def test_plan_apply_plan(elab: Lab, tmp_path: Path) -> None:
    cluster = load_inventory(elab.inventory_path)
    before = run(cluster, tmp_path, dry_run=True)
    assert before.ok and before.changed_hosts  # fresh hosts: something to do on each
    applied = run(cluster, tmp_path)
    assert applied.ok, applied.hosts
    assert shown(applied) == shown(before)  # the plan showed exactly what apply then ran
    again = run(cluster, tmp_path)
    assert again.ok and again.changed_hosts == []
    assert all(s.changed == 0 for s in again.hosts.values())
    assert max(again.ssh_commands.values()) <= 2
    after = run(cluster, tmp_path, dry_run=True)
    assert after.planned == {}
    # and the hosts really are configured
    checks = "systemctl is-active containerd; grep -c SystemdCgroup /etc/containerd/config.toml"
    out = elab.run("w1", checks + "; sysctl -n net.ipv4.ip_forward")
    assert out.stdout.split() == ["active", "1", "1"]


def _inventory_with(elab: Lab, tmp_path: Path, known_hosts: str) -> Cluster:
    doc = yaml.safe_load(elab.inventory_path.read_text())
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts)
    doc["ssh"]["known_hosts"] = str(kh)
    return parse_inventory(yaml.safe_dump(doc))


def test_changed_host_key_is_refused_before_any_command(elab: Lab, tmp_path: Path) -> None:
    lines = elab.known_hosts_path.read_text().splitlines()
    w1_key = next(line for line in lines if line.startswith("w1,")).split(" ", 1)[1]
    forged = [line if not line.startswith("w2,") else line.split(" ", 1)[0] + " " + w1_key for line in lines]
    cluster = _inventory_with(elab, tmp_path, "\n".join(forged) + "\n")
    report = run(cluster, tmp_path)
    assert not report.ok
    (error,) = report.hosts["w2"].errors
    assert "host key CHANGED" in error and "SHA256:" in error
    assert report.ssh_commands.get("w2", 0) == 0
    assert report.stopped_after == "Connect"  # nothing ran anywhere: connect is the first gate


def test_unknown_host_key_needs_trust_on_first_use(elab: Lab, tmp_path: Path) -> None:
    lines = [line for line in elab.known_hosts_path.read_text().splitlines() if not line.startswith("m3,")]
    cluster = _inventory_with(elab, tmp_path, "\n".join(lines) + "\n")
    refused = run(cluster, tmp_path, dry_run=True)
    assert "--trust-on-first-use" in " ".join(refused.hosts["m3"].errors)
    seen: list[Event] = []
    trusted = run(cluster, tmp_path, dry_run=True, trust_on_first_use=True, events=seen.append)
    assert trusted.ok
    (notice,) = [e for e in seen if isinstance(e, HostWarning)]
    assert notice.host == "m3" and "trusted on first use" in notice.message and "SHA256:" in notice.message
    recorded = (tmp_path / "known_hosts").read_text()
    known = elab.known_hosts_path.read_text().splitlines()
    real = next(line for line in known if line.startswith("m3,")).split()[2]
    assert real in recorded


def _slow_plan(cluster: Cluster, marker: str) -> list[Phase]:
    done = CommandOutput("slow-done", f"test -e {marker} && echo yes")
    step = CommandStep(
        "test | slow change",
        (done,),
        lambda ctx, facts: facts.get(done)[0].strip() == "yes",
        lambda ctx, facts: [Command(f"touch {marker}.started && sleep 4 && touch {marker}")],
    )
    return [*cluster_plan(cluster), Phase("Slow", all_hosts, [step])]


def test_ssh_cut_mid_phase_then_rerun_converges(elab: Lab, tmp_path: Path) -> None:
    cluster = load_inventory(elab.inventory_path)
    marker = "/var/tmp/keelson-slow"
    elab.run("w2", f"rm -f {marker} {marker}.started")
    started = threading.Event()

    def watch(event: Event) -> None:
        if isinstance(event, HostPlanned) and event.host == "w2" and event.phase == "Slow":
            started.set()

    def cut() -> None:
        assert started.wait(60)
        deadline = time.monotonic() + 30  # cut while the slow command runs on w2: wait until it has started
        while elab.console("w2", f"test -e {marker}.started").returncode != 0:
            assert time.monotonic() < deadline, "the slow command never started on w2"
        faults.cut_ssh(elab, "w2")

    cutter = threading.Thread(target=cut)
    cutter.start()
    report = run(cluster, tmp_path, plan=_slow_plan(cluster, marker), events=watch)
    cutter.join()
    assert not report.ok
    (error,) = report.hosts["w2"].errors
    assert error.startswith("Slow: w2:") and "connection" in error
    assert all(not report.hosts[h].failed for h in ("m1", "m2", "m3", "w1"))

    down = run(cluster, tmp_path, plan=_slow_plan(cluster, marker))
    assert "w2" in " ".join(down.hosts["w2"].errors) and "cannot connect" in " ".join(down.hosts["w2"].errors)

    faults.restore_ssh(elab, "w2")
    again = run(cluster, tmp_path, plan=_slow_plan(cluster, marker))
    assert again.ok, again.hosts
    assert set(again.changed_hosts) <= {"w2"}  # the cut command may have finished on its own, or is redone now
    final = run(cluster, tmp_path, plan=_slow_plan(cluster, marker))
    assert final.ok and final.changed_hosts == []


def test_sudo_with_a_password(elab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pub = elab.key_path.with_suffix(".pub").read_text().strip()
    elab.run(
        "m1",
        "id ops >/dev/null 2>&1 || useradd -m -s /bin/bash ops; echo 'ops:s3cret-pw' | chpasswd; "
        "echo 'ops ALL=(ALL) ALL' > /etc/sudoers.d/ops; chmod 0440 /etc/sudoers.d/ops; "
        f"install -d -m 700 -o ops -g ops ~ops/.ssh; echo '{pub}' > ~ops/.ssh/authorized_keys; "
        "chown ops:ops ~ops/.ssh/authorized_keys; rm -f /var/tmp/keelson-sudo",
    )
    doc = yaml.safe_load(elab.inventory_path.read_text())
    doc["hosts"][0]["ssh"] = {"user": "ops", "sudo_password_env": "TEST_SUDO_PW"}
    cluster = parse_inventory(yaml.safe_dump(doc))
    marker = CommandOutput("sudo-marker", "test -e /var/tmp/keelson-sudo && echo yes")
    step = CommandStep(
        "test | as root",
        (marker,),
        lambda c, f: f.get(marker)[0].strip() == "yes",
        lambda c, f: [Command("test $(id -u) = 0 && touch /var/tmp/keelson-sudo")],
    )
    plan = [Phase("Sudo", lambda cl: cl.masters[:1], [step])]
    monkeypatch.delenv("TEST_SUDO_PW", raising=False)
    missing = run(cluster, tmp_path, plan=plan)
    assert "TEST_SUDO_PW" in " ".join(missing.hosts["m1"].errors)
    monkeypatch.setenv("TEST_SUDO_PW", "s3cret-pw")
    report = run(cluster, tmp_path, plan=plan)
    assert report.ok, report.hosts
    assert elab.run("m1", "stat -c %U /var/tmp/keelson-sudo").stdout.strip() == "root"


POWERSHELL_SHIM = r"""#!/usr/bin/python3
# keelson test stand-in for powershell.exe (Windows cannot run here): decodes -EncodedCommand, prints the script
import base64, sys
args = sys.argv[1:]
assert args[:2] == ["-NoProfile", "-NonInteractive"] and args[2] == "-EncodedCommand", args
sys.stdout.write(base64.b64decode(args[3]).decode("utf-16-le"))
"""


def test_powershell_transport_against_a_lab_shim(elab: Lab) -> None:
    elab.run("w1", f"cat > /usr/local/bin/powershell <<'EOF'\n{POWERSHELL_SHIM}EOF\nchmod +x /usr/local/bin/powershell")
    doc = yaml.safe_load(elab.inventory_path.read_text())
    for host in doc["hosts"]:
        if host["name"] == "w1":
            host["os"] = "windows"
            host["ssh"] = {"user": "root"}
    cluster = parse_inventory(yaml.safe_dump(doc))
    pool = ConnectionPool(cluster)
    try:
        transport = pool.get(cluster.host("w1"))
        assert isinstance(transport, PowerShellTransport)
        script = "Write-Output \"héllo $env:COMPUTERNAME\"; Get-Service | Where-Object { $_.Status -eq 'Running' }"
        assert transport.run(script, check=True).stdout == script
    finally:
        pool.close()


def _cli(*args: str, state: Path, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEELSON_STATE_DIR": str(state)}
    if cache is not None:  # keelson's user cache (the fact batches kept for the next run among it)
        env["XDG_CACHE_HOME"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "keelson", *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_cli_json_stream_and_exit_codes(elab: Lab, tmp_path: Path) -> None:
    """`keelson apply/plan --json`: one JSON object per line, a non-zero exit and the host named when one fails."""
    inventory = str(elab.inventory_path)
    applied = _cli("apply", "-i", inventory, "--only", "prepare", "--only", "container", "--json", state=tmp_path)
    assert applied.returncode == 0, applied.stderr
    events = [json.loads(line) for line in applied.stdout.splitlines()]
    assert events[-1]["event"] == "run_finished" and events[-1]["ok"] is True
    planned = _cli("plan", "-i", inventory, "--only", "prepare", "--only", "container", "--json", state=tmp_path)
    lines = [json.loads(line) for line in planned.stdout.splitlines()]
    assert planned.returncode == 0 and not [e for e in lines if e["event"] == "host_planned"]
    assert all(h["changed"] == 0 for h in lines[-1]["hosts"].values())

    lines_kh = elab.known_hosts_path.read_text().splitlines()
    w1_key = next(line for line in lines_kh if line.startswith("w1,")).split(" ", 1)[1]
    forged = [line if not line.startswith("w2,") else line.split(" ", 1)[0] + " " + w1_key for line in lines_kh]
    doc = yaml.safe_load(elab.inventory_path.read_text())
    (tmp_path / "known_hosts").write_text("\n".join(forged) + "\n")
    doc["ssh"]["known_hosts"] = str(tmp_path / "known_hosts")
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(doc))
    failed = _cli("apply", "-i", str(tmp_path / "inv.yaml"), "--json", state=tmp_path)
    assert failed.returncode != 0
    bad = [json.loads(line) for line in failed.stdout.splitlines() if '"host_failed"' in line]
    assert [(e["host"], e["phase"]) for e in bad] == [("w2", "Connect")]
    assert "host key CHANGED" in bad[0]["error"]
    human = _cli("apply", "-i", str(tmp_path / "inv.yaml"), state=tmp_path)
    assert human.returncode != 0 and "w2: Connect: w2: host key CHANGED" in human.stdout
    assert "Traceback" not in human.stdout + human.stderr


def test_cli_no_op_runs_the_fact_batch_sent_ahead_and_never_a_foreign_one(elab: Lab, tmp_path: Path) -> None:
    """The CLI sends each host's last first batch as soon as its login is done (roles/engine/facts_ahead.py): a no-op
    is that one command per host; a host changed behind keelson's back is seen (the batch reads the host now); a kept
    script that is not the run's own is sent but never read (its answer claims the drifted file is in place)."""
    inventory = str(elab.inventory_path)
    cache = tmp_path / "cache"

    def apply() -> dict[str, Any]:
        done = _cli("apply", "-i", inventory, "--only", "prepare", "--only", "container", "--json", state=tmp_path,
                    cache=cache)  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        finished: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
        return finished

    names = sorted(h.name for h in load_inventory(elab.inventory_path).hosts)
    apply()  # converged (or converges now), its first batches kept
    kept = list((cache / "keelson" / "facts-ahead").glob("*.json"))
    assert len(kept) == 1 and oct(kept[0].stat().st_mode & 0o777) == "0o600"
    again = apply()
    assert again["facts_ahead"] == names and again["ssh_commands"] == dict.fromkeys(names, 1)
    assert all(h["changed"] == 0 for h in again["hosts"].values())

    sysctl = "/etc/sysctl.d/99-keelson-kubernetes.conf"
    elab.run("w1", f"rm -f {sysctl}")
    drifted = apply()
    assert drifted["facts_ahead"] == names and [h for h, s in drifted["hosts"].items() if s["changed"]] == ["w1"]
    assert elab.run("w1", f"test -f {sysctl} && echo present").stdout.strip() == "present"

    # kept scripts that read a copy of the file instead: on w2 they would answer "in place" once it is gone
    copy = "/root/keelson-sysctl-copy.conf"
    doc = json.loads(kept[0].read_text())
    doc["hosts"] = {h: s.replace(sysctl, copy) for h, s in doc["hosts"].items()}
    assert doc != json.loads(kept[0].read_text())
    kept[0].write_text(json.dumps(doc))
    elab.run("w2", f"cp -p {sysctl} {copy} && rm -f {sysctl}")
    try:
        foreign = apply()
    finally:
        elab.run("w2", f"rm -f {copy}")
    assert foreign["facts_ahead"] == [] and foreign["ssh_commands"]["m1"] == 2
    assert [h for h, s in foreign["hosts"].items() if s["changed"]] == ["w2"]
    assert elab.run("w2", f"test -f {sysctl} && echo present").stdout.strip() == "present"
    assert apply()["facts_ahead"] == names  # the run's own scripts kept again


def test_a_large_file_travels_by_sftp_and_converges(elab: Lab, tmp_path: Path) -> None:
    """A write too large for one command-line argument goes as an uploaded script; the rerun compares sha256 only."""
    data = os.urandom(300 * 1024)
    cluster = load_inventory(elab.inventory_path)
    step = FileStep("/var/tmp/keelson-big.bin", data, mode=0o600, secret=True)
    plan = [Phase("Big", lambda c: c.masters[:1], [step])]
    first = run(cluster, tmp_path, plan=plan)
    assert first.ok, first.hosts
    (shown_line,) = shown(first)[("Big", "m1")]
    assert "secret" in shown_line and "sha256" in shown_line and len(shown_line) < 200
    out = elab.run("m1", "sha256sum < /var/tmp/keelson-big.bin; stat -c %a /var/tmp/keelson-big.bin; ls /tmp")
    assert out.stdout.split()[0] == hashlib.sha256(data).hexdigest() and "600" in out.stdout
    assert ".keelson-" not in out.stdout  # the uploaded script is removed
    again = run(cluster, tmp_path, plan=plan)
    assert again.ok and again.changed_hosts == [] and again.ssh_commands["m1"] == 1
