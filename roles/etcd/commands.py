"""Version-aware etcd command builders. Pure: they return one shell command string (tokens quoted with shlex).

etcd 3.4 (Debian bookworm's etcd-server) does everything with `etcdctl` (API v3 via `ETCDCTL_API=3`); from 3.5 the
offline snapshot commands (`snapshot restore`, `snapshot status`) live in `etcdutl` (3.6 removed them from etcdctl).
`snapshot save` talks to a live member, so it stays in `etcdctl` on every version.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import total_ordering

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.engine.nodes import NodeIPs
from roles.pki.defaults import DEFAULTS as PKI


@dataclass(frozen=True)
class TLSPaths:
    """Where a client's CA, certificate and key live on the host that runs the command."""

    ca: str
    cert: str
    key: str


HEALTHCHECK_TLS = TLSPaths(ca=PKI.etcd_ca_cert, cert=PKI.healthcheck_cert, key=PKI.healthcheck_key)
BACKUP_TLS = TLSPaths(ca=PKI.backup_ca, cert=PKI.backup_cert, key=PKI.backup_key)

_VERSION = re.compile(r"(?:etcd Version:\s*)?v?(\d+)\.(\d+)\.(\d+)")


class EtcdVersionError(KeelsonError):
    """`etcd --version` printed something we cannot read."""


@total_ordering
@dataclass(frozen=True)
class EtcdVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> EtcdVersion:
        """From `etcd --version` output ("etcd Version: 3.4.23\\nGit SHA: …") or a bare "3.5.17"/"v3.6.0"."""
        match = _VERSION.search(text)
        if match is None:
            raise EtcdVersionError(
                f"cannot read an etcd version from {text.strip()[:80]!r}",
                hint="is etcd installed? `etcd --version` should print 'etcd Version: 3.x.y'",
            )
        major, minor, patch = (int(g) for g in match.groups())
        return cls(major, minor, patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, EtcdVersion):
            return NotImplemented
        return (self.major, self.minor, self.patch) < (other.major, other.minor, other.patch)

    @property
    def uses_etcdutl(self) -> bool:
        """True from 3.5 on: offline snapshot commands are `etcdutl …`."""
        return (self.major, self.minor) >= (3, 5)


def _version(version: EtcdVersion | str) -> EtcdVersion:
    return version if isinstance(version, EtcdVersion) else EtcdVersion.parse(version)


# -- URLs ---------------------------------------------------------------------------------------------------------


def url_host(address: ipaddress.IPv4Address | ipaddress.IPv6Address | str) -> str:
    ip = ipaddress.ip_address(str(address))
    return f"[{ip}]" if ip.version == 6 else str(ip)


def member_peer_url(cluster: Cluster, host: Host, nodes: NodeIPs | None = None) -> str:
    """`nodes`: the run's node IPs (`ctx.nodes`, `rc.nodes`); without it, what the inventory alone tells."""
    return f"https://{url_host(NodeIPs.of(cluster, nodes).ip(host))}:{cluster.etcd.peer_port}"


def member_client_url(cluster: Cluster, host: Host, nodes: NodeIPs | None = None) -> str:
    return f"https://{url_host(NodeIPs.of(cluster, nodes).ip(host))}:{cluster.etcd.client_port}"


def local_client_url(cluster: Cluster) -> str:
    return f"https://127.0.0.1:{cluster.etcd.client_port}"


def client_endpoints(cluster: Cluster, nodes: NodeIPs | None = None) -> str:
    return ",".join(member_client_url(cluster, h, nodes) for h in cluster.etcd_members)


def initial_cluster(cluster: Cluster, nodes: NodeIPs | None = None) -> str:
    """`name=peer-url,…` for every member, in inventory order."""
    return ",".join(f"{h.name}={member_peer_url(cluster, h, nodes)}" for h in cluster.etcd_members)


def cluster_token(cluster: Cluster) -> str:
    return f"keelson-{cluster.name}"


# -- commands -----------------------------------------------------------------------------------------------------


def _endpoints(endpoints: str | Sequence[str]) -> str:
    return endpoints if isinstance(endpoints, str) else ",".join(endpoints)


def etcdctl(args: Sequence[str], *, endpoints: str | Sequence[str], tls: TLSPaths) -> str:
    """`ETCDCTL_API=3 etcdctl --endpoints=… --cacert=… --cert=… --key=… ARGS…` (ETCDCTL_API is harmless on 3.5+)."""
    argv = [
        "etcdctl",
        f"--endpoints={_endpoints(endpoints)}",
        f"--cacert={tls.ca}",
        f"--cert={tls.cert}",
        f"--key={tls.key}",
        *args,
    ]
    return "ETCDCTL_API=3 " + shlex.join(argv)


def endpoint_health_cmd(*, endpoints: str | Sequence[str], tls: TLSPaths, whole_cluster: bool = True) -> str:
    """`endpoint health [--cluster] -w json`: one JSON object per endpoint with `health` true/false."""
    args = ["endpoint", "health", *(["--cluster"] if whole_cluster else []), "-w", "json", "--command-timeout=5s"]
    return etcdctl(args, endpoints=endpoints, tls=tls)


def snapshot_save_cmd(snapshot: str, *, endpoint: str, tls: TLSPaths) -> str:
    """`etcdctl snapshot save` against ONE member (etcdctl refuses several endpoints for a snapshot)."""
    if "," in endpoint:
        raise ValueError("snapshot save takes exactly one endpoint")
    return etcdctl(["snapshot", "save", snapshot], endpoints=endpoint, tls=tls)


def snapshot_restore_cmd(
    version: EtcdVersion | str,
    snapshot: str,
    name: str,
    initial_cluster: str,
    token: str,
    peer_url: str,
    data_dir: str,
) -> str:
    """Restore `snapshot` into a new `data_dir` for member `name` (run on that member, etcd stopped)."""
    flags = [
        "--name",
        name,
        "--initial-cluster",
        initial_cluster,
        "--initial-cluster-token",
        token,
        "--initial-advertise-peer-urls",
        peer_url,
        "--data-dir",
        data_dir,
    ]
    if _version(version).uses_etcdutl:
        return shlex.join(["etcdutl", "snapshot", "restore", snapshot, *flags])
    return "ETCDCTL_API=3 " + shlex.join(["etcdctl", "snapshot", "restore", snapshot, *flags])


def snapshot_status_cmd(version: EtcdVersion | str, snapshot: str) -> str:
    """`snapshot status FILE -w json` → {"hash", "revision", "totalKey", "totalSize"}."""
    if _version(version).uses_etcdutl:
        return shlex.join(["etcdutl", "snapshot", "status", snapshot, "-w", "json"])
    return "ETCDCTL_API=3 " + shlex.join(["etcdctl", "snapshot", "status", snapshot, "-w", "json"])
