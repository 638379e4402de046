"""Windows workers against lab hosts standing in for Windows (Windows cannot run here).

A 12-host lab plays inventory/examples/ha-5-windows.yaml: two load balancers, five masters, three Linux workers, and
two Linux hosts (w4, w5) as the Windows workers win-1 and win-2. Each of those has `RECORDING_SHIM` at
/usr/local/bin/powershell: a TEST STAND-IN for powershell.exe that decodes `-EncodedCommand` as Windows does (and,
for keelson's stdin bootstrap, reads the script from stdin as the bootstrap would), records the script it was given
and its own command line, runs nothing, and exits 0; to a fact batch it answers what a fresh Windows Server would
print (every fact empty, the Containers feature "Available"), to anything else nothing. PowerShell (pwsh) cannot be
installed here from any registry this machine reaches, so what is checked is what arrived, byte for byte, over real
SSH with strict host keys; the artifact digests come from a stand-in mirror on loopback (tests/windows_helpers.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tree_sitter
import tree_sitter_powershell
import yaml

from inventory.loader import parse_inventory
from provision.artifacts.serve import MirrorServer
from provision.lab import Lab
from roles.engine import powershell
from roles.engine.context import RunContext
from roles.engine.phase import Phase, Plan
from roles.engine.runner import run_plan
from roles.pki import kubernetes as k8s_pki
from roles.plans.apply import ADDONS_BY_PULUMI
from roles.state import StateDir
from roles.windows.defaults import DEFAULTS
from roles.windows.phases import phases as windows_phases
from tests.windows_helpers import fake_windows_mirror, windows_variant

pytestmark = pytest.mark.lab

RECORDS = "/var/lib/keelson-shim"
RECORDING_SHIM = r"""#!/usr/bin/python3
# keelson TEST STAND-IN for powershell.exe (Windows cannot run here): decodes -EncodedCommand as Windows does and,
# for keelson's stdin bootstrap, reads the script from stdin as the bootstrap would. It records the script and its
# own command line under RECORDS and runs nothing. A fact batch gets the markers it would print on a fresh Windows
# Server (every fact empty, the Containers feature "Available"); anything else, no output. Exits 0.
import base64, os, re, sys, time
args = sys.argv[1:]
assert args[:3] == ["-NoProfile", "-NonInteractive", "-EncodedCommand"] and len(args) == 4, args
script = base64.b64decode(args[3]).decode("utf-16-le")
how = "argv"
if script == BOOTSTRAP:
    script = base64.b64decode(sys.stdin.buffer.read().strip()).decode("utf-8")
    how = "stdin"
os.makedirs(RECORDS, exist_ok=True)
name = f"{RECORDS}/{time.time_ns()}-{os.getpid()}"
with open(name + ".ps1", "w", encoding="utf-8", newline="") as f:
    f.write(script)
with open(name + ".how", "w") as f:
    f.write(how)
with open(name + ".cmdline", "wb") as f:
    f.write(open("/proc/self/cmdline", "rb").read())
for nonce, i, block in re.findall(r'"`n@@KF-([0-9a-f]+) (\d+)@@"(.*?)"`n@@KR-', script, re.S):
    answer = "Available\r\n" if "Get-WindowsFeature" in block else ""
    sys.stdout.write(f"\r\n@@KF-{nonce} {i}@@\r\n{answer}\r\n@@KR-{nonce} {i} 0@@\r\n")
""".replace("BOOTSTRAP", repr(powershell.STDIN_BOOTSTRAP)).replace("RECORDS", repr(RECORDS))

PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
WINDOWS_HOSTS = {"win-1": "w4", "win-2": "w5"}
LAB_HOSTS = {
    "lb-1": "lb1",
    "lb-2": "lb2",
    **{f"cp-{i}": f"m{i}" for i in range(1, 6)},
    **{f"node-{i}": f"w{i}" for i in range(1, 4)},
    **WINDOWS_HOSTS,
}


@pytest.fixture(scope="module")
def wlab(lab_factory) -> Lab:
    lab: Lab = lab_factory("w-windows", masters=5, workers=5, lbs=2)
    return lab


def install_shim(lab: Lab) -> None:
    for host in WINDOWS_HOSTS.values():
        lab.run(host, f"rm -rf {RECORDS}; cat > /usr/local/bin/powershell <<'EOF'\n{RECORDING_SHIM}EOF\n"
                "chmod +x /usr/local/bin/powershell")  # fmt: skip


def records(lab: Lab, host: str) -> list[dict[str, str]]:
    """What the stand-in recorded on a lab host, oldest first: script, how it came, the command line."""
    dump = (
        f"cd {RECORDS} 2>/dev/null && for f in $(ls *.ps1 | sort -n); do b=${{f%.ps1}}; "
        'printf "%s %s %s %s\\n" "$b" "$(cat $b.how)" "$(base64 -w0 $f)" "$(base64 -w0 $b.cmdline)"; done'
    )
    out = []
    for line in lab.run(host, dump, check=False).stdout.splitlines():
        name, how, script, cmdline = line.split(" ")
        out.append(
            {
                "name": name,
                "how": how,
                "script": base64.b64decode(script).decode(),
                "cmdline": base64.b64decode(cmdline).decode(errors="replace"),
            }
        )
    return out


def parse_problems(script: str) -> bool:
    return PARSER.parse(script.encode()).root_node.has_error


@pytest.fixture
def variant(wlab: Lab, tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """ha-5-windows on the lab's hosts (its VIP, SSH key and known hosts), artifacts from the stand-in mirror."""
    install_shim(wlab)
    mirror = tmp_path / "mirror"
    fake_windows_mirror(mirror, linux=True)
    lab_doc = yaml.safe_load(wlab.inventory_path.read_text())
    addresses = {name: wlab.host(lab_host).address for name, lab_host in LAB_HOSTS.items()}
    with MirrorServer(mirror, "127.0.0.1") as server:
        doc = windows_variant(server.url, addresses)
        doc["ssh"] = lab_doc["ssh"]
        doc["control_plane"].update(
            vip=lab_doc["control_plane"]["vip"], interface=lab_doc["control_plane"]["interface"]
        )
        for host in doc["hosts"]:
            host.pop("ssh", None)  # root, with the lab's key (the example's Administrator is Windows' own)
        path = tmp_path / "ha-5-windows-lab.yaml"
        path.write_text(yaml.safe_dump(doc))
        yield path, doc


