"""Run a plan: connect, then each phase in order; per host gather facts, plan commands, run them in one script.

Facts: the first gathering on a host collects the facts of every remaining phase in one command; a phase that
changes the host drops them, so the next phase gathers fresh ones. A no-op rerun is therefore one SSH command per
host. Fail-fast per phase: when any host fails, later phases do not run.

Windows hosts (`os: windows`) go the same way with PowerShell scripts (roles/engine/powershell.py) and without the
POSIX-only parts: handlers are not kept durable there (no marker files), nothing is uploaded by SFTP, and a script
holding a secret reaches the host through stdin (the transport's choice), not as a private file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from inventory.errors import KeelsonError
from inventory.model import OS, Host
from roles.engine import discovery, powershell
from roles.engine import events as ev
from roles.engine import handlers as due
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.errors import CommandFailed, HostUnreachable
from roles.engine.fact_cache import FactCache, durable_handlers
from roles.engine.phase import AnyPhase, CustomPhase, HostOutcome, Phase, Plan, matches
from roles.engine.transport import ConnectionPool, Transport

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class HostSummary:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    dry_run: bool
    hosts: dict[str, HostSummary] = field(default_factory=dict)
    planned: dict[str, dict[str, list[Command]]] = field(default_factory=dict)  # phase -> host -> commands
    ssh_commands: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stopped_after: str | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)  # where the run's time went
    facts_ahead: list[str] = field(default_factory=list)  # hosts whose first fact batch was the one sent ahead

    @property
    def ok(self) -> bool:
        return all(s.failed == 0 for s in self.hosts.values())

    @property
    def changed_hosts(self) -> list[str]:
        return [h for h, s in self.hosts.items() if s.changed]

    def changes(self) -> dict[str, list[str]]:
        """Per host, the commands it ran (or would run), as `phase: command` the way a plan shows them."""
        out: dict[str, list[str]] = {}
        for phase, hosts in self.planned.items():
            for host, commands in hosts.items():
                out.setdefault(host, []).extend(f"{phase}: {c.shown()}" for c in commands)
        return out

    def record(self, phase: str, host: str, outcome: HostOutcome) -> None:
        summary = self.hosts.setdefault(host, HostSummary())
        if outcome.error is not None:
            summary.failed += 1
            summary.errors.append(f"{phase}: {outcome.error}")
        elif outcome.changed:
            summary.changed += 1
        else:
            summary.ok += 1
        if outcome.commands:
            self.planned.setdefault(phase, {})[host] = list(outcome.commands)


def host_script(commands: Sequence[Command], nonce: str) -> str:
    """The commands in order, each in its own subshell; the first failure stops the script and is marked. The
    subshell's status is read on the next line, not through `||`: bash ignores `set -e` in a command run as the left
    side of `||`, so a command's own `set -e` would stop nothing (a failed line, then the next ones, exit 0)."""
    parts = ["set -u"]
    for i, command in enumerate(commands):
        parts.append(f"printf '\\n@@KC-{nonce} {i}@@\\n'")
        parts.append(f"( {command.script}\n) 2>&1")
        parts.append(f"rc=$?; if [ $rc -ne 0 ]; then printf '\\n@@KX-{nonce} {i} %d@@\\n' $rc; exit $rc; fi")
    return "\n".join(parts) + "\n"


def failed_command(output: str, commands: Sequence[Command], nonce: str) -> tuple[Command | None, str]:
    """Which command failed and the tail of its output (secrets masked)."""
    marker = f"\n@@KX-{nonce} "
    if marker not in output:
        return None, output.strip()[-600:]
    head, _, tail = output.rpartition(marker)
    try:
        index = int(tail.split()[0])
    except (ValueError, IndexError):
        return None, output.strip()[-600:]
    own = head.rpartition(f"\n@@KC-{nonce} {index}@@\n")[2].strip()
    command = commands[index] if 0 <= index < len(commands) else None
    if command is not None:
        for secret in command.secrets:
            own = own.replace(secret, "***") if secret else own
    return command, own[-600:]


@dataclass(frozen=True)
class _HostPlan:
    """What a phase will do on a host: decided from its facts, not yet run."""

    ctx: HostContext
    transport: Transport
    commands: list[Command]


