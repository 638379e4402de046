"""The etcd health gate: `etcdctl endpoint health --cluster -w json` over TLS, polled until every member of the
inventory is healthy or a deadline passes. Parsing is pure; waiting takes the clock and the sleep as arguments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from inventory.errors import KeelsonError
from inventory.model import Cluster
from roles.engine.transport import Transport
from roles.etcd import defaults
from roles.etcd.commands import HEALTHCHECK_TLS, client_endpoints, endpoint_health_cmd, member_client_url


class EtcdUnhealthy(KeelsonError):
    """The etcd cluster did not become healthy before the deadline."""


@dataclass(frozen=True)
class EndpointHealth:
    endpoint: str
    healthy: bool
    error: str = ""


def parse_health(stdout: str) -> list[EndpointHealth]:
    """`endpoint health -w json` output (3.4–3.6: a JSON list; printed even when some endpoint is down). Junk → []."""
    start = stdout.find("[")
    if start < 0:
        return []
    try:
        data = json.loads(stdout[start : stdout.rfind("]") + 1])
    except ValueError:
        return []
    out = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict) and isinstance(item.get("endpoint"), str):
            out.append(EndpointHealth(item["endpoint"], item.get("health") is True, str(item.get("error") or "")))
    return out


def missing_or_sick(cluster: Cluster, report: list[EndpointHealth]) -> list[str]:
    """Client URLs of inventory members that are not reported healthy (empty: the whole cluster is healthy)."""
    healthy = {e.endpoint for e in report if e.healthy}
    return [member_client_url(cluster, h) for h in cluster.etcd_members if member_client_url(cluster, h) not in healthy]


def health_command(cluster: Cluster) -> str:
    return endpoint_health_cmd(endpoints=client_endpoints(cluster), tls=HEALTHCHECK_TLS, whole_cluster=True)


def check_once(cluster: Cluster, transport: Transport) -> tuple[list[str], str]:
    """(members not healthy, etcdctl's last error line)."""
    result = transport.run(health_command(cluster), timeout=30)
    report = parse_health(result.stdout)
    errors = [f"{e.endpoint}: {e.error}" for e in report if not e.healthy and e.error]
    last = errors[-1] if errors else (result.stderr.strip().splitlines() or [""])[-1]
    return missing_or_sick(cluster, report), last[-300:]


def wait_healthy(
    cluster: Cluster,
    transport: Transport,
    *,
    timeout: float = defaults.HEALTH_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll until every member is healthy; returns the seconds waited. Raises EtcdUnhealthy at the deadline."""
    started = clock()
    deadline = started + timeout
    while True:
        sick, last = check_once(cluster, transport)
        if not sick:
            return clock() - started
        if clock() >= deadline:
            raise EtcdUnhealthy(
                f"etcd not healthy after {timeout:.0f} s (asked from {transport.host}): {', '.join(sick)} "
                f"not healthy{f' — {last}' if last else ''}",
                hint="journalctl -u etcd on those members; check their clocks, addresses and certificates",
            )
        sleep(defaults.HEALTH_POLL_S)
