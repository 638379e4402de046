"""What the cloud and virtualisation sources share: each host's private address and its generated host key.

STAND-IN NOTE: no cloud or hypervisor is reachable from this machine. The sources are written against the real
providers' resource types (pulumi-libvirt, pulumi-hcloud, pulumi-tls) and tested with `pulumi.runtime.set_mocks`
(tests/pulumi/test_machines_mocked.py); they have not created a real machine here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_tls as tls

from inventory.errors import KeelsonError
from provision.machines.cloud_init import CloudInit, known_hosts_line, public_key_of


@dataclass(frozen=True)
class PlannedHost:
    name: str
    roles: tuple[str, ...]
    address: str  # on the private network the source makes

    def entry(self, address: str, internal: bool = False) -> dict[str, Any]:
        """The inventory entry: reached at `address`; the private address is the node IP when `internal`."""
        extra = {"internal_address": self.address} if internal else {}
        return {"name": self.name, "address": address, "roles": list(self.roles), **extra}

    def public_entry(self, public_ip: str) -> dict[str, Any]:
        """Reached on its public address; the private one is the node IP."""
        return self.entry(public_ip, internal=True)


def plan_hosts(entries: Sequence[Mapping[str, Any]], subnet: str, first: int = 10) -> list[PlannedHost]:
    """Each inventory host with its `internal_address` if it has one in `subnet`, else the next free one from .first."""
    net = ipaddress.IPv4Network(subnet)
    taken = {str(e["internal_address"]) for e in entries if e.get("internal_address")}
    free = (str(ip) for ip in list(net.hosts())[first - 1 :] if str(ip) not in taken)
    planned = []
    for e in entries:
        fixed = e.get("internal_address")
        if fixed and ipaddress.IPv4Address(str(fixed)) not in net:
            raise KeelsonError(f"hosts.{e['name']}.internal_address {fixed} is outside the source's network {subnet}")
        try:
            address = str(fixed) if fixed else next(free)
        except StopIteration:
            raise KeelsonError(f"network {subnet} has no free address left for {e['name']}") from None
        planned.append(PlannedHost(str(e["name"]), tuple(str(r) for r in e["roles"]), address))
    return planned


@dataclass(frozen=True)
class HostKey:
    key: tls.PrivateKey

    @classmethod
    def make(cls, name: str, parent: pulumi.Resource) -> HostKey:
        return cls(tls.PrivateKey(name, algorithm="ED25519", opts=pulumi.ResourceOptions(parent=parent)))

    def user_data(self, cluster: str, host: str, stack_key: pulumi.Input[str]) -> pulumi.Output[str]:
        parts = pulumi.Output.all(stack_key, self.key.private_key_openssh, self.key.public_key_openssh)
        return pulumi.Output.secret(
            parts.apply(lambda v: CloudInit(cluster, host, public_key_of(v[0]), v[1], v[2]).user_data())
        )

    def known_hosts(self, address: pulumi.Input[str]) -> pulumi.Output[str]:
        return pulumi.Output.all(address, self.key.public_key_openssh).apply(lambda v: known_hosts_line(v[0], v[1]))
