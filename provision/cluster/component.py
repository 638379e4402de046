"""`KeelsonCluster`: the cluster as a Pulumi ComponentResource whose child resources run keelson's role phases.

    <name>-host-<h>     per host:  prepare hosts, container runtime   (per-host resources: a change to one host
    <name>-pki          cluster:   PKI (issues the operator state)      touches only that host's resources)
    <name>-etcd         cluster:   etcd
    <name>-lb           cluster:   the VIP and the load balancer
    …                   the Kubernetes groups once enabled (groups.py: KUBERNETES_PROVEN)
    <name>-backups      cluster:   the backup agent and timer
    <name>-kubeconfig   the admin kubeconfig (secret), from the cluster CA

The cluster-wide resources form a chain: each takes the operator state from the one before (a secret input) and
passes it on (a secret output), so the CA and keys made once stay in the stack, encrypted, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.dynamic

from provision.cluster import groups
from provision.cluster.groups import Group
from provision.cluster.kubeconfig import KubeconfigProvider
from provision.cluster.provider import PhaseGroupProvider


@dataclass(frozen=True)
class ClusterHost:
    """A host as the program knows it before any machine exists: its name and roles (one resource per host)."""

    name: str
    roles: tuple[str, ...]
    os: str = "linux"


@dataclass
class ClusterArgs:
    inventory: pulumi.Input[Mapping[str, Any]]  # the whole inventory, with the machines' hosts and addresses
    hosts: Sequence[ClusterHost]
    private_key: pulumi.Input[str]  # secret: the key every host accepts
    known_hosts: pulumi.Input[str]  # each host's key, from the machine source (never learnt off the network)
    env: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)  # secret: S3 credentials, sudo passwords
    groups: Sequence[Group] = field(default_factory=groups.enabled)


class PhaseGroup(pulumi.dynamic.Resource, module="keelson", name="PhaseGroup"):
    """One group of the apply plan's phases on some hosts (provider.py)."""

    fingerprint: pulumi.Output[str]
    phases: pulumi.Output[Mapping[str, str]]
    changed: pulumi.Output[Sequence[str]]
    state: pulumi.Output[Mapping[str, str]]

    def __init__(
        self,
        name: str,
        group: Group,
        hosts: Sequence[str],
        args: ClusterArgs,
        access: pulumi.Output[Any],
        state: pulumi.Input[Mapping[str, str]] | None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        props: dict[str, Any] = {
            "group": group.name,
            "hosts": list(hosts),
            "inventory": args.inventory,
            "access": access,
            "state": state,
            "chain": not group.per_host,
            "fingerprint": None,
            "phases": None,
            "changed": None,
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=["state", "access"])
        super().__init__(PhaseGroupProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret))


class AdminKubeconfig(pulumi.dynamic.Resource, module="keelson", name="AdminKubeconfig"):
    kubeconfig: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        inventory: pulumi.Input[Mapping[str, Any]],
        state: pulumi.Input[Mapping[str, str]],
        opts: pulumi.ResourceOptions,
    ) -> None:
        props = {"inventory": inventory, "state": state, "kubeconfig": None, "identity": None}
        secret = pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig", "state"])
        super().__init__(KubeconfigProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret))


def hosts_of(group: Group, hosts: Sequence[ClusterHost]) -> list[str]:
    """The hosts that get a resource of a per-host group (those its phases can select: Linux workers for `worker`,
    Windows hosts for `windows-worker`, every Linux host for `host` and `node`)."""
    return [h.name for h in hosts if h.os == group.os and (group.role is None or group.role in h.roles)]


class KeelsonCluster(pulumi.ComponentResource):
    """The cluster (see the module docstring). Outputs: `api_endpoint`, `nodes`, `kubeconfig` (secret).

    What the addons wait for (addons/cluster.py): `api_ready`, the resources after which the API answers through the
    VIP (the control plane: the Kubernetes provider is configured then, while the rest of the cluster is diffed or
    made), and `addons_ready`, those an addon's objects need done (every group's but the backup agent's: the nodes
    Ready on the pod network)."""

    api_endpoint: pulumi.Output[str]
    nodes: pulumi.Output[Any]
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keelson:cluster:Cluster", name, None, opts)
        access: pulumi.Output[dict[str, Any]] = pulumi.Output.secret(
            pulumi.Output.all(args.private_key, args.known_hosts, args.env).apply(_access)
        )
        self.resources: dict[str, PhaseGroup] = {}
        self.api_ready: list[pulumi.Resource] = []
        self.addons_ready: list[pulumi.Resource] = []
        state: pulumi.Output[Mapping[str, str]] | None = None
        pki_state: pulumi.Output[Mapping[str, str]] | None = None
        previous: list[pulumi.Resource] = []
        for group in args.groups:
            opts_ = pulumi.ResourceOptions(parent=self, depends_on=list(previous))
            made: list[pulumi.Resource] = []
            if group.per_host:
                for h in hosts_of(group, args.hosts):
                    resource_name = f"{name}-{group.name}-{h}"
                    self.resources[resource_name] = PhaseGroup(resource_name, group, [h], args, access, state, opts_)
                    made.append(self.resources[resource_name])
                previous = made or previous
            else:
                names = [h.name for h in args.hosts]
                resource = PhaseGroup(f"{name}-{group.name}", group, names, args, access, state, opts_)
                self.resources[f"{name}-{group.name}"] = resource
                state = resource.state
                pki_state = pki_state or (resource.state if group.name == "pki" else None)
                previous = made = [resource]
            self.api_ready += made if group.serves_api else []
            self.addons_ready += made if group.for_addons else []
        self.api_endpoint = pulumi.Output.from_input(args.inventory).apply(_endpoint)
        self.nodes = pulumi.Output.from_input(args.inventory).apply(_nodes)
        if pki_state is not None:
            kube = AdminKubeconfig(f"{name}-kubeconfig", args.inventory, pki_state, pulumi.ResourceOptions(parent=self))
            self.kubeconfig = pulumi.Output.secret(kube.kubeconfig)
        else:
            self.kubeconfig = pulumi.Output.secret("")
        if not self.api_ready:  # no group brings the API up (the Kubernetes groups off): wait for everything
            self.api_ready = list(self.resources.values())
        self.register_outputs({"api_endpoint": self.api_endpoint, "nodes": self.nodes, "kubeconfig": self.kubeconfig})


def _access(values: list[Any]) -> dict[str, Any]:
    return {"privateKey": values[0], "knownHosts": values[1], "env": dict(values[2] or {})}


def _endpoint(inventory: Mapping[str, Any]) -> str:
    from provision.cluster.workdir import cluster_from

    return f"https://{cluster_from(inventory).api_endpoint}"


def _nodes(inventory: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"name": h["name"], "address": str(h["address"]), "roles": list(h["roles"])} for h in inventory["hosts"]]
