"""The inventory: a typed description of one cluster. Parsing lives here; cross-field rules live in `rules.py`.

Every model forbids unknown fields so a typo is an error that names its line, not a silently ignored key.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from inventory.kubernetes import Kubernetes

HostName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
]
"""A DNS label: lower-case letters, digits and '-', 1-63 characters (it becomes the node name)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def host_address(value: object) -> object:
    """An IP address (returned as IPv4Address/IPv6Address) or a DNS name (returned lower-case, as a str).

    A DNS name is dot-separated labels of letters, digits and '-' (RFC 1123), at most 253 characters, whose last
    label is not all digits (so `10.0.0.300` is a bad IP address, not a name)."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if not isinstance(value, str):  # YAML's `true` or `42` is no address (pydantic would take 42 as 0.0.0.42)
        raise ValueError(f"{value!r} is neither an IP address nor a DNS name")
    text = value.strip()
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    name = text.lower().removesuffix(".")
    labels = name.split(".")
    if 0 < len(name) <= 253 and all(_DNS_LABEL.match(label) for label in labels) and not labels[-1].isdigit():
        return name
    raise ValueError(f"{value!r} is neither an IP address nor a DNS name")


USER_NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,31}")
BACKUP_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,252}")
BACKUP_PATH = re.compile(r"/([A-Za-z0-9._-]+/?)*")


def _user_name(name: str) -> str:
    if not USER_NAME.fullmatch(name):
        raise ValueError(
            "not a POSIX user name: letters, digits, '.', '_' and '-', not starting with '-', at most 32 characters"
        )
    return name


def _backup_host(host: str) -> str:
    if not BACKUP_HOST.fullmatch(host):
        raise ValueError("not a host name or address (letters, digits, '.', '-', ':'; not starting with '-')")
    return host


def _backup_path(path: str) -> str:
    if not BACKUP_PATH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        raise ValueError("must be an absolute path of plain names (letters, digits, '.', '_', '-'; no '..')")
    return path


UserName = Annotated[str, AfterValidator(_user_name)]
"""A POSIX user name (the portable filename characters, not starting with '-', at most 32): it lands in ssh
command lines and authorized_keys, where anything else could be read as an option or break the line."""

BackupHost = Annotated[str, AfterValidator(_backup_host)]
"""A DNS name, an IPv4/IPv6 address or an inventory host name; never starts with '-' (an ssh option)."""

BackupPath = Annotated[str, AfterValidator(_backup_path)]
"""An absolute path of plain names: the backup host's receiver is pinned to it (in authorized_keys)."""


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


Port = Annotated[int, Field(ge=1, le=65535)]
NONE = "none"
"""`bastion: none` (a host reached directly), `config: none` (no ssh config file read)."""


class Bastion(Strict):
    """The jump host keelson reaches a host through (OpenSSH's ProxyJump): one SSH connection to it per run, shared
    by every host behind it, each host over its own direct-tcpip channel. Its host key is checked like any host's."""

    host: IPAddress | str = Field(description="IP address, DNS name or ~/.ssh/config alias of the bastion")
    port: Port | None = Field(default=None, description="default: its ssh config Port, else 22")
    user: UserName | None = Field(default=None, description="default: its ssh config User, else ssh.user, else root")
    key: str | None = Field(default=None, description="default: its ssh config IdentityFile, else ssh.key")

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: object) -> object:
        return host_address(value)


class SSH(Strict):
    """How to reach a host. Cluster-wide defaults, overridden per host field by field."""

    user: UserName | None = None
    port: Port | None = None
    key: str | None = Field(default=None, description="private key file (~ is expanded)")
    sudo_password_env: str | None = Field(
        default=None,
        description="name of an environment variable holding the sudo password (never the password)",
    )
    bastion: Bastion | Literal["none"] | None = Field(
        default=None,
        description="jump host for this host (per host) or every host (cluster-wide); `none`: connect directly, "
        "whatever the cluster default or a ProxyJump in the ssh config says",
    )


class SSHDefaults(SSH):
    known_hosts: str | None = Field(
        default=None, description="known_hosts file checked strictly; default ~/.ssh/known_hosts"
    )
    config: str = Field(
        default="~/.ssh/config",
        description="OpenSSH client config read for host aliases, HostName, Port, User, IdentityFile and ProxyJump "
        "(what the inventory leaves unset); `none` reads none",
    )


