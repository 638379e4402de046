"""What the machine itself needs before a lab can boot: root, the host packages, inotify limits (LAB.md §1, §3)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from provision.lab.errors import LabError

log = logging.getLogger(__name__)

HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (it mounts overlays, makes a bridge and boots containers)",
            hint="run it as root, e.g. sudo -E uv run keelson lab up",
        )


def missing_host_packages() -> list[str]:
    return sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})


def ensure_host_packages() -> None:
    missing = missing_host_packages()
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if shutil.which("apt-get") is None:
        raise LabError(f"missing host packages: {', '.join(missing)}", hint=" ".join(command))
    log.info("installing host packages: %s", " ".join(missing))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-q"], command):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise LabError(f"`{' '.join(argv)}` failed: {proc.stderr.strip()[-500:]}", hint=" ".join(command))


def raise_inotify_limits() -> None:
    """About 7 inotify instances per idle host, all as root: the default 128 runs out near 20 hosts."""
    for key, want in (("max_user_instances", 8192), ("max_user_watches", 1048576)):
        path = Path("/proc/sys/fs/inotify") / key
        if int(path.read_text()) < want:
            path.write_text(str(want))
