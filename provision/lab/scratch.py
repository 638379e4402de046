"""Scratch hosts: one host of a lab of its own, for `keelson verify` to restore a backup into — never a host of the
cluster being verified. Booted by the lab's own machinery (`Lab.up`, one master-shaped host), torn down when the
block ends, whether it ends well or not."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from inventory.model import Cluster, Host
from provision.lab.errors import LabError
from provision.lab.topology import NAME


@dataclass(frozen=True)
class ScratchHost:
    cluster: Cluster  # the scratch lab's own inventory (its SSH key and known_hosts)
    host: Host
    lab: str  # the scratch lab's name
    boot_s: float


class ScratchBusy(LabError):
    """A lab of the scratch name is there already: an earlier verify was killed before it could take it down."""


def unavailable() -> str | None:
    """Why no scratch lab can boot on this machine (None: it can). Checked before anything is booted or installed:
    `keelson lab up` installs missing host packages, a verify does not."""
    from provision.lab.host_setup import missing_host_packages

    if os.geteuid() != 0:
        return "the scratch lab needs root (it mounts overlays and boots systemd-nspawn containers)"
    missing = missing_host_packages()
    if missing:
        return f"missing host packages {', '.join(missing)} (`keelson lab up` installs them)"
    if not Path("/sys/fs/cgroup/cgroup.procs").exists() and not Path("/sys/fs/cgroup/unified/cgroup.procs").exists():
        return "no cgroup v2 hierarchy"
    return None


def scratch_name(cluster_name: str) -> str:
    """`<cluster>-scratch`, cut to a valid lab name (≤ 31 characters, a letter first)."""
    base = re.sub(r"[^a-z0-9-]", "-", cluster_name.lower())[:23].strip("-")
    name = f"{base}-scratch"
    return name if NAME.match(name) else "keelson-scratch"


@contextmanager
def lab_scratch(cluster: Cluster, work: Path) -> Iterator[ScratchHost]:
    """Boot the scratch host of `cluster`'s verify (lab `<cluster>-scratch`, one host), yield it, take it down."""
    from inventory.loader import load_inventory
    from provision.lab import Lab, LabSpec

    name = scratch_name(cluster.name)
    if name in Lab.names():
        raise ScratchBusy(
            f"a lab named {name!r} is running already (left by an interrupted verify?)",
            hint=f"keelson lab down --name {name}",
        )
    started = time.monotonic()
    try:
        lab = Lab.up(LabSpec(name=name, masters=1, workers=0), inventory_out=work / f"{name}.yaml")
        scratch = load_inventory(lab.inventory_path)
        yield ScratchHost(scratch, scratch.hosts[0], name, round(time.monotonic() - started, 3))
    finally:
        if name in Lab.names():
            Lab.load(name).down()
