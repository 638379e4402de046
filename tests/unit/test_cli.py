"""The `keelson` entry point as a user runs it (a real process): exit codes, messages, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "inventory" / "examples"
SCRIPT = Path(sys.executable).parent / "keelson"  # the console script the project installs


def keelson(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)


def test_version_and_help() -> None:
    assert keelson("--version").stdout.startswith("keelson ")
    help_text = keelson("--help")
    assert help_text.returncode == 0
    assert "Usage: keelson" in help_text.stdout and "apply" in help_text.stdout


def test_valid_inventory_is_one_summary_line() -> None:
    proc = keelson("inventory", "validate", str(EXAMPLES / "ha-5-windows.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and ": ok — cluster prod-us2" in proc.stdout


def test_invalid_inventory_exits_2_with_the_line_and_field(tmp_path: Path) -> None:
    text = (EXAMPLES / "lab.yaml").read_text().replace("address: 198.18.0.22", "address: 198.18.0.12")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = keelson("inventory", "validate", str(bad))
    assert proc.returncode == 2
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "name: w2" in row)
    assert f"bad.yaml:{line}: hosts[4].address: duplicate address 198.18.0.12" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("inventory", "nosuch"), "No such command 'nosuch'"),
        (("inventory", "validate"), "Missing argument"),
        (("apply",), "Missing option '--inventory'"),
        (("plan", "-i", "x.yaml", "--concurrency", "many"), "--concurrency"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(args: tuple[str, ...], message: str) -> None:
    proc = keelson(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_plan_and_apply_build_without_the_garbage_collector_then_run_with_it() -> None:
    """keelson/cli.py turns the cyclic collector off for plan/apply's start-up; the run gets it back, with what
    start-up made frozen (never walked again)."""
    code = (
        "import gc, sys\n"
        "import keelson.engine_cmd as e\n"
        "from keelson.cli import main\n"
        "def run(*a, **k):\n"
        "    print(gc.isenabled(), gc.get_freeze_count() > 0, k['pool'] is None)\n"
        "e.run = run\n"
        "sys.argv = ['keelson', 'plan', '-i', 'inventory/examples/lab.yaml', '--hosts', 'nosuch']  # no login\n"
        "main()\n"
    )
    root = Path(__file__).parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True", "True"]
