"""Per-host cgroups: nspawn (not our launcher) goes into `keelson-lab/<lab>/<host>` in every hierarchy we can use.

That gives each host its own cgroup.kill (hard power-off), its own memory numbers, and no payload cgroups shared
between hosts (LAB.md pitfall 2). Works on the hybrid layout of this machine and on pure cgroup v2.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from provision.lab.errors import LabError

CG = Path("/sys/fs/cgroup")
TOP = "keelson-lab"


def _own_memory_cgroup() -> str | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
    return None


def host_dirs(lab: str, host: str) -> list[Path]:
    """Every cgroup dir that holds host `host` of lab `lab`."""
    rel = Path(TOP) / lab / host
    if (CG / "cgroup.controllers").exists():  # pure cgroup v2
        return [CG / rel]
    dirs = [CG / h / rel for h in ("unified", "systemd") if (CG / h).is_dir()]
    mem = _own_memory_cgroup()
    if mem is not None and (CG / "memory").is_dir():
        dirs.append(CG / "memory" / mem.lstrip("/") / rel)  # nested under our own memcg: accounting only
    return dirs


def v2_dir(lab: str, host: str) -> Path | None:
    """The cgroup-v2 dir of a host (it has cgroup.kill and cgroup.freeze)."""
    return next((d for d in host_dirs(lab, host) if (d / "cgroup.kill").exists() or "unified" in d.parts), None)


def enter(lab: str, host: str) -> None:
    """Move the calling process into the host's cgroups (run in the child right before it execs nspawn)."""
    pid = str(os.getpid())
    for d in host_dirs(lab, host):
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.procs").write_text(pid)


def populated(lab: str, host: str) -> bool:
    d = v2_dir(lab, host)
    if d is None or not (d / "cgroup.events").exists():
        return False
    return "populated 1" in (d / "cgroup.events").read_text()


def kill(lab: str, host: str) -> None:
    """SIGKILL every process of the host at once (SIGKILL on nspawn alone would orphan the container)."""
    d = v2_dir(lab, host)
    if d is None or not (d / "cgroup.kill").exists():
        raise LabError(f"{host}: no cgroup.kill on this kernel", hint="cgroup v2 with cgroup.kill (Linux ≥ 5.14)")
    if populated(lab, host):
        (d / "cgroup.kill").write_text("1")


def memory_bytes(lab: str, host: str) -> int | None:
    """Working set of the host: memcg usage minus inactive page cache (what `docker stats` reports)."""
    for d in host_dirs(lab, host):
        usage = d / "memory.usage_in_bytes"
        if usage.exists():
            stat = dict(line.split() for line in (d / "memory.stat").read_text().splitlines())
            return max(0, int(usage.read_text()) - int(stat.get("total_inactive_file", 0)))
        current = d / "memory.current"
        if current.exists():
            stat = dict(line.split() for line in (d / "memory.stat").read_text().splitlines())
            return max(0, int(current.read_text()) - int(stat.get("inactive_file", 0)))
    return None


def remove(lab: str, host: str) -> None:
    """Remove the host's (empty) cgroup trees depth-first, then the lab's dir if it became empty."""
    for d in host_dirs(lab, host):
        if not d.exists():
            continue
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir(sub)
        _rmdir(d)
        _rmdir(d.parent)
        _rmdir(d.parent.parent)


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (another host or lab) or already gone
        path.rmdir()
