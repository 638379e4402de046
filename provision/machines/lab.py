"""`lab`: the lab's systemd-nspawn hosts as a real Pulumi resource (provision/lab's Lab API): create boots the lab,
delete powers every host off and removes everything (`keelson lab down`), a changed size replaces it.

Its outputs are the hosts and their addresses, the lab's VIP and NIC, the known_hosts built from each host's own
key (read from its disk, as `keelson lab up` does) and the lab's private key as a secret. Needs root, like the lab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider

from provision.cluster import ClusterHost
from provision.cluster.provider import warm_up
from provision.machines.base import MachineSource

SPEC = ("lab", "masters", "workers", "lbs")
ROLE = {"master": "master", "worker": "worker", "lb": "lb"}


class LabFailed(Exception):
    """The lab could not be booted or removed: the lab's own message (what failed and how to clean up)."""


def _outputs(name: str) -> dict[str, Any]:
    from provision.lab.lab import Lab

    lab = Lab.load(name)
    return {
        "hosts": [{"name": h.name, "address": h.address, "roles": [ROLE[h.role]]} for h in lab.hosts],
        "vip": str(lab.net.vip),
        "interface": "host0",
        "knownHosts": lab.known_hosts_path.read_text(),
        "privateKey": lab.key_path.read_text(),
    }


class LabProvider(ResourceProvider):
    """Boots and removes a lab by name; holds nothing between calls."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        from provision.lab.errors import LabError
        from provision.lab.lab import Lab
        from provision.lab.paths import LabPaths
        from provision.lab.topology import LabSpec

        spec = LabSpec(str(props["lab"]), int(props["masters"]), int(props["workers"]), int(props["lbs"]))
        try:
            Lab.up(spec, inventory_out=LabPaths(spec.name).root / "inventory.yaml")
            outs = _outputs(spec.name)
        except LabError as exc:
            raise LabFailed(str(exc)) from None
        return CreateResult(id_=spec.name, outs={**props, **outs})

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        warm_up()  # the process's first call: the cluster's resources come next, and their diffs need the roles
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in SPEC if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=changed, stables=[], delete_before_replace=True)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from provision.lab.lab import Lab

        if id_ not in Lab.names():
            return ReadResult(id_="", outs={})  # gone: a refresh drops it from the stack
        return ReadResult(id_=id_, outs={**props, **_outputs(id_)})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        from provision.lab.errors import LabError
        from provision.lab.lab import Lab

        if id_ not in Lab.names():
            return  # already down
        try:
            Lab.load(id_).down()
        except LabError as exc:
            raise LabFailed(str(exc)) from None


class LabHosts(pulumi.dynamic.Resource, module="keelson", name="LabHosts"):
    hosts: pulumi.Output[list[dict[str, Any]]]
    vip: pulumi.Output[str]
    interface: pulumi.Output[str]
    knownHosts: pulumi.Output[str]  # camelCase: the outputs' names in the stack
    privateKey: pulumi.Output[str]

    def __init__(self, name: str, args: LabArgs, opts: pulumi.ResourceOptions) -> None:
        props = {
            "lab": args.lab,
            "masters": args.masters,
            "workers": args.workers,
            "lbs": args.lbs,
            "hosts": None,
            "vip": None,
            "interface": None,
            "knownHosts": None,
            "privateKey": None,
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["privateKey"])
        super().__init__(LabProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret))


@dataclass
class LabArgs:
    lab: str  # the lab's name (its bridge, subnet and state dir)
    masters: int = 3
    workers: int = 2
    lbs: int = 0


def planned_hosts(args: LabArgs) -> list[ClusterHost]:
    """The lab's hosts as provision/lab names them (m1…, w1…, lb1…), known before it boots."""
    hosts = [ClusterHost(f"m{i + 1}", ("master",)) for i in range(args.masters)]
    hosts += [ClusterHost(f"w{i + 1}", ("worker",)) for i in range(args.workers)]
    return hosts + [ClusterHost(f"lb{i + 1}", ("lb",)) for i in range(args.lbs)]


class LabMachines(MachineSource):
    def __init__(self, name: str, args: LabArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:machines:Lab", name, None, opts)
        lab = LabHosts(f"{name}-hosts", args, pulumi.ResourceOptions(parent=self))
        self.lab = lab
        self.hosts = planned_hosts(args)
        self.ssh_user = "root"
        self.inventory_hosts = lab.hosts
        self.private_key = pulumi.Output.secret(lab.privateKey)
        self.known_hosts = lab.knownHosts
        self.control_plane = pulumi.Output.all(lab.vip, lab.interface).apply(lambda v: {"vip": v[0], "interface": v[1]})
        self._done()
