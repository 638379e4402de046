"""What a lab is made of: named hosts with roles and addresses. Pure; no root needed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from provision.lab.errors import LabError
from provision.lab.network import LabNetwork

NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
MAX_LBS = 9
MAX_WORKERS = 19 + 140


@dataclass(frozen=True)
class LabSpec:
    name: str = "lab"
    masters: int = 3
    workers: int = 2
    lbs: int = 0

    def validate(self) -> None:
        if not NAME.match(self.name):
            raise LabError(f"lab name {self.name!r}: use lower-case letters, digits and '-' (≤ 31, a letter first)")
        if self.masters not in (1, 3, 5):
            raise LabError(f"--masters {self.masters}: a keelson cluster has 3 or 5 masters (or 1, not HA)")
        if not 0 <= self.workers <= MAX_WORKERS or not 0 <= self.lbs <= MAX_LBS:
            raise LabError(f"at most {MAX_WORKERS} workers and {MAX_LBS} load balancers per lab")


@dataclass(frozen=True)
class LabHost:
    name: str
    role: str  # master | worker | lb
    address: str


def worker_octet(i: int) -> int:
    """Workers get .21-.39, then .110-.249 (the VIP is .100, masters .11-.19, load balancers .41-.49)."""
    return 21 + i if i < 19 else 110 + (i - 19)


def hosts_for(spec: LabSpec, net: LabNetwork) -> list[LabHost]:
    hosts = [LabHost(f"m{i + 1}", "master", str(net.address(11 + i))) for i in range(spec.masters)]
    hosts += [LabHost(f"w{i + 1}", "worker", str(net.address(worker_octet(i)))) for i in range(spec.workers)]
    hosts += [LabHost(f"lb{i + 1}", "lb", str(net.address(41 + i))) for i in range(spec.lbs)]
    return hosts
