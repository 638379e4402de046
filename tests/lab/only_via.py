"""An operator machine that reaches the lab only through one bastion host: a network namespace of its own whose one
link is a veth pair into the bastion's container (a second address there). The lab's bridge, routes and the
machine's firewall are untouched; nothing in the namespace routes to the other hosts, and the bastion (its own
network namespace, ip_forward off) forwards nothing. Deleting the namespace deletes both ends of the pair."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from provision.lab import Lab

OPERATOR_IP = "10.254.15.1"
BASTION_IP = "10.254.15.2"


def _ip(*args: str, netns: str | None = None, pid: int | None = None) -> None:
    argv = ["ip", *args]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    if pid is not None:
        argv = ["nsenter", "-t", str(pid), "-n", *argv]
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class OnlyVia:
    netns: str
    bastion_ip: str

    def argv(self, *argv: str) -> list[str]:
        """`argv` run inside the operator namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def tcp_reaches(self, address: str, port: int = 22) -> bool:
        probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=3)"
        proc = subprocess.run(self.argv("python3", "-c", probe), capture_output=True, check=False, timeout=30)
        return proc.returncode == 0


@contextlib.contextmanager
def operator_behind(lab: Lab, bastion: str) -> Iterator[OnlyVia]:
    """A namespace that reaches `bastion` (at BASTION_IP) and nothing else; removed on exit."""
    pid = lab._init_pid(bastion)  # the container's init: its network namespace is the bastion's
    assert pid is not None, f"{bastion} is not running"
    tag = f"{os.getpid() % 100000}"
    netns, outer, inner = f"kops{tag}", f"vko{tag}", f"vki{tag}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", outer, "netns", netns)
        _ip("link", "set", inner, "netns", str(pid))
        _ip("addr", "add", f"{OPERATOR_IP}/30", "dev", outer, netns=netns)
        _ip("link", "set", outer, "up", netns=netns)
        _ip("link", "set", "lo", "up", netns=netns)
        _ip("addr", "add", f"{BASTION_IP}/30", "dev", inner, pid=pid)
        _ip("link", "set", inner, "up", pid=pid)
        yield OnlyVia(netns, BASTION_IP)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)  # the veth pair goes with it
        subprocess.run(["ip", "link", "del", outer], check=False, capture_output=True)  # if it never moved