class Runner:
    def __init__(self, plan: Plan | Sequence[AnyPhase], rc: RunContext, pool: ConnectionPool | None = None) -> None:
        self.about = plan if isinstance(plan, Plan) else Plan("plan", list(plan))
        self.plan = [p for p in self.about.phases if self._selected(p, rc)]
        self.rc = rc
        # `pool`: one whose logins may have started ahead (ConnectionPool.connect_ahead); the run closes it
        self.pool = pool or ConnectionPool(rc.cluster, trust_on_first_use=rc.trust_on_first_use)
        self.facts = FactCache(rc, self.plan, self.pool.facts_ahead)
        self.pool.gathered = self.facts.lookup
        self.report = RunReport(dry_run=rc.dry_run)
        self._phase_started = time.monotonic()
        self._workers: ThreadPoolExecutor | None = None  # the run's threads, shared by its phases (_parallel)

    @staticmethod
    def _selected(phase: AnyPhase, rc: RunContext) -> bool:
        if rc.only is None or (isinstance(phase, Phase) and phase.always):
            return True
        return any(matches(phase, name) for name in rc.only)

    def run(self) -> RunReport:
        started = time.monotonic()
        if self.about.not_applied:
            self.rc.events(ev.NotAppliedYet(self.about.name, list(self.about.not_applied)))
        for note in self.about.notes:
            self.rc.events(ev.PlanNote(self.about.name, note))
        try:
            if not self._connect():
                self.report.stopped_after = "Connect"
            elif not self._discover():
                self.report.stopped_after = discovery.TITLE
            else:
                for index, phase in enumerate(self.plan):
                    if not self._phase(index, phase):
                        self.report.stopped_after = phase.title
                        break
        finally:
            if self._workers is not None:
                self._workers.shutdown()
            self.report.ssh_commands = self.pool.commands_run()
            self.report.facts_ahead = sorted(self.facts.ahead.used) if self.facts.ahead is not None else []
            self.pool.close()
            self.report.seconds = time.monotonic() - started
            self.rc.events(
                ev.RunFinished(
                    ok=self.report.ok,
                    dry_run=self.rc.dry_run,
                    seconds=round(self.report.seconds, 3),
                    hosts={
                        h: {"ok": s.ok, "changed": s.changed, "failed": s.failed, "errors": s.errors}
                        for h, s in self.report.hosts.items()
                    },
                    ssh_commands=self.report.ssh_commands,
                    facts_ahead=self.report.facts_ahead,
                )
            )
        return self.report

    def _hosts(self, phase: AnyPhase) -> list[Host]:
        return self.rc.selected(phase.hosts(self.rc.cluster))

    def _connect(self) -> bool:
        names: dict[str, Host] = {}
        for phase in self.plan:
            for host in self._hosts(phase):
                names.setdefault(host.name, host)
        hosts = list(names.values())
        self._phase_started = time.monotonic()
        self.rc.events(ev.PhaseStarted("Connect", [h.name for h in hosts]))
        self.pool.listen(lambda host, message: self.rc.events(ev.HostWarning("Connect", host, message)))

        def connect(host: Host) -> HostOutcome:
            try:
                self.pool.get(host)
            except KeelsonError as exc:
                return HostOutcome(error=str(exc))
            return HostOutcome()

        outcomes = self._parallel(hosts, connect)
        return self._finish("Connect", outcomes)

    def _discover(self) -> bool:
        """Node IPs of hosts the inventory names by DNS (roles/engine/discovery.py); silent when there are none."""
        hosts = self.rc.nodes.to_discover()
        if not self.plan or not hosts:
            return True
        self._phase_started = time.monotonic()
        self.rc.events(ev.PhaseStarted(discovery.TITLE, [h.name for h in hosts]))
        asked, errors = discovery.discover(self.rc.cluster, self.pool, self.rc.nodes, self.rc.concurrency)
        outcomes = {h.name: HostOutcome(error=errors.get(h.name)) for h in asked}
        outcomes.update({name: HostOutcome(error=e) for name, e in errors.items() if name not in outcomes})
        return self._finish(discovery.TITLE, outcomes)

    def _phase(self, index: int, phase: AnyPhase) -> bool:
        hosts = self._hosts(phase)
        self._phase_started = time.monotonic()
        self.facts.phase_starts(serial=isinstance(phase, Phase) and phase.serial)
        self.rc.events(ev.PhaseStarted(phase.title, [h.name for h in hosts]))
        if not hosts:
            self.rc.events(ev.PhaseFinished(phase.title, 0, 0, 0, skipped=True))
            return True
        if isinstance(phase, CustomPhase):
            return self._custom(phase, hosts)

        def one(host: Host) -> HostOutcome:
            return self._host_phase(index, phase, host)

        if phase.serial:
            outcomes: dict[str, HostOutcome] = {}
            for host in hosts:
                outcomes[host.name] = one(host)
                if outcomes[host.name].error is not None:
                    break  # a serial phase stops at the first host that fails its gate
        else:
            outcomes, plans = self._planned_here(index, phase, hosts)
            rest = [h for h in hosts if h.name in plans]
            outcomes.update(self._parallel(rest, lambda h: self._host_phase(index, phase, h, plans[h.name])))
            outcomes = {h.name: outcomes[h.name] for h in hosts}
        return self._finish(phase.title, outcomes)

    def _planned_here(
        self, index: int, phase: Phase, hosts: list[Host]
    ) -> tuple[dict[str, HostOutcome], dict[str, _HostPlan | None]]:
        """The outcome of each host whose plan needs no SSH and comes out empty (its facts already gathered, nothing
        to run, no gate to pass), decided in this thread: planning is Python work that holds the GIL, and on a busy
        machine handing it to a thread per host and back cost more than the work (0.1-0.7 s per phase of a no-op at
        load 45). The others are left to the run's threads with their plan (None: their facts are still to gather)."""
        done: dict[str, HostOutcome] = {}
        left: dict[str, _HostPlan | None] = {}
        for host in hosts:
            if not self.facts.cached(host, index):
                left[host.name] = None
                continue
            planned = self._guarded(host, functools.partial(self._plan_host, index, phase, host))
            if isinstance(planned, HostOutcome):
                done[host.name] = planned
            elif not self.rc.dry_run and (planned.commands or phase.gates(planned.commands)):
                left[host.name] = planned
            else:
                done[host.name] = self._host_phase(index, phase, host, planned)
        return done, left

    def _custom(self, phase: CustomPhase, hosts: list[Host]) -> bool:
        try:
            if self.rc.dry_run:
                planned = phase.dry_run(self.rc, self.pool)
                outcomes = {
                    h.name: HostOutcome(changed=bool(planned.get(h.name)), commands=tuple(planned.get(h.name, [])))
                    for h in hosts
                }
            else:
                outcomes = phase.run(self.rc, self.pool)
        except KeelsonError as exc:
            outcomes = {h.name: HostOutcome(error=str(exc)) for h in hosts}
        for name, outcome in outcomes.items():
            if outcome.commands:  # what it ran (or would run), as a phase of steps shows it
                self.rc.events(ev.HostPlanned(phase.title, name, [c.shown() for c in outcome.commands]))
            if outcome.changed:
                self.facts.invalidate(name)
        return self._finish(phase.title, outcomes)

    def _plan_host(self, index: int, phase: Phase, host: Host) -> _HostPlan:
        """The host's facts (gathered now if the cache lacks them), then its steps' and handlers' commands."""
        ctx = self.rc.host_context(host)
        transport = self.pool.get(host)
        facts = self.facts.for_phase(host, index, transport)
        commands: list[Command] = []
        notified: set[str] = set()
        for step in phase.steps:
            produced = step.check(ctx, facts)
            commands += produced
            if produced:
                notified.update(step.notifies)
            for warning in step.warnings(ctx, facts):
                self.rc.events(ev.HostWarning(phase.title, host.name, warning))
        handlers = {h.name: h for h in phase.handlers}
        unknown = notified - handlers.keys()
        if unknown:
            raise AssertionError(f"phase {phase.title!r} has no handler {sorted(unknown)}")
        durable = durable_handlers(phase, ctx)
        left_due = facts.get(due.PendingHandlers()) if durable else frozenset()
        newly_due = [due.marker(phase.slug, h.name) for h in phase.handlers if h.name in notified]
        if durable and newly_due:  # noted before the writes, so an interrupted run still leaves them due
            commands.insert(0, due.mark(newly_due))
        for handler in phase.handlers:  # in declaration order, once each
            name = due.marker(phase.slug, handler.name)
            if handler.name in notified or name in left_due:
                commands += handler.commands(ctx, facts)
                commands += [due.clear(name)] if durable else []
        return _HostPlan(ctx, transport, commands)

    def _host_phase(self, index: int, phase: Phase, host: Host, planned: _HostPlan | None = None) -> HostOutcome:
        def run() -> HostOutcome:
            plan = planned or self._plan_host(index, phase, host)
            commands = plan.commands
            if commands:
                self.rc.events(ev.HostPlanned(phase.title, host.name, [c.shown() for c in commands]))
            if self.rc.dry_run:
                return HostOutcome(changed=bool(commands), commands=tuple(commands))
            if commands:
                self.facts.invalidate(host.name)
                self._execute(plan.transport, host, commands)
            if phase.gate is not None and phase.gates(commands):
                phase.gate(plan.ctx, plan.transport)
            return HostOutcome(changed=bool(commands), commands=tuple(commands))

        outcome = self._guarded(host, run)
        assert isinstance(outcome, HostOutcome)
        return outcome

    def _guarded(self, host: Host, fn: Callable[[], T]) -> T | HostOutcome:
        """`fn()`, or the host's failed outcome when it raises a keelson error (an unreachable host is dropped)."""
        try:
            return fn()
        except HostUnreachable as exc:
            self.pool.drop(host)
            return HostOutcome(error=str(exc))
        except KeelsonError as exc:
            return HostOutcome(error=str(exc))

    def _execute(self, transport: Transport, target: Host, commands: list[Command]) -> None:
        host = target.name
        nonce = secrets.token_hex(6)
        uploads = {u.name: u.source for c in commands for u in c.uploads}
        script = (powershell.host_script if target.os is OS.WINDOWS else host_script)(commands, nonce)
        if uploads:
            folder = transport.send_files([(source, name) for name, source in uploads.items()])
            script = f"export KEELSON_UPLOADS={shlex.quote(folder)}\n{script}"
        private = any(c.sensitive for c in commands)  # a secret in the script: it must not travel in argv
        result = transport.run(script, timeout=900, private=private)
        if result.rc != 0:
            command, output = failed_command(result.stdout + result.stderr, commands, nonce)
            what = command.shown() if command else "the phase's script"
            raise CommandFailed(host, f"`{what}` failed (exit {result.rc}): {output}")

    def _parallel(self, hosts: list[Host], fn: Any) -> dict[str, HostOutcome]:
        """`fn` on every host, at most `concurrency` at a time, on threads the run's phases share (a pool per phase
        started a thread per host per phase: ~0.1 ms of CPU each, measured)."""
        if self._workers is None:
            self._workers = _all_started(max(1, min(self.rc.concurrency, len(self.rc.cluster.hosts))))
        results = list(self._workers.map(fn, hosts))
        return {h.name: r for h, r in zip(hosts, results, strict=True)}

    def _finish(self, title: str, outcomes: dict[str, HostOutcome]) -> bool:
        counts = [0, 0, 0]
        for host, outcome in outcomes.items():
            self.report.record(title, host, outcome) if title != "Connect" or outcome.error else None
            if outcome.error is not None:
                counts[2] += 1
                self.rc.events(ev.HostFailed(title, host, outcome.error))
            elif outcome.changed:
                counts[1] += 1
                self.rc.events(ev.HostChanged(title, host, len(outcome.commands)))
            else:
                counts[0] += 1
                self.rc.events(ev.HostOk(title, host))
        seconds = round(time.monotonic() - self._phase_started, 3)
        self.report.phase_seconds[title] = seconds
        self.rc.events(ev.PhaseFinished(title, ok=counts[0], changed=counts[1], failed=counts[2], seconds=seconds))
        return counts[2] == 0


def _all_started(workers: int) -> ThreadPoolExecutor:
    """A thread pool with all its `workers` threads running. ThreadPoolExecutor starts a thread for a task only when
    it counts no idle one, and counts one idle for every task that ended: after a phase of quick tasks (the Connect
    of hosts whose logins started ahead) it had started a few threads but counted many idle, and a phase of 20 fact
    batches then ran on those few, in waves (seen: 6 threads for 20 hosts, the last batches starting 0.2 s late).
    Tasks that wait for one another until every thread has one start them all."""
    pool = ThreadPoolExecutor(max_workers=workers)
    everyone = threading.Barrier(workers)
    with contextlib.suppress(threading.BrokenBarrierError):  # a thread that could not start in time: fewer run
        list(pool.map(lambda _: everyone.wait(timeout=30), range(workers)))
    return pool


def run_plan(plan: Plan | Sequence[AnyPhase], rc: RunContext, pool: ConnectionPool | None = None) -> RunReport:
    """Run a plan (or a bare list of phases) with everything `rc` says: the one way keelson runs phases. `pool`: the
    connections to use (logins started ahead), else the run's own."""
    return Runner(plan, rc, pool).run()
