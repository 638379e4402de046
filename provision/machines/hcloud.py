"""`hcloud`: one Hetzner Cloud server per host (a private network and subnet with fixed addresses, the stack's SSH
key registered, cloud-init installing it for root with the generated host key; the disk is the server type's
own). keelson reaches the servers on their public IPv4; the node IP is the private address.

STAND-IN NOTE: tested with Pulumi mocks only (no cloud here); see provision/machines/cloud.py. The VIP must be an
alias IP of the masters on the private network for keepalived to move it (Hetzner routes alias IPs only where the
API puts them): not handled here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_hcloud as hcloud

from provision.machines.base import MachineSource, roles_of
from provision.machines.cloud import HostKey, plan_hosts
from provision.machines.cloud_init import public_key_of


@dataclass
class HcloudArgs:
    cluster: str
    hosts: Sequence[Mapping[str, Any]]
    private_key: pulumi.Input[str]  # secret
    location: str = "fsn1"
    server_type: str = "cx32"
    image: str = "debian-12"
    network: str = "10.20.0.0/16"
    subnet: str = "10.20.0.0/24"
    zone: str = "eu-central"


class HcloudMachines(MachineSource):
    def __init__(self, name: str, args: HcloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:machines:Hcloud", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        planned = plan_hosts(args.hosts, args.subnet)
        labels = {"keelson-cluster": args.cluster}
        net = hcloud.Network(f"{name}-net", name=f"{args.cluster}", ip_range=args.network, labels=labels, opts=child)
        subnet = hcloud.NetworkSubnet(
            f"{name}-subnet", network_id=net.id.apply(int), type="cloud", network_zone=args.zone,
            ip_range=args.subnet, opts=child,
        )  # fmt: skip
        ssh_key = hcloud.SshKey(
            f"{name}-key",
            name=f"{args.cluster}-keelson",
            public_key=pulumi.Output.unsecret(pulumi.Output.from_input(args.private_key).apply(public_key_of)),
            labels=labels,
            opts=child,
        )
        entries: list[pulumi.Output[dict[str, Any]]] = []
        known: list[pulumi.Output[str]] = []
        self.servers: dict[str, hcloud.Server] = {}
        for host in planned:
            key = HostKey.make(f"{name}-{host.name}-hostkey", self)
            server = hcloud.Server(
                f"{name}-{host.name}",
                name=f"{args.cluster}-{host.name}",
                server_type=args.server_type,
                image=args.image,
                location=args.location,
                ssh_keys=[ssh_key.id],
                user_data=key.user_data(args.cluster, host.name, args.private_key),
                networks=[hcloud.ServerNetworkArgs(network_id=net.id.apply(int), ip=host.address)],
                public_nets=[hcloud.ServerPublicNetArgs(ipv4_enabled=True, ipv6_enabled=True)],
                labels={**labels, "keelson-roles": "-".join(host.roles)},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[subnet]),
            )
            self.servers[host.name] = server
            entries.append(server.ipv4_address.apply(host.public_entry))
            known.append(key.known_hosts(server.ipv4_address))
        self.hosts = roles_of([{"name": h.name, "roles": h.roles} for h in planned])
        self.ssh_user = "root"
        self.inventory_hosts = pulumi.Output.all(*entries).apply(list)
        self.private_key = pulumi.Output.secret(args.private_key)
        self.known_hosts = pulumi.Output.all(*known).apply("".join)
        self.control_plane = pulumi.Output.from_input({})
        self._done()
