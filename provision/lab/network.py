"""The lab's private network: one bridge and one /24 out of 198.18.0.0/15 per lab (the benchmarking range).

Several labs coexist on one machine (a user's lab and each test area's): the lab named `lab` gets 198.18.0.0/24
when it is free, others the lowest free /24. The allocation is recorded in one registry file under a lock.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provision.lab.errors import LabError
from provision.lab.paths import lab_root

MAX_LABS = 256
VIP_OCTET = 100


@dataclass(frozen=True)
class LabNetwork:
    index: int

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        base = int(ipaddress.IPv4Address("198.18.0.0")) + (self.index << 8)
        return ipaddress.IPv4Network((base, 24))

    def address(self, octet: int) -> ipaddress.IPv4Address:
        return self.subnet.network_address + octet

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.address(1)

    @property
    def vip(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.address(VIP_OCTET)}/24")

    @property
    def bridge(self) -> str:
        return f"kl{self.index}"

    def machine(self, host: str) -> str:
        """The nspawn machine name; its veth is `vb-<machine>`, so it is short and unique across labs."""
        return f"k{self.index}{host}"


@contextmanager
def _registry() -> Iterator[dict[str, int]]:
    root = lab_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = root / "networks.json"
    with open(root / ".networks.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        yield data
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)


def pick_index(taken: set[int], name: str) -> int:
    if name == "lab" and 0 not in taken:
        return 0
    for index in range(1, MAX_LABS):
        if index not in taken:
            return index
    raise LabError(f"no free lab network: {MAX_LABS - 1} labs exist", hint="keelson lab down --name … some of them")


# One lock for the whole machine: labs under different KEELSON_LAB_ROOTs have their own registries but share the
# bridge names and subnets. Seen without it: two roots' labs picked index 1 at the same moment, and SSH to one
# lab's m1 reached the other's (a changed host key).
MACHINE_LOCK = Path("/run/lock/keelson-lab-networks.lock")


@contextmanager
def _machine_lock() -> Iterator[None]:
    MACHINE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(MACHINE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def allocate(name: str) -> LabNetwork:
    """The lab's network, its bridge made before the machine-wide lock is released: a lab under another root then
    sees the index taken."""
    with _machine_lock(), _registry() as reg:
        if name not in reg:  # a bridge we did not record (another KEELSON_LAB_ROOT, a crash) is taken too
            reg[name] = pick_index(set(reg.values()) | bridge_indexes(links()), name)
        net = LabNetwork(reg[name])
        ensure_bridge(net)
        return net


def bridge_indexes(link_names: list[str]) -> set[int]:
    """Lab indexes whose bridge (`kl<index>`) exists on the machine."""
    return {int(n[2:]) for n in link_names if n.startswith("kl") and n[2:].isdigit()}


def links() -> list[str]:
    out = _ip("-o", "link", "show").stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.count(":") >= 2]


def release(name: str) -> None:
    with _registry() as reg:
        reg.pop(name, None)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def link_exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


def ensure_bridge(net: LabNetwork) -> None:
    if not link_exists(net.bridge):
        _ip("link", "add", net.bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0")
    addrs = _ip("-o", "-4", "addr", "show", "dev", net.bridge).stdout
    if f" {net.gateway}/24 " not in addrs:
        _ip("addr", "add", f"{net.gateway}/24", "dev", net.bridge)
    _ip("link", "set", net.bridge, "up")


def delete_link(name: str) -> None:
    if link_exists(name):
        _ip("link", "del", name, check=False)
