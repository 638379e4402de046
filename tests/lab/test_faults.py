"""Each lab fault (provision/lab/faults.py) does what its name says on a real lab host, and its undo brings the host
back. Power off / power on is also checked in test_lab.py (host key kept) and through `keelson lab kill/start`."""

from __future__ import annotations

import subprocess
import time

import pytest

from provision.lab import Lab, LabError, faults

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def flab(lab_factory) -> Lab:
    lab: Lab = lab_factory("t-fault", masters=1, workers=1)
    return lab


def login(lab: Lab, host: str, timeout_s: int = 3) -> int:
    """One SSH login running `true`, giving up after `timeout_s` (connect and banner) — the exit status."""
    argv = ["ssh", "-F", str(lab.ssh_config_path), "-o", f"ConnectTimeout={timeout_s}", "--", host, "true"]
    try:
        return subprocess.run(argv, capture_output=True, timeout=timeout_s + 5, check=False).returncode
    except subprocess.TimeoutExpired:
        return -1


def test_stop_and_start_a_unit(flab: Lab) -> None:
    assert flab.run("w1", "systemctl is-active cron").stdout.strip() == "active"
    faults.stop_unit(flab, "w1", "cron")
    assert flab.run("w1", "systemctl is-active cron", check=False).stdout.strip() == "inactive"
    faults.start_unit(flab, "w1", "cron")
    assert flab.run("w1", "systemctl is-active cron").stdout.strip() == "active"


def test_kill_a_process_and_its_unit_restarts_it(flab: Lab) -> None:
    before = flab.run("w1", "systemctl show -p MainPID --value cron").stdout.strip()
    moment = faults.kill_process(flab, "w1", "cron")  # cron.service: Restart=on-failure
    assert moment > 0
    faults.wait_process(flab, "w1", "cron")
    after = flab.run("w1", "systemctl show -p MainPID --value cron").stdout.strip()
    assert after not in (before, "0")
    with pytest.raises(LabError, match="exited 1"):  # nothing by that name: the fault says so
        faults.kill_process(flab, "w1", "no-such-process")


def test_cut_ssh_breaks_open_sessions_and_refuses_new_ones(flab: Lab) -> None:
    assert login(flab, "w1") == 0  # the helper logs in while SSH is up: its 255 below means refused
    session = subprocess.Popen(flab.ssh_argv("w1", "sleep 61"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while flab.console("w1", "pgrep -x -f 'sleep 61'").returncode != 0:  # the session is open and running
            assert time.monotonic() < deadline and session.poll() is None, "the SSH session never started"
        faults.cut_ssh(flab, "w1")
        assert session.wait(timeout=20) == 255  # the open connection broke
        assert login(flab, "w1") == 255  # refused
        assert flab.console("w1", "systemctl is-active ssh.service").stdout.strip() == "inactive"
    finally:
        if session.poll() is None:
            session.kill()
        faults.restore_ssh(flab, "w1")
    assert login(flab, "w1") == 0


def test_freeze_stops_the_host_and_thaw_resumes_it(flab: Lab) -> None:
    assert login(flab, "w1") == 0
    faults.freeze(flab, "w1")
    try:
        assert faults.frozen(flab, "w1")
        assert flab.is_running("w1")  # not powered off: every process is there, none runs
        assert flab.run("m1", "ping -c1 -W2 -q w1", check=False).returncode == 0  # the kernel still answers
        assert login(flab, "w1") != 0  # sshd never answers
    finally:
        faults.thaw(flab, "w1")
    assert not faults.frozen(flab, "w1")
    assert login(flab, "w1", timeout_s=10) == 0


def test_an_unknown_host_is_named(flab: Lab) -> None:
    for fault in (faults.POWER_OFF, faults.FREEZE):
        with pytest.raises(LabError, match="no host 'w9'"):
            fault.inject(flab, "w9")
