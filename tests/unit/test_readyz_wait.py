"""The /readyz waits the control plane and the upgrade run on masters, run in bash against stand-ins: `curl` answers
from a list (STAND-IN: one exit status per poll), `date +%s` reads a clock that `sleep` moves on, so a wait of many
seconds runs in milliseconds and every poll is counted. The upgrade drill found why "ready once" is not enough: a new
kubelet restarts the apiserver's container seconds after it starts (roles/upgrade/nodes.py UpgradeSpec.settle_s)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from roles.control_plane.cluster_ops import readyz_wait

STUBS = {
    "curl": '#!/bin/bash\nn=$(cat "$T/polls"); echo $((n + 1)) > "$T/polls"\n'
    'answer=$(sed -n "$((n + 1))p" "$T/answers"); exit "${answer:-1}"\n',
    "date": '#!/bin/bash\ncat "$T/clock"\n',
    "sleep": '#!/bin/bash\necho $(( $(cat "$T/clock") + ${1%.*} )) > "$T/clock"\n',
}


def wait(tmp: Path, answers: list[int], seconds: float, steady_s: int) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run readyz_wait against `answers` (curl's exit status at each poll; 1 after the list ends): (result, polls)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, text in STUBS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp / "answers").write_text("".join(f"{a}\n" for a in answers))
    (tmp / "polls").write_text("0")
    (tmp / "clock").write_text("1000")
    script = readyz_wait("https://10.0.0.11:6443", seconds, steady_s=steady_s)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "T": str(tmp)}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30, check=False)
    return result, int((tmp / "polls").read_text())


def test_ready_once_is_enough_without_steady(tmp_path: Path) -> None:
    result, polls = wait(tmp_path, [1, 1, 0], 60, steady_s=0)
    assert result.returncode == 0 and polls == 3


def test_steady_counts_seconds_of_unbroken_ok(tmp_path: Path) -> None:
    result, polls = wait(tmp_path, [0] * 10, 60, steady_s=3)
    assert result.returncode == 0, result.stderr
    assert polls == 4, "ok at 0, 1, 2 and 3 s: three seconds without a break"


def test_a_failed_poll_starts_the_count_again(tmp_path: Path) -> None:
    """What the drill saw: ready, then the new kubelet restarts the apiserver (refused), then ready again."""
    result, polls = wait(tmp_path, [0, 0, 1, 1, 0, 0, 0, 0, 0], 60, steady_s=3)
    assert result.returncode == 0, result.stderr
    assert polls == 8, "the count starts again at the first ok after the failures"


def test_never_steady_within_the_deadline_fails_with_the_last_answer(tmp_path: Path) -> None:
    result, polls = wait(tmp_path, [0, 1] * 20, 10, steady_s=3)
    assert result.returncode == 75
    assert "https://10.0.0.11:6443/readyz not ok for 3 s without a break within 10 s (last: " in result.stderr
    assert polls == 11, "one poll a second until the deadline"


@pytest.mark.parametrize("steady_s", [0, 3])
def test_never_ready_fails_at_the_deadline(tmp_path: Path, steady_s: int) -> None:
    result, _ = wait(tmp_path, [], 5, steady_s=steady_s)
    assert result.returncode == 75 and "https://10.0.0.11:6443/readyz not ok" in result.stderr
