"""The inventory: a typed description of one cluster. Parsing lives here; cross-field rules live in `rules.py`.

Every model forbids unknown fields so a typo is an error that names its line, not a silently ignored key.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

HostName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
]
"""A DNS label: lower-case letters, digits and '-', 1-63 characters (it becomes the node name)."""

KubeVersion = Annotated[str, StringConstraints(pattern=r"^v?1\.\d{1,2}\.\d{1,3}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Role(StrEnum):
    MASTER = "master"
    WORKER = "worker"
    LB = "lb"
    ETCD = "etcd"


class OS(StrEnum):
    LINUX = "linux"
    WINDOWS = "windows"


class SSH(Strict):
    """How to reach a host. Cluster-wide defaults, overridden per host field by field."""

    user: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    key: str | None = Field(default=None, description="private key file (~ is expanded)")
    sudo_password_env: str | None = Field(
        default=None,
        description="name of an environment variable holding the sudo password (never the password)",
    )


class SSHDefaults(SSH):
    known_hosts: str | None = Field(
        default=None, description="known_hosts file checked strictly; default ~/.ssh/known_hosts"
    )


class Host(Strict):
    name: HostName
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    roles: Annotated[list[Role], Field(min_length=1)]
    os: OS = OS.LINUX
    ssh: SSH = SSH()
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, roles: list[Role]) -> list[Role]:
        if len(set(roles)) != len(roles):
            raise ValueError("each role may appear once")
        return roles

    def has(self, role: Role) -> bool:
        return role in self.roles


LoadBalancerKind = Literal["keepalived+haproxy", "keepalived+nginx", "external"]


class ControlPlane(Strict):
    vip: ipaddress.IPv4Interface = Field(description="virtual IP with its prefix length, e.g. 198.18.0.100/24")
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None,
        description="VIP port; default 8443 when the load balancer shares the masters, else 6443",
    )
    apiserver_port: Annotated[int, Field(ge=1, le=65535)] = 6443
    load_balancer: LoadBalancerKind = "keepalived+haproxy"
    vrrp_router_id: Annotated[int, Field(ge=1, le=255)] = 51
    interface: str | None = Field(default=None, description="NIC for the VIP; default: the NIC with the host's address")
    endpoint: str | None = Field(default=None, description="host:port of an external load balancer")


class Etcd(Strict):
    placement: Literal["masters", "dedicated"] = "masters"
    data_dir: str = "/var/lib/etcd"
    client_port: Annotated[int, Field(ge=1, le=65535)] = 2379
    peer_port: Annotated[int, Field(ge=1, le=65535)] = 2380


class Network(Strict):
    cni: Literal["flannel", "calico", "canal", "cilium"] = "flannel"
    pod_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.244.0.0/16")
    service_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.96.0.0/12")
    dns_domain: str = "cluster.local"
    network_policy: bool = True


class NFS(Strict):
    server: str
    path: str


class Addons(Strict):
    dns: bool = True
    ingress: Literal["none", "nginx", "traefik"] = "nginx"
    storage: Literal["none", "local-path", "nfs"] = "local-path"
    nfs: NFS | None = None
    metrics: bool = True
    monitoring: bool = False
    logging: bool = False
    dashboard: bool = False


class S3Target(Strict):
    kind: Literal["s3"]
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    credentials_env: tuple[str, str] = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


class SSHTarget(Strict):
    kind: Literal["ssh"]
    host: str = Field(description="address or inventory host name of the backup host")
    path: str = "/var/backups/keelson"
    user: str = "root"
    port: Annotated[int, Field(ge=1, le=65535)] = 22


BackupTarget = Annotated[S3Target | SSHTarget, Field(discriminator="kind")]


class Backups(Strict):
    enabled: bool = True
    schedule: str = Field(default="hourly", description="systemd OnCalendar expression")
    retention: Annotated[int, Field(ge=1, le=10000)] = 24
    targets: list[BackupTarget] = Field(default_factory=list)


class Security(Strict):
    audit: bool = True
    encryption_at_rest: bool = True


class Cluster(Strict):
    name: HostName
    kubernetes_version: KubeVersion = "1.31.2"
    non_ha: bool = False
    ssh: SSHDefaults = SSHDefaults()
    hosts: Annotated[list[Host], Field(min_length=1)]
    control_plane: ControlPlane
    etcd: Etcd = Etcd()
    network: Network = Network()
    addons: Addons = Addons()
    backups: Backups = Backups()
    security: Security = Security()

    # -- views used by roles (derived, never stored) ---------------------------------------------
    def with_role(self, role: Role) -> list[Host]:
        return [h for h in self.hosts if role in h.roles]

    @property
    def masters(self) -> list[Host]:
        return self.with_role(Role.MASTER)

    @property
    def workers(self) -> list[Host]:
        return self.with_role(Role.WORKER)

    @property
    def etcd_members(self) -> list[Host]:
        return self.masters if self.etcd.placement == "masters" else self.with_role(Role.ETCD)

    @property
    def lb_hosts(self) -> list[Host]:
        """Hosts that run keepalived + the proxy: dedicated `lb` hosts if any, else the masters."""
        if self.control_plane.load_balancer == "external":
            return []
        return self.with_role(Role.LB) or self.masters

    @property
    def lb_dedicated(self) -> bool:
        return bool(self.with_role(Role.LB))

    @property
    def api_port(self) -> int:
        """The port clients use on the VIP."""
        if self.control_plane.port is not None:
            return self.control_plane.port
        return 6443 if self.lb_dedicated else 8443

    @property
    def api_endpoint(self) -> str:
        """`host:port` for kubeadm's --control-plane-endpoint."""
        if self.control_plane.load_balancer == "external" and self.control_plane.endpoint:
            return self.control_plane.endpoint
        return f"{self.control_plane.vip.ip}:{self.api_port}"

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def ssh_for(self, host: Host) -> ResolvedSSH:
        d, o = self.ssh, host.ssh
        key = o.key or d.key
        return ResolvedSSH(
            user=o.user or d.user or ("Administrator" if host.os is OS.WINDOWS else "root"),
            port=o.port or d.port or 22,
            key=str(Path(key).expanduser()) if key else None,
            sudo_password_env=o.sudo_password_env or d.sudo_password_env,
            known_hosts=str(Path(d.known_hosts or "~/.ssh/known_hosts").expanduser()),
        )


class ResolvedSSH(Strict):
    user: str
    port: int
    key: str | None
    sudo_password_env: str | None
    known_hosts: str
