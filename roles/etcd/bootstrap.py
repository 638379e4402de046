"""`etcd | Start members`: start every member that is not running, all at once, then wait for the health gate.

Members of a new cluster must start together: each one's start blocks (Type=notify) until a quorum of peers is up,
so they are started with `--no-block` in parallel and the gate polls `endpoint health --cluster` with a deadline.
The same path brings back stopped members of an existing cluster (they rejoin from their data dir) and finishes an
interrupted bootstrap. Restarting *running* members after a change is not done here: that is the serial
"etcd | Rolling restart" phase, one member at a time.

A member with an empty data dir next to a cluster that already has quorum is not started here (its config says
`new`, which would make it a cluster of its own, or fail): it joins with `keelson join` (`roles/etcd/membership.py`:
`etcdctl member add`, then `initial-cluster-state: existing`), and the apply says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.errors import CommandFailed, EngineError
from roles.engine.facts import CommandOutput, Fact, FileText
from roles.engine.nodes import NodeIPs
from roles.engine.phase import CustomPhase, HostOutcome, facts_on
from roles.engine.transport import ConnectionPool
from roles.etcd.commands import HEALTHCHECK_TLS, endpoint_health_cmd, member_client_url
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.etcd.facts import MemberState, MemberStateFact
from roles.etcd.health import asker, health_command, missing_or_sick, parse_health, wait_healthy
from roles.etcd.render import kept_block
from roles.etcd.steps import desired_digest, mark_applied
from roles.state import StateDir


class NewMemberOfRunningCluster(KeelsonError):
    """An inventory member without data next to a running etcd cluster: `keelson join` adds it (`member add`)."""


def start_command() -> Command:
    unit = ETCD.unit_name
    return Command(
        f"systemctl reset-failed {unit} 2>/dev/null; systemctl restart --no-block {unit}",
        description=f"etcd | start {unit} (no wait: the members start together)",
    )


@dataclass(frozen=True)
class StartPlan:
    """Which members to start: those not running, and those running something that is not our member (e.g.
    Debian's own etcd on an empty data dir), which are started afresh with keelson's unit."""

    start: list[str]


def decide(cluster: Cluster, states: dict[str, MemberState], has_quorum: bool) -> StartPlan:
    """Pure decision from each member's state. Raises NewMemberOfRunningCluster for a new member of a live cluster."""
    members = [h.name for h in cluster.etcd_members]
    without_data = [n for n in members if not states[n].has_data]
    if without_data and len(without_data) < len(members) and has_quorum:
        raise NewMemberOfRunningCluster(
            f"etcd member(s) {', '.join(without_data)} have no data but the cluster is already running: a new "
            "member joins a running cluster with `keelson join` (etcdctl member add, then it starts with "
            "initial-cluster-state: existing), not with apply",
            hint=f"keelson join -i INVENTORY {' '.join(without_data)}",
        )
    start = [n for n in members if not states[n].running or (not states[n].has_data and states[n].active == "active")]
    return StartPlan(start=start)


def health_fact(cluster: Cluster, nodes: NodeIPs) -> CommandOutput:
    """`endpoint health --cluster`, as the gate asks it, for a fact batch."""
    return CommandOutput("etcd-health", health_command(cluster, nodes))


def batch_asker(cluster: Cluster) -> list[Host]:
    """The member whose fact batch asks etcd's health: the middle one. With etcd on the masters, the last master's
    batch already asks the API (roles/control_plane/nodes.py): each slow read in the batch of a host of its own,
    they run at once."""
    members = cluster.etcd_members
    return members[len(members) // 2 :][:1]


class StartMembers(CustomPhase):
    """When no member is to be started, the gate's answer is the health `batch_asker`'s fact batch gathered at the
    start of this run (the runner answers from the batch only while the run has changed nothing; else it is asked
    now); a cluster not healthy then is polled as after a start."""

    title = "etcd | Start members (parallel) and wait until healthy"

    def hosts(self, cluster: Cluster) -> list[Host]:
        return cluster.etcd_members

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (
            *facts_on(ctx, self.hosts, MemberStateFact(ctx.cluster.etcd.data_dir), FileText(ETCD.config_file)),
            *facts_on(ctx, batch_asker, health_fact(ctx.cluster, ctx.nodes)),
        )

    @staticmethod
    def _healthy_now(rc: RunContext, pool: ConnectionPool) -> bool:
        stdout, _ = pool.read_fact(batch_asker(rc.cluster)[0], health_fact(rc.cluster, rc.nodes))
        return not missing_or_sick(rc.cluster, parse_health(stdout), rc.nodes)

    # -- reading ------------------------------------------------------------------------------------------
    @staticmethod
    def _states(cluster: Cluster, pool: ConnectionPool) -> dict[str, MemberState]:
        fact = MemberStateFact(cluster.etcd.data_dir)
        states = pool.read_facts(cluster.etcd_members, lambda _: fact)
        for name, state in states.items():
            if not state.complete:  # deciding on part of it could restart a running member
                raise EngineError(
                    name, "could not read the etcd member's state", hint="rerun: nothing was started or restarted"
                )
        return states

    @staticmethod
    def _has_quorum(rc: RunContext, pool: ConnectionPool, states: dict[str, MemberState]) -> bool:
        """Does any member with data answer health (a live cluster)? Only asked when some member has no data."""
        with_data = [h for h in rc.cluster.etcd_members if states[h.name].has_data and states[h.name].running]
        if not with_data or all(s.has_data for s in states.values()):
            return False
        urls = ",".join(member_client_url(rc.cluster, h, rc.nodes) for h in with_data)
        out = pool.get(with_data[0]).run(endpoint_health_cmd(endpoints=urls, tls=HEALTHCHECK_TLS, whole_cluster=False))
        return any(e.healthy for e in parse_health(out.stdout))

    def _plan(self, rc: RunContext, pool: ConnectionPool) -> tuple[StartPlan, dict[str, MemberState]]:
        states = self._states(rc.cluster, pool)
        return decide(rc.cluster, states, self._has_quorum(rc, pool, states)), states

    # -- the phase ----------------------------------------------------------------------------------------
    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        plan, _ = self._plan(rc, pool)
        return {name: [start_command()] for name in plan.start}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        cluster = rc.cluster
        plan, states = self._plan(rc, pool)
        members = {h.name: h for h in cluster.etcd_members}
        command = start_command()
        if plan.start:

            def start(name: str) -> None:
                result = pool.get(members[name]).run(command.script, timeout=60)
                if result.rc != 0:
                    raise CommandFailed(name, f"`{command.shown()}` failed (exit {result.rc}): {result.stderr[-300:]}")

            with ThreadPoolExecutor(max_workers=len(plan.start)) as ex:
                list(ex.map(start, plan.start))
        if plan.start or not self._healthy_now(rc, pool):
            wait_healthy(cluster, pool.get(asker(cluster, avoid=plan.start)), nodes=rc.nodes)
        state = StateDir(rc.state_dir)
        outcomes: dict[str, HostOutcome] = {}
        for name in plan.start:
            config = pool.read_fact(members[name], FileText(ETCD.config_file))
            bootstrap = kept_block(config, has_data=states[name].has_data)  # the lines it started with
            digest = desired_digest(cluster, members[name], state, rc.nodes, bootstrap=bootstrap)
            commands = [command]
            if digest is not None:
                mark = mark_applied(digest)
                pool.get(members[name]).run(mark.script, timeout=30, check=True)
                commands.append(mark)
            outcomes[name] = HostOutcome(changed=True, commands=tuple(commands))
        for name in members:
            outcomes.setdefault(name, HostOutcome())
        return outcomes
