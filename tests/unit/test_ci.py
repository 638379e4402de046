"""CI tells the truth: under CI=true a missing lab prerequisite fails the lab tests, and `.ci/run` prints how many
tests were skipped (parsed from pytest's summary line) and passes pytest's exit status on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import conftest

ROOT = Path(__file__).parents[2]


def lab_item() -> pytest.Item:
    return SimpleNamespace(keywords={"lab": True})  # type: ignore[return-value]


def test_missing_lab_prerequisite_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "lab_unavailable", lambda: "lab tests need root")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="need root"):
        conftest.pytest_runtest_setup(lab_item())
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and a lab prerequisite is missing: lab tests need root"):
        conftest.pytest_runtest_setup(lab_item())
    conftest.pytest_runtest_setup(SimpleNamespace(keywords={}))  # type: ignore[arg-type]  # a unit test runs


def test_with_the_prerequisites_a_lab_test_runs_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "lab_unavailable", lambda: None)
    monkeypatch.setenv("CI", "true")
    conftest.pytest_runtest_setup(lab_item())  # neither skip nor fail


# STAND-IN: `uv` on PATH, so .ci/run runs without installing anything; its `uv run pytest` prints what pytest would.
STUB_UV = """#!/bin/bash
echo "stub uv $* CI=$CI" >> "$STUB_LOG"
if [ "$1 $2" = "run pytest" ]; then
  printf '%s\\n' 'SKIPPED [2] tests/lab/test_x.py:3: no cgroup v2' "$STUB_SUMMARY"
  exit "$STUB_RC"
fi
exit 0
"""


@pytest.mark.parametrize(
    ("summary", "rc", "skipped", "exit_code"),
    [
        ("=========== 180 passed, 2 skipped in 612.34s (0:10:12) ===========", 0, "2", 0),
        ("==== 1 failed, 179 passed in 600.01s ====", 1, "0", 1),
        ("==== no tests ran in 0.01s ====", 5, "0", 1),
    ],
)
def test_ci_run_prints_the_skip_count_and_keeps_the_exit_status(
    tmp_path: Path, summary: str, rc: int, skipped: str, exit_code: int
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("uv", "debootstrap", "systemd-nspawn", "ip", "ssh-keygen", "gcc"):
        (bin_dir / tool).write_text(STUB_UV if tool == "uv" else "#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "uv.log"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", STUB_LOG=str(log), STUB_SUMMARY=summary, STUB_RC=str(rc))
    proc = subprocess.run([str(ROOT / ".ci" / "run")], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == exit_code, proc.stdout + proc.stderr
    assert f"ci: {skipped} test(s) skipped — pytest: {summary.strip('= ')}" in proc.stdout
    calls = log.read_text().splitlines()
    assert "stub uv run pytest CI=true" in calls  # exactly the README's command, with CI=true
