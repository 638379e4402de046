"""How keelson reaches a host: the inventory's SSH settings, the user's ssh config for what the inventory leaves
unset, and the jump hosts in between. Pure: an inventory and a parsed config in, a `Route` out.

Precedence, as OpenSSH gives its command line over its config: what the inventory says (the host's `ssh`, then the
cluster's) wins; `~/.ssh/config` (paramiko's SSHConfig: Host/Match blocks, HostName, Port, User, IdentityFile,
ProxyJump) fills what the inventory leaves unset; then keelson's defaults (root, port 22, the agent's keys).

The jump hosts: the host's `ssh.bastion` (an inventory host's name stands for its address), else the cluster's,
else the ProxyJump the ssh config gives the host;
`bastion: none` (per host or cluster-wide) means direct whatever the config says. A jump host's own ProxyJump in the
config makes a chain (outermost first). A jump host that is the target itself is dropped (a cluster-wide bastion
that is also an inventory host reaches itself directly). Host-key options in the config (StrictHostKeyChecking,
UserKnownHostsFile) are ignored on purpose: every hop is checked strictly against the inventory's known_hosts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inventory.errors import KeelsonError
from inventory.model import NONE, OS, Bastion, Cluster, Host

if TYPE_CHECKING:
    from paramiko import SSHConfig

MAX_JUMPS = 8
_HOP = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]]+\]|[^:@\s\[\]]+)(?::(?P<port>\d{1,5}))?$")


class RouteError(KeelsonError):
    """The SSH settings name a route keelson cannot take (a ProxyJump loop, a malformed hop)."""


@dataclass(frozen=True)
class Endpoint:
    """One SSH login: where to connect (the HostName), as whom, with which keys (empty: the agent's and defaults)."""

    host: str
    port: int
    user: str
    keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Route:
    target: Endpoint
    jumps: tuple[Endpoint, ...] = ()  # outermost first: connect to jumps[0], through it to jumps[1], … to target

    @property
    def via(self) -> str:
        """`through bastion root@10.0.0.5:22` (or a chain), for messages; empty when direct."""
        if not self.jumps:
            return ""
        return ("through bastion " if len(self.jumps) == 1 else "through jump hosts ") + " → ".join(
            str(j) for j in self.jumps
        )


def load_config(path: str) -> SSHConfig | None:
    """The ssh config at `path` (`none`: no config); a missing default file is no config, like OpenSSH."""
    from paramiko import SSHConfig

    if path == NONE:
        return None
    file = Path(path).expanduser()
    if not file.exists():
        return None
    try:
        return SSHConfig.from_path(str(file))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RouteError(f"cannot read the ssh config {file}: {exc}", hint="fix it, or set ssh.config: none") from exc


def _lookup(config: SSHConfig | None, alias: str) -> dict[str, object]:
    if config is None:
        return {"hostname": alias}
    try:
        return dict(config.lookup(alias))
    except ImportError as exc:  # paramiko runs `Match exec` through invoke, which the CLI keeps out (keelson/cli.py)
        raise RouteError(
            f"the ssh config has a `Match exec` block that applies to {alias}: keelson does not run commands from it",
            hint="use Host patterns for the hosts keelson reaches, or set ssh.config: none",
        ) from exc
    except Exception as exc:  # paramiko raises bare exceptions for bad Match/Include/tokens
        raise RouteError(f"the ssh config cannot be applied to {alias}: {exc}", hint="fix ~/.ssh/config") from exc


def _port(value: object, where: str) -> int:
    try:
        port = int(str(value))
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise RouteError(f"{where}: port {value!r} is not a TCP port")
    return port


def parse_hop(text: str) -> tuple[str | None, str, int | None]:
    """One ProxyJump hop, `[user@]host[:port]` (an IPv6 address in brackets) → (user, host, port)."""
    m = _HOP.match(text.strip())
    if m is None:
        raise RouteError(f"ProxyJump hop {text!r} is not [user@]host[:port]", hint="ssh:// URIs are not supported")
    port = _port(m["port"], f"ProxyJump hop {text!r}") if m["port"] else None
    return m["user"], m["host"].strip("[]"), port


@dataclass(frozen=True)
class _Asked:
    """What the inventory (or a ProxyJump hop) says of one login; None = let the ssh config or defaults decide."""

    alias: str
    user: str | None
    port: int | None
    key: str | None


def _chain(config: SSHConfig | None, asked: _Asked, default_user: str, default_key: str | None,
           seen: tuple[str, ...]) -> tuple[Endpoint, tuple[Endpoint, ...]]:  # fmt: skip
    """The endpoint for `asked` and, from the config's ProxyJump for it, the jump hosts in front of it."""
    if asked.alias in seen or len(seen) > MAX_JUMPS:
        raise RouteError(f"ProxyJump loop or too many hops: {' → '.join((*seen, asked.alias))}")
    found = _lookup(config, asked.alias)
    identity = found.get("identityfile")
    config_keys = tuple(str(Path(k).expanduser()) for k in identity) if isinstance(identity, list) else ()
    fallback = (str(Path(default_key).expanduser()),) if default_key else ()
    endpoint = Endpoint(
        host=str(found.get("hostname") or asked.alias),
        port=asked.port or (_port(found["port"], f"ssh config Port for {asked.alias}") if "port" in found else 22),
        user=asked.user or str(found.get("user") or default_user),
        keys=(str(Path(asked.key).expanduser()),) if asked.key else config_keys or fallback,
    )
    jump = str(found.get("proxyjump") or NONE)
    return endpoint, _hops(config, jump, default_user, default_key, (*seen, asked.alias))


def _hops(config: SSHConfig | None, proxyjump: str, default_user: str, default_key: str | None,
          seen: tuple[str, ...]) -> tuple[Endpoint, ...]:  # fmt: skip
    """`ProxyJump a,b` → the endpoints of a then b, each with the chain its own config entry puts before it."""
    if proxyjump.strip().lower() == NONE:
        return ()
    out: list[Endpoint] = []
    for i, hop in enumerate(proxyjump.split(",")):
        user, alias, port = parse_hop(hop)
        endpoint, before = _chain(config, _Asked(alias, user, port, None), default_user, default_key, seen)
        out.extend(before if i == 0 else ())  # only the first hop's own ProxyJump matters, as in OpenSSH
        out.append(endpoint)
    return tuple(out)


def resolve(cluster: Cluster, host: Host, config: SSHConfig | None) -> Route:
    """The route to `host`: its endpoint and the jump hosts before it (see the module docstring for precedence)."""
    d, o = cluster.ssh, host.ssh
    asked = _Asked(str(host.address), o.user or d.user, o.port or d.port, o.key or d.key)
    target, config_jumps = _chain(config, asked, "Administrator" if host.os is OS.WINDOWS else "root", None, ())
    bastion = o.bastion if o.bastion is not None else d.bastion
    if bastion == NONE:
        jumps: tuple[Endpoint, ...] = ()
    elif isinstance(bastion, Bastion):
        names = {h.name: str(h.address) for h in cluster.hosts}
        where = names.get(str(bastion.host), str(bastion.host))  # an inventory host's name: its address
        asked_bastion = _Asked(where, bastion.user, bastion.port, bastion.key)
        first, before = _chain(config, asked_bastion, d.user or "root", d.key, ())
        jumps = (*before, first)
    else:
        jumps = config_jumps
    while jumps and (jumps[-1].host, jumps[-1].port) == (target.host, target.port):
        jumps = jumps[:-1]  # the bastion is this host itself: reach it directly
    return Route(target, jumps)
