"""`keelson backup verify`: a snapshot file checked with no cluster; `backup now` run ids; `backup list` exit."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backups import agent
from backups.operations import Members, _start_script, run_list, run_now
from backups.role.defaults import DEFAULTS
from backups.snapshots import SnapshotRejected
from inventory.loader import parse_inventory
from keelson import backup_cmd
from roles.engine.transport import CommandResult
from tests.backup_helpers import write_snapshot

ROOT = Path(__file__).parents[2]
LAB = parse_inventory((ROOT / "inventory" / "examples" / "lab.yaml").read_text())


def test_cli_verify(tmp_path: Path) -> None:
    runner = CliRunner()
    good = write_snapshot(tmp_path / "good.db.gz")
    result = runner.invoke(backup_cmd.app, ["verify", str(good), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["valid"] is True
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    good.write_bytes(bytes(data))
    result = runner.invoke(backup_cmd.app, ["verify", str(good)])
    assert result.exit_code != 0
    assert isinstance(result.exception, SnapshotRejected)


# -- `keelson backup now`: each run carries the id the CLI asked for -------------------------------------------------


def test_the_agent_carries_the_requested_run_id_once(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.mkdir()
    (status / agent.RUN_REQUEST).write_text("abc123\n")
    assert agent.claim_run_id(status) == "abc123"
    assert not (status / agent.RUN_REQUEST).exists()  # consumed: the next (timer) run gets its own id
    timer = agent.claim_run_id(status)
    assert timer.startswith("timer-") and timer != agent.claim_run_id(status)
    (status / agent.RUN_REQUEST).write_text("bad id; rm -rf /\n")
    assert agent.claim_run_id(status).startswith("timer-")


# STAND-IN for systemd: `systemctl start` of the backup unit. The first start joins a run the timer began earlier
# (its report, without our id, is what `last-run.json` holds afterwards); later starts run the agent's own claim.
FAKE_SYSTEMCTL = """#!{python}
import json, os, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from backups import agent
status = Path(os.environ["STATUS"])
calls = status.parent / "calls"
n = int(calls.read_text()) + 1 if calls.exists() else 1
calls.write_text(str(n))
if os.environ["MODE"] == "broken":  # the unit fails before the agent runs (e.g. a bad unit file)
    sys.exit(1)
run_id = "timer-earlier" if n == 1 else agent.claim_run_id(status)
(status / agent.LAST_RUN).write_text(json.dumps({{"run_id": run_id, "outcome": "skipped", "reason": "n=%d" % n}}))
"""


def run_start_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> tuple[int, dict[str, object]]:
    status, bin_dir = tmp_path / "status", tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "backup.json").write_text("{}")
    fake = bin_dir / "systemctl"
    fake.write_text(FAKE_SYSTEMCTL.format(python=sys.executable, root=str(ROOT)))
    fake.chmod(0o755)
    paths = dataclasses.replace(DEFAULTS, status_dir=str(status), config_path=str(tmp_path / "backup.json"))
    monkeypatch.setattr("backups.operations.DEFAULTS", paths)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STATUS": str(status), "MODE": mode}
    script = _start_script("f00dfeed")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=False)
    assert not (status / agent.RUN_REQUEST).exists()  # claimed, or removed when nothing claimed it
    report = json.loads(proc.stdout[proc.stdout.find("{") :]) if "{" in proc.stdout else {}
    return proc.returncode, report


def test_backup_now_waits_for_the_run_it_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rc, report = run_start_script(tmp_path, monkeypatch, "ok")
    assert rc == 0 and report == {"run_id": "f00dfeed", "outcome": "skipped", "reason": "n=2"}


def test_backup_now_never_shows_an_earlier_report_as_this_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "status").mkdir()
    earlier = {"run_id": "timer-earlier", "outcome": "snapshot", "snapshot": "lab-old.db.gz"}
    (tmp_path / "status" / agent.LAST_RUN).write_text(json.dumps(earlier))
    rc, report = run_start_script(tmp_path, monkeypatch, "broken")
    assert rc == 1 and report == earlier  # the host only has the earlier report …

    result = run_now(member_printing(CommandResult(rc, json.dumps(report), "")), run_id="f00dfeed")
    assert result.runs == {} and not result.ok and result.taken_by == []  # … and it is not shown as this run's
    assert "no report from this run" in result.failed["m1"]
    assert "m1: failed: no report from this run" in result.describe()
    old_agent = {k: v for k, v in earlier.items() if k != "run_id"}
    outdated = run_now(member_printing(CommandResult(0, json.dumps(old_agent), "")), run_id="f00dfeed")
    assert "run `keelson apply` to update it" in outdated.failed["m1"]


class Printing:
    """A member's connection whose start script printed `result`."""

    def __init__(self, result: CommandResult) -> None:
        self.host, self.commands_run, self.result = "m1", 0, result

    def run(self, script: str, *, timeout: float | None = None, check: bool = False) -> CommandResult:
        return self.result


def member_printing(result: CommandResult) -> Members:
    m1 = LAB.host("m1")
    return Members([m1], {"m1": Printing(result)}, {})  # type: ignore[dict-item]


def test_backup_list_with_every_member_unreachable_is_not_ok() -> None:
    listing = run_list(Members([], {}, {"m1": "cannot connect", "m2": "cannot connect"}), offsite=False)
    assert not listing.ok and not listing.as_dict()["ok"]
