"""`keelson verify`: a bounded drill on a running cluster, each check a pass, a fail or a skip with its reason and
figures. Safe by default — it reads, and boots a scratch host of its own; only `chaos` touches the cluster:

- etcd: every member of the inventory healthy (`endpoint health --cluster`, asked from the first member that answers);
- API: `/readyz` through the VIP, and every Linux node of the inventory Ready;
- certificates: none expires within `warn_days` on any host or in the state dir (`roles/pki/expiry.py`);
- restore: the newest backup (or, `fresh_backup`, one taken now) restored into a scratch host — never the live
  cluster — and its objects under /registry/ counted against the live cluster's at the snapshot's revision
  (`backups/scratch.py`; `scratch="none"` skips it, as does a machine where no scratch lab can boot);
- with `chaos` (`roles/control_plane/verify_chaos.py`): a VIP failover measured (keepalived stopped on the holder:
  connections through it break), and one etcd member stopped — the cluster must keep quorum and take a write
  through the API — then started again and healthy within a deadline.
"""

from __future__ import annotations

import datetime as dt
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


@dataclass
class Check:
    name: str
    ok: bool  # a skipped check is not a pass: ok is False, and `skipped` says it does not fail the run
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else "pass" if self.ok else "fail"


def skipped(name: str, why: str) -> Check:
    return Check(name, False, why, skipped=True)


@dataclass
class Verified:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check passed or was skipped (with its reason)."""
        return all(c.ok or c.skipped for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [{**asdict(c), "status": c.status} for c in self.checks]}

    def lines(self) -> list[tuple[str, str]]:
        """(mark, text) per check: PASS, FAIL or SKIP, then `name: detail`."""
        marks = {"pass": "PASS", "fail": "FAIL", "skipped": "SKIP"}
        return [(marks[c.status], f"{c.name}: {c.detail}") for c in self.checks]


def first_answering(pool: ConnectionPool, hosts: list[Host]) -> Transport | None:
    for host in hosts:
        try:
            return pool.get(host)
        except KeelsonError:
            continue
    return None


def etcd_check(cluster: Cluster, pool: ConnectionPool) -> Check:
    nodes = NodeIPs(cluster)
    names = {member_client_url(cluster, h, nodes): h.name for h in cluster.etcd_members}
    asker = first_answering(pool, cluster.etcd_members)
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


def readyz(transport: Transport, cluster: Cluster) -> bool:
    url = f"https://{cluster.api_endpoint}/readyz"
    check = f"curl -fsS --max-time 2 --cacert {DEFAULTS.pki_dir}/ca.crt {url}"
    return transport.run(check, timeout=15).stdout.strip() == "ok"


def api_check(cluster: Cluster, pool: ConnectionPool) -> Check:
    master = first_answering(pool, cluster.masters)
    if master is None:
        return Check("api", False, "no master accepts an SSH login")
    if not readyz(master, cluster):
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


def restore_check(cluster: Cluster, *, scratch: str, fresh_backup: bool) -> Check:
    from backups.scratch import drill

    done = drill(cluster, scratch=scratch, fresh=fresh_backup)
    if done.status == "skipped":
        return Check("restore", False, done.detail, done.figures, skipped=True)
    return Check("restore", done.status == "pass", done.detail, done.figures)


def verify(
    cluster: Cluster,
    state: StateDir | None,
    *,
    warn_days: int = 30,
    chaos: bool = False,
    scratch: str = "lab",
    fresh_backup: bool = False,
) -> Verified:
    from roles.control_plane.verify_chaos import etcd_member_check, failover_check

    pool = ConnectionPool(cluster)
    done = Verified()
    try:
        done.checks.append(etcd_check(cluster, pool))
        done.checks.append(api_check(cluster, pool))
        done.checks.append(cert_check_(cluster, pool, state, warn_days))
        done.checks.append(restore_check(cluster, scratch=scratch, fresh_backup=fresh_backup))
        if chaos:
            done.checks.append(failover_check(cluster, pool))
            done.checks.append(etcd_member_check(cluster, pool))
    finally:
        pool.close()
    return done
