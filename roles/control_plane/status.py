"""`keelson status`: the cluster as it is — nodes and their readiness (through the VIP), which load-balancer host
holds the VIP, etcd's members and health, the last backup. Each part is read on its own: one that cannot be read
is reported as such and the others still are."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import Cluster
from roles.engine.transport import ConnectionPool
from roles.etcd.health import health_command, parse_health
from roles.state import StateDir


@dataclass
class Status:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    vip_holder: str | None = None
    etcd: list[dict[str, Any]] = field(default_factory=list)
    last_backup: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        nodes_ok = bool(self.nodes) and all(n["ready"] for n in self.nodes)
        etcd_ok = bool(self.etcd) and all(m["healthy"] for m in self.etcd)
        return nodes_ok and etcd_ok and self.vip_holder is not None and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def node_rows(nodes: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for item in nodes.get("items") or []:
        meta, status = item.get("metadata") or {}, item.get("status") or {}
        labels = meta.get("labels") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        rows.append(
            {
                "name": meta.get("name"),
                "ready": ready,
                "control_plane": "node-role.kubernetes.io/control-plane" in labels,
                "version": (status.get("nodeInfo") or {}).get("kubeletVersion"),
            }
        )
    return sorted(rows, key=lambda r: str(r["name"]))


def gather(cluster: Cluster, state: StateDir) -> Status:
    from roles.control_plane.api import KubeAPI

    status = Status()
    try:
        status.nodes = node_rows(KubeAPI(cluster, state).get("/api/v1/nodes"))
    except KeelsonError as exc:
        status.problems.append(f"nodes: {exc.message}")
    pool = ConnectionPool(cluster)
    try:
        _vip_and_etcd(cluster, pool, status)
    finally:
        pool.close()
    try:
        from backups.operations import backup_list

        listing = backup_list(cluster, offsite=False).as_dict()
        status.last_backup = _newest(listing)
    except KeelsonError as exc:
        status.problems.append(f"backups: {exc.message}")
    return status


def _vip_and_etcd(cluster: Cluster, pool: ConnectionPool, status: Status) -> None:
    vip = cluster.control_plane.vip.ip

    def holds(host: Any) -> bool:
        try:
            return bool(pool.get(host).run(f"ip -o addr show to {vip}", timeout=10).stdout.strip())
        except KeelsonError:
            return False

    with ThreadPoolExecutor(max_workers=max(1, len(cluster.lb_hosts))) as ex:
        holders = [h.name for h, held in zip(cluster.lb_hosts, ex.map(holds, cluster.lb_hosts), strict=True) if held]
    status.vip_holder = holders[0] if len(holders) == 1 else None
    if len(holders) > 1:
        status.problems.append(f"VIP {vip} is held by several hosts at once: {', '.join(holders)}")
    for member in cluster.etcd_members:
        try:
            out = pool.get(member).run(health_command(cluster), timeout=30).stdout
        except KeelsonError:
            continue
        status.etcd = [{"endpoint": e.endpoint, "healthy": e.healthy, "error": e.error} for e in parse_health(out)]
        if status.etcd:
            return
    status.problems.append("etcd: no member answered")


def _newest(listing: dict[str, Any]) -> dict[str, Any] | None:
    """The newest successful snapshot over every member (the agent's "local" target status)."""
    local = (listing.get("targets") or {}).get("local") or {}
    found = local.get("last_success")
    return dict(found) if isinstance(found, dict) else None


def describe(status: Status) -> str:
    lines = ["nodes:"]
    for n in status.nodes:
        role = "control-plane" if n["control_plane"] else "worker"
        lines.append(f"  {n['name']:<12} {'Ready' if n['ready'] else 'NotReady':<9} {role:<14} {n['version'] or ''}")
    if not status.nodes:
        lines.append("  (none read)")
    lines.append(f"VIP holder: {status.vip_holder or 'none'}")
    lines.append("etcd:")
    lines += [f"  {m['endpoint']:<28} {'healthy' if m['healthy'] else 'UNHEALTHY ' + m['error']}" for m in status.etcd]
    lines.append(f"last backup: {json.dumps(status.last_backup) if status.last_backup else 'none'}")
    lines += [f"problem: {p}" for p in status.problems]
    lines.append("healthy" if status.healthy else "NOT healthy")
    return "\n".join(lines)
