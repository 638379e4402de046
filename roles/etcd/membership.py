"""Members joining and leaving the running etcd cluster: the custom phases of `keelson join` and `keelson remove`.

`AddMembers` ("etcd | Add members …"), one joining member at a time: from a healthy member of the running cluster,
`etcdctl member add NAME --peer-urls=URL` (skipped when a member of that name or peer URL is listed, started or not),
then the joining member's config with `initial-cluster-state: existing` and the `initial-cluster` the add answered
(`roles/etcd/render.py`, `joining_block`), etcd started, and the health gate — every member of the cluster so far
healthy — before the next one. Refused before anything changes when the running cluster is not healthy, or is not the
inventory's without the joining hosts (`roles/etcd/members.py`, `join_plan`).

`RemoveMembers` ("etcd | Remove members …"): from a member that stays, `etcdctl member remove ID` for each leaving host
still listed (by name or peer URL: a dead host is removed all the same), then the health gate on the members that
stay. `StayingMembersHealthy` runs first in the removal plan and refuses — before a node is drained — unless every
member that stays is healthy now. The count rule (quorum, odd) is checked offline before: `members.count_problem`.

The members' other files (certificates, unit, data dir) are the apply's phases, narrowed to the joining hosts by the
join plan; the reset cleans a leaving member's data and config.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.engine.command import Command, FileWrite
from roles.engine.context import HostContext, RunContext
from roles.engine.errors import CommandFailed
from roles.engine.facts import Fact
from roles.engine.nodes import NodeIPs
from roles.engine.phase import CustomPhase, HostOutcome, facts_on
from roles.engine.transport import CommandResult, ConnectionPool, Transport
from roles.engine.waiting import until
from roles.etcd.bootstrap import start_command
from roles.etcd.commands import HEALTHCHECK_TLS, client_endpoints, etcdctl, member_peer_url
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.etcd.facts import MemberState, MemberStateFact
from roles.etcd.health import check_once, wait_healthy
from roles.etcd.members import (
    Member,
    MemberJoin,
    MembershipRefused,
    find_member,
    initial_cluster_for,
    join_plan,
    parse_member_list,
    peer_names,
    without,
)
from roles.etcd.render import joining_block, render_config
from roles.etcd.steps import desired_digest, mark_applied
from roles.state import StateDir


def member_list_cmd(cluster: Cluster, nodes: NodeIPs | None = None) -> str:
    return etcdctl(["member", "list", "-w", "json"], endpoints=client_endpoints(cluster, nodes), tls=HEALTHCHECK_TLS)


def member_add_cmd(cluster: Cluster, name: str, peer_url: str, nodes: NodeIPs | None = None) -> str:
    args = ["member", "add", name, f"--peer-urls={peer_url}", "-w", "json"]
    return etcdctl(args, endpoints=client_endpoints(cluster, nodes), tls=HEALTHCHECK_TLS)


def member_remove_cmd(cluster: Cluster, member: Member, nodes: NodeIPs | None = None) -> str:
    return etcdctl(["member", "remove", member.hex_id], endpoints=client_endpoints(cluster, nodes), tls=HEALTHCHECK_TLS)


def ask_members(cluster: Cluster, pool: ConnectionPool, nodes: NodeIPs | None = None) -> tuple[Transport, list[Member]]:
    """The first member of `cluster` that answers `member list`, and the list. Raises MembershipRefused."""
    errors = []
    for host in cluster.etcd_members:
        try:
            transport = pool.get(host)
        except KeelsonError as exc:
            errors.append(f"{host.name}: {exc.message}")
            continue
        result = transport.run(member_list_cmd(cluster, nodes), timeout=60)
        members = parse_member_list(result.stdout)
        if result.rc == 0 and members:
            return transport, members
        errors.append(f"{host.name}: {(result.stderr or result.stdout).strip()[-200:] or f'exit {result.rc}'}")
    raise MembershipRefused(
        "no etcd member of the running cluster answers `member list`: " + "; ".join(errors),
        hint="keelson status -i INVENTORY; etcd must run (with quorum) before a member joins or leaves",
    )


def refuse_unless_healthy(cluster: Cluster, transport: Transport, nodes: NodeIPs | None, action: str) -> None:
    sick, last = check_once(cluster, transport, nodes)
    if sick:
        raise MembershipRefused(
            f"etcd is not healthy: {', '.join(sick)} not healthy{f' — {last}' if last else ''}; refusing {action}",
            hint="bring those members back first (keelson status -i INVENTORY; journalctl -u etcd there)",
        )


class AddMembers(CustomPhase):
    """Join `names` (etcd members of the inventory) to the running etcd cluster, one at a time."""

    title = "etcd | Add members to the running cluster (member add, start; one at a time, healthy between)"

    def __init__(self, names: Collection[str]) -> None:
        self.names = frozenset(names)

    def hosts(self, cluster: Cluster) -> list[Host]:
        return [h for h in cluster.etcd_members if h.name in self.names]

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return facts_on(ctx, self.hosts, MemberStateFact(ctx.cluster.etcd.data_dir))

    def _plan(self, rc: RunContext, pool: ConnectionPool) -> tuple[Transport, list[Member], list[MemberJoin]]:
        cluster = rc.cluster
        running = without(cluster, self.names)
        transport, members = ask_members(running, pool, rc.nodes)
        fact = MemberStateFact(cluster.etcd.data_dir)
        states: dict[str, MemberState] = pool.read_facts(self.hosts(cluster), lambda _: fact)
        incomplete = [name for name, state in states.items() if not state.complete]
        if incomplete:
            raise MembershipRefused(f"could not read the etcd state of {', '.join(incomplete)}", hint="rerun")
        return transport, members, join_plan(cluster, self.names, members, states, rc.nodes)

    def _peer(self, rc: RunContext, name: str) -> str:
        return member_peer_url(rc.cluster, rc.cluster.host(name), rc.nodes)

    def _add(self, rc: RunContext, running: Cluster, name: str, asker: str) -> Command:
        """`member add`, run on `asker`, a member of the running cluster (shown under the joining host: it is that
        host's membership that changes)."""
        peer = self._peer(rc, name)
        what = f"on {asker}: etcdctl member add {name} --peer-urls={peer}"
        return Command(member_add_cmd(running, name, peer, rc.nodes), description=what, summary_only=True)

    def _start(self, rc: RunContext, name: str, initial: str) -> list[Command]:
        """On the joining host: its config with the running cluster's members and `existing`, then etcd started."""
        host = rc.cluster.host(name)
        config = render_config(rc.cluster, host, rc.nodes, bootstrap=joining_block(rc.cluster, initial))
        return [FileWrite(ETCD.config_file, config, mode=0o644).to_command(), start_command()]

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        cluster = rc.cluster
        transport, members, joins = self._plan(rc, pool)
        if any(j.add or j.start for j in joins):
            refuse_unless_healthy(without(cluster, self.names), transport, rc.nodes, "to add members")
        names, order = peer_names(cluster, rc.nodes), [h.name for h in cluster.etcd_members]
        planned: dict[str, list[Command]] = {}
        for join in joins:
            if join.add:
                members = [*members, Member(0, "", (self._peer(rc, join.host),))]
                planned[join.host] = [self._add(rc, without(cluster, self.names), join.host, transport.host)]
            if join.start:
                initial = initial_cluster_for(members, names, order)
                planned.setdefault(join.host, []).extend(self._start(rc, join.host, initial))
        return planned

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        cluster = rc.cluster
        transport, members, joins = self._plan(rc, pool)
        outcomes = {h.name: HostOutcome() for h in self.hosts(cluster)}
        if not any(j.add or j.start for j in joins):
            return outcomes
        refuse_unless_healthy(without(cluster, self.names), transport, rc.nodes, "to add members")
        names, order = peer_names(cluster, rc.nodes), [h.name for h in cluster.etcd_members]
        pending = set(self.names)
        for join in joins:
            running = without(cluster, pending)  # the members before this one
            pending.discard(join.host)
            if not (join.add or join.start):
                continue
            host = cluster.host(join.host)
            done: list[Command] = []
            if join.add:
                add = self._add(rc, running, host.name, transport.host)
                result = run_member_add(transport, add.script)
                if result.rc != 0:
                    raise CommandFailed(
                        transport.host,
                        f"etcdctl member add {host.name} failed (exit {result.rc}): {result.stderr.strip()[-400:]}",
                    )
                members = parse_member_list(result.stdout) or ask_members(running, pool, rc.nodes)[1]
                done.append(add)
            initial = initial_cluster_for(members, names, order)
            for command in self._start(rc, host.name, initial):
                result = pool.get(host).run(command.script, timeout=120)
                if result.rc != 0:
                    raise CommandFailed(
                        host.name, f"`{command.shown()}` failed (exit {result.rc}): {result.stderr.strip()[-400:]}"
                    )
                done.append(command)
            wait_healthy(without(cluster, pending), transport, nodes=rc.nodes)  # every member so far, this one too
            bootstrap = joining_block(cluster, initial)
            digest = desired_digest(cluster, host, StateDir(rc.state_dir), rc.nodes, bootstrap=bootstrap)
            if digest is not None:
                mark = mark_applied(digest)
                pool.get(host).run(mark.script, timeout=30, check=True)
                done.append(mark)
            outcomes[host.name] = HostOutcome(changed=True, commands=tuple(done))
        return outcomes


# etcd refuses a member add ("etcdserver: unhealthy cluster", ErrUnhealthy) until its leader has been connected to a
# quorum of the members for its HealthInterval (5 s) — so right after the previous joining member started, however
# healthy every member already answers. Nothing is added by a refused add: it is asked again, up to this deadline.
MEMBER_ADD_DEADLINE_S = 60.0
UNHEALTHY = "etcdserver: unhealthy cluster"


def run_member_add(transport: Transport, script: str, deadline_s: float = MEMBER_ADD_DEADLINE_S) -> CommandResult:
    """`member add`, asked again every second while etcd answers that the cluster is not yet ready for one; the last
    answer otherwise (success, another failure, or the refusal still at the deadline)."""
    answers: list[CommandResult] = []

    def added_or_refused_for_good() -> bool:
        answers.append(transport.run(script, timeout=60))
        return not (answers[-1].rc != 0 and UNHEALTHY in answers[-1].stderr)

    until(added_or_refused_for_good, timeout_s=deadline_s, every_s=1.0)
    return answers[-1]


class _Leaving(CustomPhase):
    """Run from a member that stays: `hosts` are those (the leaving ones may be dead: nothing connects to them)."""

    def __init__(self, names: Collection[str]) -> None:
        self.names = frozenset(names)

    def hosts(self, cluster: Cluster) -> list[Host]:
        return [h for h in cluster.etcd_members if h.name not in self.names]


class StayingMembersHealthy(_Leaving):
    """Before a removal changes anything: every member that stays is healthy (else refused, nothing done)."""

    title = "etcd | The members that stay are healthy (before anything is removed)"

    def _check(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        staying = without(rc.cluster, self.names)
        transport, _ = ask_members(staying, pool, rc.nodes)
        refuse_unless_healthy(staying, transport, rc.nodes, "to remove members")
        return {}

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return self._check(rc, pool)

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        self._check(rc, pool)
        return {h.name: HostOutcome() for h in self.hosts(rc.cluster)}


class RemoveMembers(_Leaving):
    """`etcdctl member remove` for each leaving host etcd still lists, then every staying member healthy."""

    title = "etcd | Remove members (member remove, from a member that stays)"

    def _listed(self, rc: RunContext, pool: ConnectionPool) -> tuple[Transport, list[tuple[str, Member]]]:
        staying = without(rc.cluster, self.names)
        transport, members = ask_members(staying, pool, rc.nodes)
        leaving = [h for h in rc.cluster.etcd_members if h.name in self.names]
        found = [(h.name, find_member(members, h.name, member_peer_url(rc.cluster, h, rc.nodes))) for h in leaving]
        return transport, [(name, m) for name, m in found if m is not None]

    def _command(self, rc: RunContext, name: str, member: Member) -> Command:
        staying = without(rc.cluster, self.names)
        return Command(member_remove_cmd(staying, member, rc.nodes), description=f"etcdctl member remove {name}")

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        transport, listed = self._listed(rc, pool)
        return {transport.host: [self._command(rc, name, m) for name, m in listed]} if listed else {}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        outcomes = {h.name: HostOutcome() for h in self.hosts(rc.cluster)}
        transport, listed = self._listed(rc, pool)
        if not listed:
            return outcomes
        done = []
        for name, member in listed:
            command = self._command(rc, name, member)
            result = transport.run(command.script, timeout=60)
            if result.rc != 0 and "member not found" not in result.stderr:
                raise CommandFailed(
                    transport.host, f"etcdctl member remove {name} failed (exit {result.rc}): {result.stderr[-400:]}"
                )
            done.append(command)
        wait_healthy(without(rc.cluster, self.names), transport, nodes=rc.nodes)
        outcomes[transport.host] = HostOutcome(changed=True, commands=tuple(done))
        return outcomes
