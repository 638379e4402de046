"""Node IPs: the address each host is known by inside the cluster (etcd URLs and certificates, load-balancer
backends, VRRP peers, /etc/hosts, the backup agent). Discovered facts kept apart from the spec (k0sctl's
HostMetadata): the inventory is never rewritten.

`NodeIPs.ip(host)` is THE accessor for "the node IP of host H in this run":
1. `internal_address` from the inventory;
2. else `address`, when it is an IP that no other host shares;
3. else what the run discovered on the host right after Connect (`discover`): the source address of its route
   toward the VIP (`ip -j route get <VIP>`'s prefsrc), or, failing that, its first global address in the VIP's
   subnet. A plan (dry run) discovers too: reading facts changes nothing.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import OS, Cluster, Host, IPAddress
from roles.engine.facts import Fact

q = shlex.quote


class NodeIPUnknown(KeelsonError):
    """A role asked for a node IP the run does not know (the host is addressed by name and was not discovered)."""


class NodeIPs:
    """The node IP of every host in one run: what the inventory tells, plus what the run discovered."""

    def __init__(self, cluster: Cluster, discovered: Mapping[str, IPAddress] | None = None) -> None:
        self.cluster = cluster
        self._discovered: dict[str, IPAddress] = dict(discovered or {})
        self._lock = threading.Lock()

    @classmethod
    def of(cls, cluster: Cluster, nodes: NodeIPs | None) -> NodeIPs:
        """`nodes` when a run passes its own, else what the inventory alone tells (pure helpers called offline)."""
        return nodes if nodes is not None else cls(cluster)

    def ip(self, host: Host) -> IPAddress:
        known = self.cluster.spec_node_ip(host)
        if known is not None:
            return known
        found = self._discovered.get(host.name)
        if found is None:
            raise NodeIPUnknown(
                f"{host.name}: node IP not known: the inventory gives no internal_address and its address "
                f"{host.address} is {'a DNS name' if isinstance(host.address, str) else 'shared with other hosts'}; "
                "keelson discovers it right after connecting, and this run did not",
                hint=f"set internal_address for {host.name} in the inventory, or include it in the run (--hosts)",
            )
        return found

    def get(self, host: Host) -> IPAddress | None:
        """The node IP if known (for checks that skip unknown hosts), else None."""
        known = self.cluster.spec_node_ip(host)
        return known if known is not None else self._discovered.get(host.name)

    def to_discover(self) -> list[Host]:
        return [
            h for h in self.cluster.hosts if self.cluster.spec_node_ip(h) is None and h.name not in self._discovered
        ]

    def record(self, host: Host, ip: IPAddress) -> None:
        with self._lock:
            self._discovered[host.name] = ip

    def discovered(self) -> dict[str, IPAddress]:
        return dict(self._discovered)


# -- the fact -----------------------------------------------------------------------------------------------------


def _ip(text: object) -> IPAddress | None:
    try:
        return ipaddress.ip_address(str(text).strip())
    except ValueError:
        return None


def _json_list(text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def parse_node_ip(out: str, vip: ipaddress.IPv4Interface) -> IPAddress | None:
    """From `ip -j route get VIP; echo @@; ip -j addr show`: the route's prefsrc (the holder of the VIP gets a
    `local` route whose prefsrc is still its primary address), else the first global, non-secondary address in the
    VIP's subnet, else the first global one. Never the VIP, a loopback or a link-local address. Junk → None."""
    route, _, addrs = out.partition("\n@@\n")
    usable: Callable[[IPAddress | None], bool] = lambda ip: (  # noqa: E731
        ip is not None and ip != vip.ip and not ip.is_loopback and not ip.is_link_local and not ip.is_unspecified
    )
    for entry in _json_list(route.strip())[:1]:
        src = _ip(entry.get("prefsrc")) if isinstance(entry, dict) else None
        if usable(src):
            return src
    in_subnet: list[IPAddress] = []
    others: list[IPAddress] = []
    for link in _json_list(addrs.strip()):
        if not isinstance(link, dict) or "LOOPBACK" in (link.get("flags") or []):
            continue
        for info in link.get("addr_info") or []:
            if not isinstance(info, dict) or info.get("scope") != "global" or info.get("secondary"):
                continue
            ip = _ip(info.get("local"))
            if ip is not None and usable(ip) and ip.version == vip.version:
                (in_subnet if ip in vip.network else others).append(ip)
    found = in_subnet + others
    return found[0] if found else None


def parse_windows_node_ip(out: str, vip: ipaddress.IPv4Interface) -> IPAddress | None:
    """From `Find-NetRoute -RemoteIPAddress VIP`'s IPAddress lines: the first usable address. Junk → None."""
    for line in out.splitlines():
        ip = _ip(line)
        if ip is not None and ip != vip.ip and not ip.is_loopback and not ip.is_link_local:
            return ip
    return None


@dataclass(frozen=True)
class NodeIPFact(Fact[IPAddress | None]):
    """The node IP a host uses toward the cluster (read-only). Linux: iproute2's JSON; Windows (over OpenSSH):
    PowerShell's Find-NetRoute — a stand-in, never run against a real Windows host here."""

    vip: ipaddress.IPv4Interface
    os: OS = OS.LINUX

    @property
    def key(self) -> str:
        return "node-ip"

    def command(self) -> str:
        if self.os is OS.WINDOWS:
            return (
                f"Find-NetRoute -RemoteIPAddress '{self.vip.ip}' -ErrorAction SilentlyContinue | "
                "Where-Object { $_.IPAddress } | ForEach-Object { $_.IPAddress }"
            )
        return f"ip -j route get {q(str(self.vip.ip))}; echo; echo @@; ip -j addr show"

    def parse(self, stdout: str, rc: int) -> IPAddress | None:
        if self.os is OS.WINDOWS:
            return parse_windows_node_ip(stdout, self.vip)
        return parse_node_ip(stdout, self.vip)
