"""The etcd health gate and the member selector, asked over TLS from one member with the healthcheck certificate.

- `wait_healthy`: `etcdctl endpoint health --cluster -w json` polled until every member of the inventory is healthy
  (and, given `min_revision`, every member serves at least that revision under one leader) or a deadline passes.
  The etcd phases, the restore and any later plan wait through this one function.
- `asker`: which member to run etcdctl on; `leader`: which member leads right now (`endpoint status`).

Parsing is pure; waiting takes the clock and the sleep as arguments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.engine.nodes import NodeIPs
from roles.engine.transport import Transport
from roles.etcd.commands import HEALTHCHECK_TLS, client_endpoints, endpoint_health_cmd, etcdctl, member_client_url
from roles.etcd.defaults import DEFAULTS as ETCD


class EtcdUnhealthy(KeelsonError):
    """The etcd cluster did not become healthy before the deadline."""


@dataclass(frozen=True)
class EndpointHealth:
    endpoint: str
    healthy: bool
    error: str = ""


@dataclass(frozen=True)
class EndpointStatus:
    endpoint: str
    member_id: int
    leader: int  # the member id of the leader this member knows (0: none)
    revision: int

    @property
    def is_leader(self) -> bool:
        return self.leader != 0 and self.member_id == self.leader


def _json_list(stdout: str) -> list[Any]:
    """etcdctl's `-w json` list (3.4–3.6; printed, partial, even when some endpoint is down). Junk → []."""
    start = stdout.find("[")
    if start < 0:
        return []
    try:
        data = json.loads(stdout[start : stdout.rfind("]") + 1])
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def parse_health(stdout: str) -> list[EndpointHealth]:
    """`endpoint health -w json` output."""
    return [
        EndpointHealth(item["endpoint"], item.get("health") is True, str(item.get("error") or ""))
        for item in _json_list(stdout)
        if isinstance(item, dict) and isinstance(item.get("endpoint"), str)
    ]


def parse_status(stdout: str) -> list[EndpointStatus]:
    """`endpoint status -w json` output (the backup agent, self-contained on the hosts, reads it the same way)."""
    out = []
    for item in _json_list(stdout):
        if not isinstance(item, dict) or not isinstance(item.get("Endpoint"), str):
            continue
        status: dict[str, Any] = item["Status"] if isinstance(item.get("Status"), dict) else {}
        header: dict[str, Any] = status["header"] if isinstance(status.get("header"), dict) else {}
        try:
            member, lead = int(header.get("member_id", 0)), int(status.get("leader", 0))
            revision = int(header.get("revision", 0))
        except (TypeError, ValueError):
            continue
        out.append(EndpointStatus(item["Endpoint"], member, lead, revision))
    return out


def missing_or_sick(cluster: Cluster, report: list[EndpointHealth], nodes: NodeIPs | None = None) -> list[str]:
    """Client URLs of inventory members that are not reported healthy (empty: the whole cluster is healthy)."""
    healthy = {e.endpoint for e in report if e.healthy}
    urls = [member_client_url(cluster, h, nodes) for h in cluster.etcd_members]
    return [url for url in urls if url not in healthy]


def behind(
    cluster: Cluster, statuses: list[EndpointStatus], min_revision: int, nodes: NodeIPs | None = None
) -> list[str]:
    """Client URLs of members that do not answer at `min_revision` or later under the one leader they all name."""
    by_endpoint = {s.endpoint: s for s in statuses}
    leaders = {s.leader for s in statuses}
    agreed = len(leaders) == 1 and 0 not in leaders
    return [
        url
        for url in (member_client_url(cluster, h, nodes) for h in cluster.etcd_members)
        if url not in by_endpoint or by_endpoint[url].revision < min_revision or not agreed
    ]


def health_command(cluster: Cluster, nodes: NodeIPs | None = None) -> str:
    return endpoint_health_cmd(endpoints=client_endpoints(cluster, nodes), tls=HEALTHCHECK_TLS, whole_cluster=True)


def status_command(cluster: Cluster, nodes: NodeIPs | None = None, *, quick: bool = False) -> str:
    """`endpoint status` of every member; `quick` for a cluster that may well be down (a restore's first look)."""
    timeouts = ["--command-timeout=2s", "--dial-timeout=1s"] if quick else ["--command-timeout=5s"]
    return etcdctl(
        ["endpoint", "status", "-w", "json", *timeouts], endpoints=client_endpoints(cluster, nodes), tls=HEALTHCHECK_TLS
    )


def check_once(
    cluster: Cluster, transport: Transport, nodes: NodeIPs | None = None, *, min_revision: int | None = None
) -> tuple[list[str], str]:
    """(members not healthy, or not yet at `min_revision`; etcdctl's last error line)."""
    result = transport.run(health_command(cluster, nodes), timeout=30)
    report = parse_health(result.stdout)
    errors = [f"{e.endpoint}: {e.error}" for e in report if not e.healthy and e.error]
    last = errors[-1] if errors else (result.stderr.strip().splitlines() or [""])[-1]
    sick = missing_or_sick(cluster, report, nodes)
    if not sick and min_revision is not None:
        status = transport.run(status_command(cluster, nodes), timeout=30)
        sick = behind(cluster, parse_status(status.stdout), min_revision, nodes)
        last = f"not all at revision {min_revision} under one leader" if sick else ""
    return sick, last[-300:]


def wait_healthy(
    cluster: Cluster,
    transport: Transport,
    *,
    nodes: NodeIPs | None = None,
    min_revision: int | None = None,
    timeout: float = ETCD.health_timeout_s,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll until every member is healthy (and at `min_revision` or later, under one leader, when given); returns
    the seconds waited. Raises EtcdUnhealthy at the deadline, naming the members that are not. `nodes`: the run's node
    IPs (`rc.nodes`); without it, what the inventory alone tells."""
    started = clock()
    deadline = started + timeout
    while True:
        sick, last = check_once(cluster, transport, nodes, min_revision=min_revision)
        if not sick:
            return clock() - started
        if clock() >= deadline:
            raise EtcdUnhealthy(
                f"etcd not healthy after {timeout:.0f} s (asked from {transport.host}): {', '.join(sick)} "
                f"not healthy{f' — {last}' if last else ''}",
                hint="journalctl -u etcd on those members; check their clocks, addresses and certificates",
            )
        sleep(ETCD.health_poll_s)


def asker(cluster: Cluster, *, avoid: Collection[str] = ()) -> Host:
    """The member to run etcdctl on: the first in inventory order not in `avoid` (e.g. members that are only now
    starting: a running one answers soonest), else the first."""
    return next((h for h in cluster.etcd_members if h.name not in avoid), cluster.etcd_members[0])


def leader(cluster: Cluster, transport: Transport, nodes: NodeIPs | None = None) -> Host | None:
    """The member that leads right now, if etcd answers (it may well not: restores happen after disasters)."""
    by_url = {member_client_url(cluster, h, nodes): h for h in cluster.etcd_members}
    statuses = parse_status(transport.run(status_command(cluster, nodes, quick=True), timeout=15).stdout)
    return next((by_url[s.endpoint] for s in statuses if s.is_leader and s.endpoint in by_url), None)
