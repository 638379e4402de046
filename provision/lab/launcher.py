"""One lab host's power supply: a restart loop around systemd-nspawn (run as its own session, by pid on record).

    python -m provision.lab.launcher LAB HOST ROOT MACHINE BRIDGE

rc 133 from nspawn means the container rebooted: boot it again. Anything else (poweroff, `lab kill`) ends the loop.
SIGTERM asks nspawn for a clean poweroff. Only nspawn is moved into the host's cgroups, never this loop, so
cgroup.kill on the host cannot hit it (LAB.md pitfall 2). The options that let a host run nested containers
(own cgroups, capabilities, system calls, plain disk folders) come from provision/lab/node.py.
Imports stay minimal: twenty of these start at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from provision.lab import cgroups, node

REBOOT_RC = 133


def nspawn_argv(root: str, machine: str, bridge: str, extra: list[str]) -> list[str]:
    return [
        "systemd-nspawn",
        "-D",
        root,
        "-M",
        machine,
        "--boot",
        "--register=no",
        "--keep-unit",
        f"--network-bridge={bridge}",
        "--console=passive",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
        *extra,
    ]


def main(argv: list[str]) -> int:
    lab, host, root, machine, bridge = argv
    loop = _Loop()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        loop.stop = True
        if loop.child is not None and loop.child.poll() is None:
            loop.child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    extra = node.prepare(lab, host, Path(root).parent)
    rc = 0
    while not loop.stop:
        cgroups.make_host_dirs(lab, host)
        child = subprocess.Popen(
            nspawn_argv(root, machine, bridge, extra),
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: cgroups.enter(lab, host),  # noqa: PLW1509 - this launcher has one thread
        )
        loop.child = child
        rc = child.wait()
        print(f"{time.strftime('%H:%M:%S')} {host}: nspawn exited rc={rc}", flush=True)
        _reap(lab, host)
        if rc != REBOOT_RC:
            break
    return 0 if rc in (0, REBOOT_RC) or loop.stop else rc


@dataclass
class _Loop:
    stop: bool = False
    child: subprocess.Popen[bytes] | None = None


def _reap(lab: str, host: str) -> None:
    """Whatever nspawn left in the host's cgroups goes too, so a reboot starts clean."""
    if not cgroups.populated(lab, host):
        return
    cgroups.kill(lab, host)
    deadline = time.monotonic() + 10
    while cgroups.populated(lab, host) and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
