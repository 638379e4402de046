"""Lab faults: every way tests and benches break a lab host, and how each is undone. The one home for them.

Each inject function returns the wall-clock moment (`time.time()`) the fault took effect — a fault run on the host
reports the host's own `$EPOCHREALTIME` (lab hosts share this machine's clock), so a measurement does not include
starting ssh. Each undo waits until the host is back as it was (a condition with a deadline, never a sleep).

    power_off / power_on       every process of the host SIGKILLed at once (cgroup.kill) / boot it again
    stop_unit / start_unit     `systemctl stop UNIT` / `systemctl start UNIT`
    kill_process / wait_process  SIGKILL every process named NAME / wait until NAME runs again (its unit restarts it)
    cut_ssh / restore_ssh      sshd stopped and its sessions killed (open connections break) / sshd started again
    freeze / thaw              every process of the host stopped (cgroup v2 cgroup.freeze): no CPU, no answers, while
                               the kernel still answers ping / running again

`FAULTS` names them as `Fault`s (inject + undo) for code that loops over faults.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provision.lab import cgroups
from provision.lab.errors import LabError
from roles.engine.waiting import until

if TYPE_CHECKING:
    from provision.lab.lab import Lab

STOP_DEADLINE_S = 10.0
BACK_DEADLINE_S = 30.0
POLL_S = 0.05


def _on_host(lab: Lab, host: str, command: str) -> float:
    """Run `command` on the host over SSH; the moment is the host's clock right before it."""
    out = lab.run(host, f"echo $EPOCHREALTIME; {command}").stdout.split()
    return float(out[0])


def _wait(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    if until(condition, timeout_s=deadline_s, every_s=POLL_S) is None:
        raise LabError(f"{what}: not within {deadline_s:.0f} s")


# -- power ---------------------------------------------------------------------------------------------------
def power_off(lab: Lab, host: str) -> float:
    """Hard power-off: every process of the host SIGKILLed at once (SIGKILL on nspawn alone orphans the container)."""
    lab.host(host)  # an unknown host is a LabError naming the lab's hosts
    moment = time.time()
    cgroups.kill(lab.name, host)
    _wait(lambda: not lab.is_running(host), STOP_DEADLINE_S, f"{host}: still running after cgroup.kill")
    return moment


def power_on(lab: Lab, host: str) -> None:
    """Boot the host again (same disk, same host key) and wait until it accepts SSH."""
    lab.start(host)


# -- units and processes -------------------------------------------------------------------------------------
def stop_unit(lab: Lab, host: str, unit: str) -> float:
    return _on_host(lab, host, f"systemctl stop {shlex.quote(unit)}")


def start_unit(lab: Lab, host: str, unit: str) -> None:
    lab.run(host, f"systemctl start {shlex.quote(unit)}")


def kill_process(lab: Lab, host: str, name: str) -> float:
    """SIGKILL every process whose name is exactly `name` (fails if there is none)."""
    return _on_host(lab, host, f"pkill -KILL -x {shlex.quote(name)}")


def process_running(lab: Lab, host: str, name: str) -> bool:
    return lab.run(host, f"pgrep -x {shlex.quote(name)}", check=False, timeout=10).returncode == 0


def wait_process(lab: Lab, host: str, name: str, deadline_s: float = BACK_DEADLINE_S) -> None:
    """The undo of kill_process for a process its unit restarts (Restart=always/on-failure): wait until it runs."""
    _wait(lambda: process_running(lab, host, name), deadline_s, f"{host}: {name} not running again")


# -- SSH -----------------------------------------------------------------------------------------------------
SSH_UNITS = "ssh.service ssh.socket"


def cut_ssh(lab: Lab, host: str) -> float:
    """Stop sshd and SIGKILL its sessions: open connections break, new ones are refused. Runs through the host's
    console (nsenter), since SSH is what goes away."""
    moment = time.time()
    proc = lab.console(host, f"systemctl stop {SSH_UNITS}; pkill -KILL -f '^sshd:'; true")
    if proc.returncode != 0:
        raise LabError(f"{host}: cannot stop sshd: {proc.stderr.strip()[-300:]}")
    return moment


def restore_ssh(lab: Lab, host: str, deadline_s: float = BACK_DEADLINE_S) -> None:
    """Start sshd again and wait until a login works."""
    proc = lab.console(host, "systemctl start ssh.service")
    if proc.returncode != 0:
        raise LabError(f"{host}: cannot start sshd: {proc.stderr.strip()[-300:]}")
    _wait(lambda: lab.run(host, "true", check=False, timeout=10).returncode == 0, deadline_s, f"{host}: no SSH login")


# -- freezing ------------------------------------------------------------------------------------------------
def _freezer(lab: Lab, host: str) -> Path:
    lab.host(host)
    folder = cgroups.v2_dir(lab.name, host)
    if folder is None or not (folder / "cgroup.freeze").exists():
        raise LabError(f"{host}: no cgroup.freeze on this kernel", hint="cgroup v2 (Linux ≥ 5.2)")
    return folder


def frozen(lab: Lab, host: str) -> bool:
    events = (_freezer(lab, host) / "cgroup.events").read_text()
    return "frozen 1" in events.splitlines()


def freeze(lab: Lab, host: str) -> float:
    """Stop every process of the host (cgroup v2 freezer); returns once the kernel says the cgroup is frozen."""
    folder = _freezer(lab, host)
    moment = time.time()
    (folder / "cgroup.freeze").write_text("1")
    _wait(lambda: frozen(lab, host), STOP_DEADLINE_S, f"{host}: not frozen")
    return moment


def thaw(lab: Lab, host: str) -> None:
    (_freezer(lab, host) / "cgroup.freeze").write_text("0")
    _wait(lambda: not frozen(lab, host), STOP_DEADLINE_S, f"{host}: still frozen")


# -- as values -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """One fault and its undo, for code that loops over faults (the VIP bench, parametrized tests)."""

    name: str
    inject: Callable[[Lab, str], float]
    undo: Callable[[Lab, str], None]


def unit_stopped(unit: str) -> Fault:
    return Fault(
        f"stop {unit}", lambda lab, host: stop_unit(lab, host, unit), lambda lab, host: start_unit(lab, host, unit)
    )


def process_killed(name: str) -> Fault:
    """SIGKILL `name`; the undo waits for its unit to restart it."""
    return Fault(
        f"kill {name}",
        lambda lab, host: kill_process(lab, host, name),
        lambda lab, host: wait_process(lab, host, name),
    )


POWER_OFF = Fault("power off", power_off, power_on)
CUT_SSH = Fault("cut ssh", cut_ssh, restore_ssh)
FREEZE = Fault("freeze", freeze, thaw)
