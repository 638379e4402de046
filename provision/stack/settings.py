"""The stack's configuration, read once into typed settings (every key in the `keelson:` namespace).

keelson:inventory       path of the inventory (relative to the project): the cluster's settings; its hosts for
                        `existing` and the names and roles of the hosts the other sources make
keelson:machines        existing | lab | libvirt | hcloud
keelson:lab             {name, masters, workers, lbs}          (lab)
keelson:libvirt         {image, pool, network, memoryMib, vcpus, diskGib}   (libvirt)
keelson:hcloud          {location, serverType, image, network, subnet, zone}  (hcloud; hcloud:token is the
                        provider's own secret)
keelson:labels          {host: {label: value}}: node labels merged over the inventory's
keelson:sshPrivateKey   secret: the key every host accepts (existing, libvirt, hcloud; the lab has its own)
keelson:knownHosts      the hosts' keys (existing; default: the inventory's known_hosts file)
keelson:s3Credentials   secret {accessKeyId, secretAccessKey}: for every S3 backup target (the variables its
                        credentials_env names)
keelson:sudoPassword    secret: for hosts whose ssh.sudo_password_env is set
keelson:grafanaAdminPassword   secret: Grafana's admin password (addons monitoring or logging)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi

from inventory.errors import KeelsonError
from inventory.model import Addons, Cluster, S3Target

Source = Literal["existing", "lab", "libvirt", "hcloud"]
SOURCES: tuple[Source, ...] = ("existing", "lab", "libvirt", "hcloud")
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # where Pulumi.yaml is


class SettingsError(KeelsonError):
    """A stack configuration value is missing or wrong; the message names the `keelson:` key."""


@dataclass(frozen=True)
class StackSettings:
    inventory: Path
    machines: Source
    lab: dict[str, Any] = field(default_factory=dict)
    libvirt: dict[str, Any] = field(default_factory=dict)
    hcloud: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    known_hosts: str | None = None

    @classmethod
    def load(cls, config: pulumi.Config, root: Path = PROJECT_ROOT) -> StackSettings:
        inventory = Path(config.get("inventory") or "inventory/examples/lab.yaml")
        machines = config.get("machines") or "existing"
        if machines not in SOURCES:
            raise SettingsError(f"keelson:machines is {machines!r}; use one of: {', '.join(SOURCES)}")
        labels = config.get_object("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, dict) for v in labels.values()):
            raise SettingsError("keelson:labels must map host names to {label: value} maps")
        return cls(
            inventory=inventory if inventory.is_absolute() else root / inventory,
            machines=machines,  # checked against SOURCES above
            lab=dict(config.get_object("lab") or {}),
            libvirt=dict(config.get_object("libvirt") or {}),
            hcloud=dict(config.get_object("hcloud") or {}),
            labels={str(h): {str(k): str(v) for k, v in m.items()} for h, m in labels.items()},
            known_hosts=config.get("knownHosts"),
        )


def grafana_password(config: pulumi.Config, addons: Addons) -> pulumi.Output[str] | None:
    """Grafana's admin password (monitoring or logging on), from secret config: never a default one."""
    if not (addons.monitoring or addons.logging):
        return None
    password = config.get_secret("grafanaAdminPassword")
    if password is None:
        raise SettingsError(
            "the inventory turns on monitoring or logging, whose Grafana needs keelson:grafanaAdminPassword",
            hint="pulumi config set --secret keelson:grafanaAdminPassword …",
        )
    return password


def secret_env(config: pulumi.Config, cluster: Cluster) -> pulumi.Output[dict[str, str]]:
    """The variables the roles read, from secret config: each S3 target's credentials_env, each sudo_password_env."""
    s3 = config.get_secret_object("s3Credentials")
    sudo = config.get_secret("sudoPassword")
    targets = [t for t in cluster.backups.targets if isinstance(t, S3Target)] if cluster.backups.enabled else []
    sudo_vars = sorted({v for h in cluster.hosts if (v := cluster.ssh_for(h).sudo_password_env)})
    if targets and s3 is None:
        raise SettingsError(
            "the inventory has S3 backup targets but keelson:s3Credentials is not set",
            hint="pulumi config set --secret --path keelson:s3Credentials.accessKeyId …; the same for secretAccessKey",
        )
    if sudo_vars and sudo is None:
        raise SettingsError(
            f"the inventory names sudo password variables ({', '.join(sudo_vars)}) but keelson:sudoPassword is not set",
            hint="pulumi config set --secret keelson:sudoPassword …",
        )

    def build(values: list[Any]) -> dict[str, str]:
        creds, password = values
        env: dict[str, str] = {}
        for target in targets:
            access, secret = target.credentials_env
            try:
                env[access], env[secret] = str(creds["accessKeyId"]), str(creds["secretAccessKey"])
            except (KeyError, TypeError):
                raise SettingsError("keelson:s3Credentials needs accessKeyId and secretAccessKey") from None
        env.update(dict.fromkeys(sudo_vars, str(password)) if sudo_vars else {})
        return env

    return pulumi.Output.secret(pulumi.Output.all(s3, sudo).apply(build))
