"""`keelson bench lab --hosts N`: boot N hosts to SSH-ready with the rootfs cached, and their idle memory."""

from __future__ import annotations

import statistics
import time
from typing import Any

from provision.lab import Lab, LabSpec
from provision.lab.rootfs import ensure_base


def bench_lab(hosts: int, name: str = "bench-lab") -> dict[str, Any]:
    ensure_base()  # a cached rootfs is part of the setup, not of the figure
    if name in Lab.names():
        Lab.load(name).down()
    masters = 5 if hosts >= 5 else (3 if hosts >= 3 else 1)
    spec = LabSpec(name=name, masters=masters, workers=hosts - masters)
    started = time.monotonic()
    lab = Lab.up(spec)
    boot_s = time.monotonic() - started
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # idle = systemd says the boot is done on every host
            states = {lab.run(h.name, "systemctl is-system-running", check=False).stdout.strip() for h in lab.hosts}
            if states <= {"running", "degraded"}:
                break
            time.sleep(0.2)
        mem = lab.memory_mib()
    finally:
        lab.down()
    return {"hosts": hosts, "boot_s": round(boot_s, 2), "mem_mib_per_host": round(statistics.mean(mem.values()), 1)}
