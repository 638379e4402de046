"""Discover node IPs right after Connect, for the hosts whose inventory entry does not give one (addressed by DNS
name, or several hosts behind one address), then check the node-IP rules the inventory alone could not.

Every run does this before its first phase, in a dry run too (reading a fact changes nothing). It reaches every such
host of the cluster, also those a `--hosts` run leaves alone: their node IPs go into the selected hosts' configs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host, IPAddress
from inventory.positions import dotted
from inventory.rules import NodeIPOf, node_ip_violations
from roles.engine.nodes import NodeIPFact, NodeIPs
from roles.engine.transport import ConnectionPool

TITLE = "Discover node IPs"


def discover_one(cluster: Cluster, host: Host, pool: ConnectionPool) -> IPAddress | str:
    """The host's node IP, or an error message."""
    fact = NodeIPFact(cluster.control_plane.vip, host.os)
    try:
        result = pool.get(host).run(fact.command(), timeout=30)
    except KeelsonError as exc:
        return str(exc)
    ip = fact.parse(result.stdout, result.rc)
    if ip is None:
        said = result.stderr.strip().splitlines()[-1:]
        return (
            f"{host.name}: cannot tell its node IP: no route toward the VIP {cluster.control_plane.vip.ip} gives a "
            f"source address and it has no global address{f' ({said[0][:200]})' if said else ''}"
        )
    return ip


def discover(
    cluster: Cluster, pool: ConnectionPool, nodes: NodeIPs, concurrency: int = 32
) -> tuple[list[Host], dict[str, str]]:
    """Discover what `nodes` lacks and record it there. Returns (hosts asked, errors by host name): a host's own
    failure, or a node-IP rule broken once the discovered IPs are known."""
    hosts = nodes.to_discover()
    if not hosts:
        return [], {}
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(hosts)))) as ex:
        found = list(ex.map(lambda h: discover_one(cluster, h, pool), hosts))
    for host, value in zip(hosts, found, strict=True):
        if isinstance(value, str):
            errors[host.name] = value
        else:
            nodes.record(host, value)
    if not errors:
        for name, message in rule_errors(cluster, nodes.get, hosts).items():
            errors[name] = message
    return hosts, errors


def rule_errors(cluster: Cluster, node_ip: NodeIPOf, asked: list[Host]) -> dict[str, str]:
    """The node-IP rules with every node IP known, as errors by host name: a rule on one host lands on it, a rule
    on the cluster (the VIP's subnet) on each host that was discovered."""
    out: dict[str, str] = {}
    for violation in node_ip_violations(cluster, node_ip):
        where = violation.path
        names = [cluster.hosts[where[1]].name] if where[:1] == ("hosts",) and isinstance(where[1], int) else []
        for name in names or [h.name for h in asked]:
            text = f"{dotted(where)}: {violation.message} (with the node IPs discovered from the hosts)"
            out[name] = f"{out[name]}; {text}" if name in out else text
    return out
