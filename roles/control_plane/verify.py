"""`keelson verify`: a bounded drill on a running cluster, each check a pass or a fail with its reason and figures.

- etcd: every member of the inventory healthy (`endpoint health --cluster`, asked from the first member that answers);
- API: `/readyz` through the VIP, and every Linux node of the inventory Ready;
- VIP failover (unless skipped): keepalived stopped on the holder (it hands the VIP over at once, priority 0), the
  seconds until another load-balancer host holds the VIP and the API answers through it, then keepalived started
  again on the old holder (`nopreempt`: the VIP stays where it went). Connections through the old holder break, as
  in any failover: this is the one check that touches the cluster;
- certificates: none expires within `warn_days` on any host or in the state dir (`roles/pki/expiry.py`).

Not done here yet: restoring a backup into scratch hosts and comparing its object count.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.control_plane.cluster_ops import KUBECTL, linux_nodes
from roles.control_plane.defaults import DEFAULTS
from roles.control_plane.nodes import ready_nodes
from roles.engine.nodes import NodeIPs
from roles.engine.transport import ConnectionPool, Transport
from roles.etcd.commands import member_client_url
from roles.etcd.health import health_command, parse_health
from roles.pki.expiry import check as cert_check
from roles.pki.expiry import expiring
from roles.state import StateDir

FAILOVER_DEADLINE_S = 30.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verified:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _first_answering(pool: ConnectionPool, hosts: list[Host]) -> Transport | None:
    for host in hosts:
        try:
            return pool.get(host)
        except KeelsonError:
            continue
    return None


def etcd_check(cluster: Cluster, pool: ConnectionPool) -> Check:
    nodes = NodeIPs(cluster)
    names = {member_client_url(cluster, h, nodes): h.name for h in cluster.etcd_members}
    asker = _first_answering(pool, cluster.etcd_members)
    if asker is None:
        return Check("etcd", False, "no etcd member accepts an SSH login")
    report = parse_health(asker.run(health_command(cluster, nodes), timeout=60).stdout)
    healthy = {e.endpoint for e in report if e.healthy}
    errors = {e.endpoint: e.error for e in report if not e.healthy}
    sick = [url for url in names if url not in healthy]
    figures = {"members": len(names), "healthy": len(names) - len(sick)}
    if not sick:
        return Check("etcd", True, f"{len(names)} of {len(names)} members healthy", figures)
    why = "; ".join(f"{names[u]} ({u}) {errors.get(u) or 'did not answer'}" for u in sick)
    quorum = len(names) - len(sick) > len(names) // 2
    return Check(
        "etcd",
        False,
        f"{len(sick)} of {len(names)} members not healthy ({'quorum kept' if quorum else 'QUORUM LOST'}): {why}",
        figures,
    )


def _readyz(transport: Transport, cluster: Cluster) -> bool:
    url = f"https://{cluster.api_endpoint}/readyz"
    check = f"curl -fsS --max-time 2 --cacert {DEFAULTS.pki_dir}/ca.crt {url}"
    return transport.run(check, timeout=15).stdout.strip() == "ok"


def api_check(cluster: Cluster, pool: ConnectionPool) -> Check:
    master = _first_answering(pool, cluster.masters)
    if master is None:
        return Check("api", False, "no master accepts an SSH login")
    if not _readyz(master, cluster):
        return Check(
            "api", False, f"https://{cluster.api_endpoint}/readyz does not answer ok (asked from {master.host})"
        )
    out = master.run(f"{KUBECTL} get nodes -o json", timeout=60).stdout
    wanted = {h.name for h in linux_nodes(cluster)}
    missing = sorted(wanted - ready_nodes(out))
    figures = {"nodes_ready": len(wanted) - len(missing), "nodes": len(wanted)}
    if missing:
        return Check("api", False, f"API answers through the VIP; not Ready: {', '.join(missing)}", figures)
    return Check("api", True, f"/readyz ok through the VIP; {len(wanted)} nodes Ready", figures)


def holders(cluster: Cluster, pool: ConnectionPool) -> list[str]:
    vip = cluster.control_plane.vip.ip
    out = []
    for host in cluster.lb_hosts:
        try:
            if pool.get(host).run(f"ip -o addr show to {vip}", timeout=10).stdout.strip():
                out.append(host.name)
        except KeelsonError:
            continue
    return out


def failover_check(cluster: Cluster, pool: ConnectionPool, clock: Callable[[], float] = time.monotonic) -> Check:
    if cluster.control_plane.load_balancer == "external" or len(cluster.lb_hosts) < 2:
        return Check("vip failover", True, "skipped: no keepalived pair to fail over", {})
    before = holders(cluster, pool)
    if len(before) != 1:
        return Check("vip failover", False, f"the VIP must have exactly one holder, found {before or 'none'}")
    old = next(h for h in cluster.lb_hosts if h.name == before[0])
    others = [h for h in cluster.masters if h.name != old.name]
    asker = _first_answering(pool, others)
    if asker is None:
        return Check("vip failover", False, "no other master accepts an SSH login to watch the failover from")
    started = clock()
    pool.get(old).run("systemctl stop keepalived", timeout=60, check=True)
    try:
        new: list[str] = []
        while clock() - started < FAILOVER_DEADLINE_S:
            new = [h for h in holders(cluster, pool) if h != old.name]
            if new and _readyz(asker, cluster):
                took = round(clock() - started, 3)
                return Check(
                    "vip failover",
                    True,
                    f"keepalived stopped on {old.name}: {new[0]} holds the VIP and the API answers after {took} s",
                    {"failover_s": took, "from": old.name, "to": new[0]},
                )
        return Check("vip failover", False, f"no other host took the VIP within {FAILOVER_DEADLINE_S:.0f} s")
    finally:
        pool.get(old).run("systemctl start keepalived", timeout=60)


def cert_check_(cluster: Cluster, pool: ConnectionPool, state: StateDir | None, warn_days: int) -> Check:
    checked = cert_check(cluster.hosts, pool, state)
    now = dt.datetime.now(dt.UTC)
    soon = expiring(checked.records, warn_days, now)
    figures = {
        "certificates": len(checked.records),
        "min_days_left": min((r.days_left(now) for r in checked.records), default=None),
    }
    problems = [f"{r.host}:{r.path} expires in {r.days_left(now)} days" for r in soon[:5]]
    problems += [f"{u.host}:{u.path} unreadable" for u in checked.unreadable[:5]]
    problems += [f"{h}: {e}" for h, e in checked.errors.items()]
    if problems:
        return Check("certificates", False, "; ".join(problems), figures)
    return Check("certificates", True, f"{len(checked.records)} certificates, none within {warn_days} days", figures)


def verify(cluster: Cluster, state: StateDir | None, *, warn_days: int = 30, failover: bool = True) -> Verified:
    pool = ConnectionPool(cluster)
    done = Verified()
    try:
        done.checks.append(etcd_check(cluster, pool))
        done.checks.append(api_check(cluster, pool))
        if failover:
            done.checks.append(failover_check(cluster, pool))
        done.checks.append(cert_check_(cluster, pool, state, warn_days))
    finally:
        pool.close()
    return done
