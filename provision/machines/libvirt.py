"""`libvirt`: one KVM domain per host on a libvirt host (a NAT network with fixed addresses, a disk cloned from a
Debian cloud image, a cloud-init disk installing the stack's SSH key and the generated host key).

STAND-IN NOTE: tested with Pulumi mocks only (no hypervisor here); see provision/machines/cloud.py.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_libvirt as libvirt

from provision.machines.base import MachineSource, roles_of
from provision.machines.cloud import HostKey, PlannedHost, plan_hosts


@dataclass
class LibvirtArgs:
    cluster: str
    hosts: Sequence[Mapping[str, Any]]  # the inventory's hosts: names, roles (internal_address kept if set)
    private_key: pulumi.Input[str]  # secret: root's authorized key is derived from it
    image: str = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
    pool: str = "default"
    network: str = "10.17.0.0/24"
    memory_mib: int = 4096
    vcpus: int = 2
    disk_gib: int = 20


class LibvirtMachines(MachineSource):
    def __init__(self, name: str, args: LibvirtArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:machines:Libvirt", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        planned = plan_hosts(args.hosts, args.network)
        net = libvirt.Network(
            f"{name}-net", name=f"{args.cluster}-net", mode="nat", addresses=[args.network], autostart=True, opts=child
        )
        base = libvirt.Volume(f"{name}-base", name=f"{args.cluster}-base.qcow2", pool=args.pool, source=args.image,
                              format="qcow2", opts=child)  # fmt: skip
        entries: list[pulumi.Output[dict[str, Any]]] = []
        known: list[pulumi.Output[str]] = []
        self.domains: dict[str, libvirt.Domain] = {}
        for host in planned:
            key = HostKey.make(f"{name}-{host.name}-hostkey", self)
            disk = libvirt.Volume(
                f"{name}-{host.name}-disk",
                name=f"{args.cluster}-{host.name}.qcow2",
                pool=args.pool,
                base_volume_id=base.id,
                size=args.disk_gib * 2**30,
                opts=child,
            )
            seed = libvirt.CloudInitDisk(
                f"{name}-{host.name}-cloudinit",
                name=f"{args.cluster}-{host.name}-cloudinit.iso",
                pool=args.pool,
                user_data=key.user_data(args.cluster, host.name, args.private_key),
                opts=child,
            )
            domain = libvirt.Domain(
                f"{name}-{host.name}",
                name=f"{args.cluster}-{host.name}",
                memory=args.memory_mib,
                vcpu=args.vcpus,
                cloudinit=seed.id,
                disks=[libvirt.DomainDiskArgs(volume_id=disk.id)],
                network_interfaces=[
                    libvirt.DomainNetworkInterfaceArgs(
                        network_id=net.id, hostname=host.name, addresses=[host.address], wait_for_lease=True
                    )
                ],
                autostart=True,
                opts=child,
            )
            self.domains[host.name] = domain
            entries.append(domain.id.apply(functools.partial(_entry, host)))
            known.append(key.known_hosts(host.address))
        self.hosts = roles_of([{"name": h.name, "roles": h.roles} for h in planned])
        self.ssh_user = "root"
        self.inventory_hosts = pulumi.Output.all(*entries).apply(list)
        self.private_key = pulumi.Output.secret(args.private_key)
        self.known_hosts = pulumi.Output.all(*known).apply("".join)
        self.control_plane = pulumi.Output.from_input({})
        self._done()


def _entry(host: PlannedHost, _domain_id: str) -> dict[str, Any]:
    return host.entry(host.address)  # once the domain exists: keelson reaches it on its fixed address
