"""Run the `keelson` CLI as a user does (its own process, the installed console script) and measure it: wall time,
and the CPU the process used (user + system, its children included, from the kernel's rusage at wait4)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from provision.bench import BenchError


@dataclass(frozen=True)
class CliRun:
    argv: list[str]
    rc: int
    wall_s: float
    user_s: float
    sys_s: float
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def check(self) -> CliRun:
        if self.rc != 0:
            tail = (self.stderr.strip() or self.stdout.strip())[-800:]
            raise BenchError(f"`{' '.join(self.argv)}` exited {self.rc}: {tail}")
        return self


def keelson_argv() -> list[str]:
    """The console script installed beside this interpreter (what `keelson` on a user's PATH is), else `-m`."""
    script = Path(sys.executable).parent / "keelson"
    return [str(script)] if script.exists() else [sys.executable, "-m", "keelson"]


def run_keelson(*args: str, env: Mapping[str, str] | None = None, timeout: float = 1800) -> CliRun:
    argv = [*keelson_argv(), *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(env or os.environ))
        killer = threading.Timer(timeout, proc.kill)  # a hung run is killed; its rc then says so
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (threads and children included)
            wall = time.monotonic() - started
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: the timer no longer signals it
        finally:
            killer.cancel()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        return CliRun(argv, proc.returncode, wall, usage.ru_utime, usage.ru_stime, stdout, stderr)
