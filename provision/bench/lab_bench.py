"""`keelson bench lab --hosts N`: boot N hosts until each accepts an SSH login (rootfs cached), and their idle memory.

boot_s            from `Lab.up` to the moment the last host ran a command over SSH (a login with the lab's key and
                  strict host keys, `true` exiting 0; an sshd banner alone does not count)
mem_mib_per_host  the idle host's memcg usage minus its inactive file cache (its working set), mean over hosts
banner_s          (for comparison) until every sshd sent its banner, which is when `Lab.up` returns
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from provision.lab import Lab, LabSpec
from provision.lab.errors import LabError
from provision.lab.rootfs import ensure_base

LOGIN_DEADLINE_S = 120.0


def logged_in(lab: Lab, host: str, deadline: float) -> float:
    """Retry a login on `host` until one runs `true`; returns the monotonic moment it did."""
    while True:
        if lab.run(host, "true", check=False, timeout=30).returncode == 0:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise LabError(f"{host}: no SSH login within {LOGIN_DEADLINE_S:.0f} s of the lab's start")
        time.sleep(0.05)


def spec_for(hosts: int, name: str) -> LabSpec:
    masters = 5 if hosts >= 5 else (3 if hosts >= 3 else 1)
    return LabSpec(name=name, masters=masters, workers=hosts - masters)


def bench_lab(hosts: int, name: str = "bench-lab") -> dict[str, Any]:
    ensure_base()  # a cached rootfs is part of the setup, not of the figure
    if name in Lab.names():
        Lab.load(name).down()
    with tempfile.TemporaryDirectory(prefix="keelson-bench-lab-") as work:
        return _bench_lab(hosts, name, Path(work) / "lab.yaml")


def _bench_lab(hosts: int, name: str, inventory: Path) -> dict[str, Any]:
    started = time.monotonic()
    lab = Lab.up(spec_for(hosts, name), inventory_out=inventory)
    banner_s = time.monotonic() - started  # `Lab.up` returns once every sshd sent its banner
    try:
        deadline = started + LOGIN_DEADLINE_S
        with ThreadPoolExecutor(max_workers=min(32, hosts)) as pool:
            moments = list(pool.map(lambda h: logged_in(lab, h.name, deadline), lab.hosts))
        boot_s = max(moments) - started
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # idle = systemd says the boot is done on every host
            states = {lab.run(h.name, "systemctl is-system-running", check=False).stdout.strip() for h in lab.hosts}
            if states <= {"running", "degraded"}:
                break
            time.sleep(0.2)
        mem = lab.memory_mib()
    finally:
        lab.down()
    return {
        "hosts": hosts,
        "boot_s": round(boot_s, 2),
        "mem_mib_per_host": round(statistics.mean(mem.values()), 1),
        "banner_s": round(banner_s, 2),
    }
