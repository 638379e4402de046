"""`keelson verify --chaos`: the checks that break something on purpose, each putting back what it broke.

- vip failover: keepalived stopped on the VIP holder (it hands the VIP over at once, priority 0), the seconds until
  another load-balancer host holds the VIP and the API answers through it, then keepalived started again on the old
  holder (`nopreempt`: the VIP stays where it went). Connections through the old holder break, as in any failover;
- etcd member: one member stopped (never the one the drill reads from), then the rest must stay healthy (quorum
  kept) and a write through the API must succeed (a ConfigMap created and deleted); the member is started again and
  the whole cluster must be healthy within the health gate's deadline.

Every wait is a condition polled with a deadline (`roles/engine/waiting.py`).
"""

from __future__ import annotations

import contextlib
import shlex
import time
import uuid
from collections.abc import Callable

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.control_plane.cluster_ops import KUBECTL
from roles.control_plane.verify import Check, first_answering, readyz, skipped
from roles.engine.transport import ConnectionPool, Transport
from roles.engine.waiting import until
from roles.etcd.commands import HEALTHCHECK_TLS, endpoint_health_cmd, member_client_url
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.etcd.health import check_once, parse_health

FAILOVER_DEADLINE_S = 30.0
QUORUM_DEADLINE_S = 60.0
POLL_S = 0.2


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
        return skipped("vip failover", "no keepalived pair to fail over")
    before = holders(cluster, pool)
    if len(before) != 1:
        return Check("vip failover", False, f"the VIP must have exactly one holder, found {before or 'none'}")
    old = next(h for h in cluster.lb_hosts if h.name == before[0])
    asker = first_answering(pool, [h for h in cluster.masters if h.name != old.name])
    if asker is None:
        return Check("vip failover", False, "no other master accepts an SSH login to watch the failover from")
    new: list[str] = []

    def moved() -> bool:
        new[:] = [h for h in holders(cluster, pool) if h != old.name]
        return bool(new) and readyz(asker, cluster)

    started = clock()
    pool.get(old).run("systemctl stop keepalived", timeout=60, check=True)
    try:
        if until(moved, timeout_s=FAILOVER_DEADLINE_S, every_s=POLL_S) is None:
            return Check("vip failover", False, f"no other host took the VIP within {FAILOVER_DEADLINE_S:.0f} s")
        took = round(clock() - started, 3)
        return Check(
            "vip failover",
            True,
            f"keepalived stopped on {old.name}: {new[0]} holds the VIP and the API answers after {took} s",
            {"failover_s": took, "from": old.name, "to": new[0]},
        )
    finally:
        pool.get(old).run("systemctl start keepalived", timeout=60)


def victim_of(members: list[Host], reader: str) -> Host:
    """The member to stop: the last in inventory order that is not the one the drill reads from."""
    return [m for m in members if m.name != reader][-1]


def _write_through_api(master: Transport) -> bool:
    """A ConfigMap created through the VIP (the admin kubeconfig's server), then deleted: a write etcd committed."""
    name = f"keelson-verify-{uuid.uuid4().hex[:10]}"
    create = f"{KUBECTL} -n default create configmap {shlex.quote(name)} --from-literal=by=keelson-verify -o name"
    made = master.run(f"{create} --request-timeout=5s", timeout=30)
    if made.rc != 0:
        return False
    master.run(f"{KUBECTL} -n default delete configmap {shlex.quote(name)} --ignore-not-found --request-timeout=10s")
    return True


def etcd_member_check(cluster: Cluster, pool: ConnectionPool, clock: Callable[[], float] = time.monotonic) -> Check:
    name = "etcd member stopped"
    members = cluster.etcd_members
    if len(members) < 3:
        return skipped(name, f"{len(members)} etcd member(s): stopping one would lose quorum")
    reader_host = next((h for h in members if _answers(pool, h)), None)
    if reader_host is None:
        return Check(name, False, "no etcd member accepts an SSH login")
    reader = pool.get(reader_host)
    sick, last = check_once(cluster, reader)
    if sick:
        return skipped(name, f"not run: etcd is not healthy before the drill ({', '.join(sick)})")
    victim = victim_of(members, reader_host.name)
    writer = first_answering(pool, [m for m in cluster.masters if m.name != victim.name])
    if writer is None:
        return Check(name, False, f"no master other than {victim.name} accepts an SSH login to write through the API")
    rest = [member_client_url(cluster, h) for h in members if h.name != victim.name]
    rest_health = endpoint_health_cmd(endpoints=rest, tls=HEALTHCHECK_TLS, whole_cluster=False)

    def quorum() -> bool:
        report = parse_health(reader.run(rest_health, timeout=30).stdout)
        return {e.endpoint for e in report if e.healthy} >= set(rest)

    started = clock()
    try:
        pool.get(victim).run(f"systemctl stop {ETCD.unit_name}", timeout=60, check=True)
    except KeelsonError as exc:
        with contextlib.suppress(KeelsonError):  # whatever happened to the stop: the member is to run afterwards
            pool.get(victim).run(f"systemctl start {ETCD.unit_name}", timeout=120)
        return Check(name, False, f"could not stop etcd on {victim.name}: {exc.message}")
    figures: dict[str, object] = {"stopped": victim.name, "members": len(members)}
    problem = ""
    try:
        if until(quorum, timeout_s=QUORUM_DEADLINE_S, every_s=POLL_S) is None:
            problem = f"the other {len(rest)} members were not all healthy within {QUORUM_DEADLINE_S:.0f} s"
        elif until(lambda: _write_through_api(writer), timeout_s=QUORUM_DEADLINE_S, every_s=POLL_S) is None:
            problem = f"no write through the API succeeded within {QUORUM_DEADLINE_S:.0f} s (asked from {writer.host})"
        else:
            figures["write_s"] = round(clock() - started, 3)
    finally:
        pool.get(victim).run(f"systemctl start {ETCD.unit_name}", timeout=120)
        back = clock()
        rejoined = until(lambda: not check_once(cluster, reader)[0], timeout_s=ETCD.health_timeout_s, every_s=0.5)
    if rejoined is None:
        sick, last = check_once(cluster, reader)
        problem = "; ".join(
            p
            for p in (problem, f"{victim.name} not healthy {ETCD.health_timeout_s:.0f} s after its start ({last})")
            if p
        )
    else:
        figures["rejoin_s"] = round(clock() - back, 3)
    if problem:
        return Check(name, False, f"etcd stopped on {victim.name}: {problem}", figures)
    detail = (
        f"etcd stopped on {victim.name}: the other {len(rest)} members healthy, a write through the API answered "
        f"after {figures['write_s']} s; {victim.name} healthy again {figures['rejoin_s']} s after its start"
    )
    return Check(name, True, detail, figures)


def _answers(pool: ConnectionPool, host: Host) -> bool:
    try:
        pool.get(host)
    except KeelsonError:
        return False
    return True