class Host(Strict):
    name: HostName
    address: IPAddress | str = Field(description="how keelson reaches the host over SSH: an IP address or a DNS name")
    internal_address: IPAddress | None = Field(
        default=None,
        description="the node IP (etcd, apiserver, VIP subnet); default: `address` when it is an IP of this host "
        "alone, else discovered from the host at the start of each run",
    )
    roles: Annotated[list[Role], Field(min_length=1)]
    os: OS = OS.LINUX
    ssh: SSH = SSH()
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: object) -> object:
        return host_address(value)

    @property
    def address_is_ip(self) -> bool:
        return not isinstance(self.address, str)

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


def _export_path(path: str) -> str:
    if not path.startswith("/") or any(c.isspace() or c in "\"'\\" for c in path) or ".." in path.split("/"):
        raise ValueError("must be the export's absolute path (no spaces, quotes or '..')")
    return path


class NFS(Strict):
    """The export `storage: nfs` provisions volumes in (a folder per PVC); every node mounts it."""

    server: IPAddress | str = Field(description="address or DNS name of the NFS server")
    path: Annotated[str, AfterValidator(_export_path)] = Field(description="the export, e.g. /exports/k8s")

    @field_validator("server", mode="before")
    @classmethod
    def _server(cls, value: object) -> object:
        return host_address(value)


class Addons(Strict):
    dns: bool = True
    ingress: Literal["none", "nginx", "traefik"] = "traefik"
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


DEFAULT_BACKUP_USER = "keelson-backup"


class SSHTarget(Strict):
    kind: Literal["ssh"]
    host: BackupHost = Field(description="address or inventory host name of the backup host")
    path: BackupPath = "/var/backups/keelson"
    user: UserName = Field(
        default=DEFAULT_BACKUP_USER,
        description="account on the backup host (keelson creates it on an inventory host); root works but is unwise",
    )
    port: Annotated[int, Field(ge=1, le=65535)] = 22


BackupTarget = Annotated[S3Target | SSHTarget, Field(discriminator="kind")]


class Backups(Strict):
    enabled: bool = True
    schedule: str = Field(default="hourly", description="systemd OnCalendar expression")
    retention: Annotated[int, Field(ge=1, le=10000)] = 24
    targets: list[BackupTarget] = Field(default_factory=list)

    @field_validator("schedule")
    @classmethod
    def _calendar_event(cls, schedule: str) -> str:
        from inventory.oncalendar import calendar_problem

        problem = calendar_problem(schedule)
        if problem is not None:
            raise ValueError(
                f"not a systemd OnCalendar expression ({problem}); e.g. hourly, daily, *:0/30, Mon..Fri 02:00"
            )
        return schedule


class Security(Strict):
    audit: bool = True
    encryption_at_rest: bool = True


class Cluster(Strict):
    name: HostName
    kubernetes: Kubernetes = Kubernetes()
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

    def spec_node_ip(self, host: Host) -> IPAddress | None:
        """The node IP the inventory alone tells: `internal_address`, else `address` when it is an IP that no other
        host shares (hosts behind one address on different SSH ports sit behind a NAT: that address is not theirs).
        None: the node IP is discovered from the host at run time (`roles.engine.nodes.NodeIPs` is the accessor)."""
        if host.internal_address is not None:
            return host.internal_address
        if isinstance(host.address, str) or host.address in self._shared_addresses:
            return None
        return host.address

    @cached_property
    def _shared_addresses(self) -> frozenset[IPAddress | str]:
        seen: set[IPAddress | str] = set()
        shared: set[IPAddress | str] = set()
        for h in self.hosts:
            (shared if h.address in seen else seen).add(h.address)
        return frozenset(shared)

    def ssh_for(self, host: Host) -> ResolvedSSH:
        d, o = self.ssh, host.ssh
        key = o.key or d.key
        return ResolvedSSH(
            user=o.user or d.user or ("Administrator" if host.os is OS.WINDOWS else "root"),
            port=o.port or d.port or 22,
            key=str(Path(key).expanduser()) if key else None,
            sudo_password_env=o.sudo_password_env or d.sudo_password_env,
            known_hosts=str(Path(d.known_hosts or "~/.ssh/known_hosts").expanduser()),
            bastion=o.bastion if o.bastion is not None else d.bastion,
        )


class ResolvedSSH(Strict):
    """The inventory's view of how to reach a host (keelson's defaults filled in). The engine's route
    (roles/engine/ssh_route.py) adds what ~/.ssh/config says for what the inventory leaves unset."""

    user: str
    port: int
    key: str | None
    sudo_password_env: str | None
    known_hosts: str
    bastion: Bastion | Literal["none"] | None = None