def test_keelson_plan_of_ha_5_windows_on_the_lab(
    wlab: Lab, variant: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The whole apply plan of the example, dry run, from fresh hosts: every phase plans, the Windows ones on both
    stand-in hosts in PowerShell (S3 credentials: placeholders, a plan sends nothing to S3)."""
    path, _ = variant
    env = {
        **os.environ,
        "KEELSON_STATE_DIR": str(tmp_path / "state"),
        "AWS_ACCESS_KEY_ID": "keelson-test-placeholder",
        "AWS_SECRET_ACCESS_KEY": "keelson-test-placeholder",
    }
    argv = [sys.executable, "-m", "keelson", "plan", "-i", str(path), "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0] == {"event": "not_applied_yet", "plan": "apply", "sections": [ADDONS_BY_PULUMI]}
    started = {e["phase"]: e["hosts"] for e in events if e["event"] == "phase_started"}
    assert sorted(started["Connect"]) == sorted(LAB_HOSTS)
    windows = [p for p in started if p.startswith("Windows workers |")]
    assert len(windows) == 6 and all(started[p] == ["win-1", "win-2"] for p in windows)
    assert not [
        p for p, hosts in started.items() if p not in windows and {"win-1", "win-2"} & set(hosts) and p != "Connect"
    ]
    planned = {(e["phase"], e["host"]) for e in events if e["event"] == "host_planned"}
    assert {(p, h) for p in windows for h in ("win-1", "win-2")} <= planned  # a fresh host: every Windows phase
    assert ("Workers | Join (in parallel)", "node-1") in planned
    assert not [e for e in events if e["event"] == "host_failed"]
    assert events[-1]["event"] == "run_finished" and events[-1]["ok"] is True
    for win, lab_host in WINDOWS_HOSTS.items():
        got = records(wlab, lab_host)
        batches = [r for r in got if "@@KF-" in r["script"]]
        assert len(batches) == 1, win  # a plan changes nothing: one fact batch, every Windows phase's facts
        assert batches[0]["script"].startswith(powershell.PROLOGUE)
        assert DEFAULTS.join_marker in batches[0]["script"] and "Get-WindowsFeature" in batches[0]["script"]
        assert all(not parse_problems(r["script"]) for r in got), win
        assert len(got) == 2  # the batch, and the serving-certificate probe of the last Windows phase


def test_the_engine_runs_a_windows_phase_over_ssh_byte_for_byte(
    wlab: Lab, variant: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, doc = variant
    cluster = parse_inventory(yaml.safe_dump(doc))
    state = tmp_path / "state"
    k8s_pki.ensure(StateDir(state))
    token = k8s_pki.bootstrap_token(StateDir(state))  # made before the joins, as the control plane's init does
    join = next(p for p in windows_phases(cluster) if p.title == "Windows workers | Join (in parallel)")
    assert isinstance(join, Phase)
    install_shim(wlab)  # fresh records
    report = run_plan(Plan("apply", [join]), RunContext(cluster, state))
    assert report.ok, report.hosts  # the stand-in runs nothing and exits 0: every command "succeeds"
    for win, lab_host in WINDOWS_HOSTS.items():
        facts, run = records(wlab, lab_host)
        assert "@@KF-" in facts["script"] and not parse_problems(facts["script"])
        commands = report.planned[join.title][win]
        nonce = re.search(r"@@KC-([0-9a-f]{12}) 0@@", run["script"])
        assert nonce is not None
        assert run["script"] == powershell.host_script(commands, nonce.group(1))  # what arrived, byte for byte
        assert run["how"] == "stdin"  # the join configuration holds the bootstrap token
        argv = run["cmdline"].rstrip("\0").split("\0")
        assert argv[-2] == "-EncodedCommand" and len(argv[-1]) <= powershell.MAX_COMMAND_LINE
        assert base64.b64decode(argv[-1]).decode("utf-16-le") == powershell.STDIN_BOOTSTRAP  # no script in argv
        written = [base64.b64decode(b).decode() for b in re.findall(r"FromBase64String\('([^']*)'\)", run["script"])]
        assert any(token in w for w in written)  # the join configuration, with the token, came through stdin
        assert token not in run["cmdline"] and token not in facts["cmdline"]
