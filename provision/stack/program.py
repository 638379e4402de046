"""The Pulumi program: stack settings → the inventory → a machine source → the cluster → its addons → the outputs.

Outputs: `apiEndpoint` (https://VIP:port), `nodes` (name, address, roles), `kubeconfig` (secret, from keelson's
cluster CA), `addons` (the addons installed, addons/cluster.py). A user error (a bad setting, an invalid inventory,
an addon this version does not install) stops the program with its message, no traceback, before anything changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from addons.cluster import ClusterAddons, ClusterAddonsArgs, refuse_unbuilt, wanted
from inventory.errors import KeelsonError
from inventory.loader import load_inventory
from inventory.model import Cluster
from provision.artifacts.catalog import release
from provision.cluster import ClusterArgs, KeelsonCluster
from provision.cluster.provider import freeze_at_exit
from provision.machines.base import HostEntry, MachineSource
from provision.stack.engine_log import send_from_thread
from provision.stack.settings import SettingsError, StackSettings, grafana_password, secret_env

# Placeholders in the inventory the program passes on: each run puts its private copy of the key and known_hosts
# in their place (provision/cluster/workdir.py).
KEY_PLACEHOLDER = "(keelson:sshPrivateKey, written for each run)"
KNOWN_HOSTS_PLACEHOLDER = "(the machine source's host keys, written for each run)"
CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(settings: Mapping[str, Any], key: str, allowed: Sequence[str]) -> dict[str, Any]:
    out = {CAMEL.sub("_", k).lower(): v for k, v in settings.items()}
    unknown = sorted(k for k in out if k not in allowed)
    if unknown:
        raise SettingsError(f"keelson:{key} has unknown keys: {', '.join(unknown)} (allowed: {', '.join(allowed)})")
    return out


def host_entries(cluster: Cluster) -> list[HostEntry]:
    return [
        h.model_dump(mode="json", exclude_defaults=True) | {"roles": [r.value for r in h.roles]} for h in cluster.hosts
    ]


def stack_inventory(
    base: Cluster,
    hosts: Sequence[Mapping[str, Any]],
    control_plane: Mapping[str, Any],
    labels: Mapping[str, Mapping[str, str]],
    ssh_user: str,
) -> dict[str, Any]:
    """The inventory the cluster runs with: the file's settings, the machine source's hosts (each keeping what the
    file says about the host of that name: labels, ssh, os…), the source's VIP/NIC where it decides them, the
    stack's labels on top."""
    data = base.model_dump(mode="json", exclude_defaults=True)
    written = {h["name"]: h for h in host_entries(base)}
    merged_hosts = []
    for made in hosts:
        entry = {**written.get(str(made["name"]), {}), **dict(made)}
        entry["labels"] = {**entry.get("labels", {}), **labels.get(str(made["name"]), {})}
        merged_hosts.append(entry)
    unknown = sorted(set(labels) - {str(h["name"]) for h in hosts})
    if unknown:
        raise SettingsError(f"keelson:labels names hosts the machines do not have: {', '.join(unknown)}")
    data["hosts"] = merged_hosts
    data["control_plane"] = {**data["control_plane"], **dict(control_plane)}
    data["ssh"] = {**data.get("ssh", {}), "key": KEY_PLACEHOLDER, "known_hosts": KNOWN_HOSTS_PLACEHOLDER}
    data["ssh"].setdefault("user", ssh_user)
    return data


def machine_source(settings: StackSettings, base: Cluster, config: pulumi.Config) -> MachineSource:
    name = f"{base.name}-machines"
    if settings.machines == "lab":
        from provision.machines.lab import LabArgs, LabMachines

        lab = _snake(settings.lab, "lab", ("name", "masters", "workers", "lbs"))
        return LabMachines(name, LabArgs(lab=str(lab.pop("name", base.name)), **lab))
    if settings.machines == "existing":
        from provision.machines.existing import ExistingArgs, ExistingMachines

        return ExistingMachines(
            name,
            ExistingArgs(
                host_entries(base),
                base.ssh.user or "root",
                config.require_secret("sshPrivateKey"),
                settings.known_hosts if settings.known_hosts is not None else _known_hosts_file(base),
            ),
        )
    if settings.machines == "libvirt":
        from provision.machines.libvirt import LibvirtArgs, LibvirtMachines

        allowed = ("image", "pool", "network", "memory_mib", "vcpus", "disk_gib")
        options = _snake(settings.libvirt, "libvirt", allowed)
        return LibvirtMachines(
            name, LibvirtArgs(base.name, host_entries(base), config.require_secret("sshPrivateKey"), **options)
        )
    from provision.machines.hcloud import HcloudArgs, HcloudMachines

    options = _snake(settings.hcloud, "hcloud", ("location", "server_type", "image", "network", "subnet", "zone"))
    return HcloudMachines(
        name, HcloudArgs(base.name, host_entries(base), config.require_secret("sshPrivateKey"), **options)
    )


def _known_hosts_file(base: Cluster) -> str:
    path = Path(base.ssh.known_hosts or "~/.ssh/known_hosts").expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise SettingsError(
            f"cannot read the inventory's known_hosts {path}: {exc.strerror}",
            hint='set keelson:knownHosts to the hosts\' keys (pulumi config set keelson:knownHosts -- "$(cat FILE)")',
        ) from None


@dataclass(frozen=True)
class Built:
    """What the program made: the cluster, and its addons when the inventory turns any on."""

    cluster: KeelsonCluster
    addons: ClusterAddons | None


def build() -> Built:
    config = pulumi.Config("keelson")
    settings = StackSettings.load(config)
    base = load_inventory(settings.inventory)
    cluster_release = release(base.kubernetes.release_version)
    refuse_unbuilt(base.addons, base.kubernetes.artifacts.source, cluster_release)
    grafana = grafana_password(config, base.addons)
    machines = machine_source(settings, base, config)
    inventory = pulumi.Output.all(machines.inventory_hosts, machines.control_plane).apply(
        lambda v: stack_inventory(base, v[0], v[1], settings.labels, machines.ssh_user)
    )
    args = ClusterArgs(inventory, machines.hosts, machines.private_key, machines.known_hosts, secret_env(config, base))
    cluster = KeelsonCluster(base.name, args, pulumi.ResourceOptions(depends_on=[machines]))
    pulumi.export("apiEndpoint", cluster.api_endpoint)
    pulumi.export("nodes", cluster.nodes)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    if not wanted(base.addons):
        return Built(cluster, None)
    addons_args = ClusterAddonsArgs(
        cluster.kubeconfig,
        base.addons,
        cluster_release,
        base.kubernetes.artifacts.source,
        grafana,
        api_ready=cluster.api_ready,
        cluster_ready=cluster.addons_ready,
    )
    addons = ClusterAddons(f"{base.name}-addons", addons_args)
    pulumi.export("addons", addons.installed)
    return Built(cluster, addons)


def main() -> None:
    # A ConfigGroup's `resources` output lists its objects as resource references, and the SDK rebuilds each one it
    # receives with a getResource call to the engine (one round trip per Kubernetes object: 0.8-1.0 s of a no-op
    # `pulumi up` with the three default addons, after their last diff). Nothing here reads them: the engine sends
    # plain values instead (read by the SDK at each registration; this process is the program's own).
    os.environ.setdefault("PULUMI_DISABLE_RESOURCE_REFERENCES", "true")
    freeze_at_exit()  # this process's exit: no last collection over every object the SDK and keelson made
    send_from_thread()  # the SDK's log messages (several per resource) no longer hold the event loop each
    try:
        build()
    except KeelsonError as exc:
        raise pulumi.RunError(str(exc)) from None
