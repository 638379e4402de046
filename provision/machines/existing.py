"""`existing`: machines that are already there (bare metal, VMs made elsewhere), adopted by address from the
inventory file. Nothing is created or destroyed: the component only hands their addresses and access on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from provision.machines.base import MachineSource, roles_of


@dataclass
class ExistingArgs:
    hosts: Sequence[Mapping[str, Any]]  # the inventory's `hosts:` entries, as written
    ssh_user: str
    private_key: pulumi.Input[str]  # secret config: keelson:sshPrivateKey
    known_hosts: pulumi.Input[str]  # the hosts' keys (keelson:knownHosts, or the inventory's known_hosts file)


class ExistingMachines(MachineSource):
    def __init__(self, name: str, args: ExistingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:machines:Existing", name, None, opts)
        entries = [dict(h) for h in args.hosts]
        self.hosts = roles_of(entries)
        self.ssh_user = args.ssh_user
        self.inventory_hosts = pulumi.Output.from_input(entries)
        self.private_key = pulumi.Output.secret(args.private_key)
        self.known_hosts = pulumi.Output.from_input(args.known_hosts)
        self.control_plane = pulumi.Output.from_input({})
        self._done()
