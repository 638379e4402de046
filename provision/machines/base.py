"""What every machine source gives the cluster: the hosts (names and roles at once, addresses once the machines
exist), how to reach them (the SSH user, the private key as a secret, each host's own key for known_hosts) and,
where the source decides it, the control plane's VIP and NIC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from provision.cluster import ClusterHost

HostEntry = dict[str, Any]  # an inventory `hosts:` entry: name, address, roles (+ internal_address, labels, ssh)


class MachineSource(pulumi.ComponentResource):
    """Base of the sources: subclasses set the outputs below in their __init__ and call `_done()`."""

    hosts: Sequence[ClusterHost]  # known when the program runs: one cluster resource per host
    inventory_hosts: pulumi.Output[list[HostEntry]]
    private_key: pulumi.Output[str]  # secret
    known_hosts: pulumi.Output[str]
    ssh_user: str
    control_plane: pulumi.Output[Mapping[str, Any]]  # overrides of the inventory's control_plane ({} for none)

    def _done(self) -> None:
        self.register_outputs(
            {
                "hosts": self.inventory_hosts,
                "private_key": self.private_key,
                "known_hosts": self.known_hosts,
                "control_plane": self.control_plane,
            }
        )


def roles_of(entries: Sequence[Mapping[str, Any]]) -> list[ClusterHost]:
    return [ClusterHost(str(e["name"]), tuple(str(r) for r in e["roles"]), str(e.get("os", "linux"))) for e in entries]
