"""The run's facts (roles/engine/runner.py): per host, the facts of every remaining phase gathered in one batched
command, kept until a phase changes the host; custom phases' questions answered from them while the run has changed
nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inventory.model import OS, Host
from roles.engine import handlers as due
from roles.engine import powershell
from roles.engine.context import HostContext, RunContext
from roles.engine.errors import EngineError
from roles.engine.facts import Fact, FactValues, batch_script, split_batch
from roles.engine.facts_ahead import FactsAhead
from roles.engine.phase import AnyPhase, Phase
from roles.engine.transport import CommandResult, Transport


def durable_handlers(phase: Phase, ctx: HostContext) -> bool:
    """Whether this phase keeps its due handlers on the host (POSIX hosts; see roles/engine/handlers.py)."""
    return bool(phase.handlers) and ctx.host.os is not OS.WINDOWS


def phase_facts(phase: Phase, ctx: HostContext) -> list[Fact[Any]]:
    """Every fact a phase reads on a host: its steps', and the handlers a previous run left due."""
    facts = [fact for step in phase.steps for fact in step.facts(ctx)]
    return [*facts, due.PendingHandlers()] if durable_handlers(phase, ctx) else facts


class FactCache:
    """Each host's parsed facts for the run: gathered in one batch for every remaining phase, dropped when the host
    changes."""

    def __init__(self, rc: RunContext, plan: Sequence[AnyPhase], ahead: FactsAhead | None = None) -> None:
        self.rc, self.plan = rc, plan
        self.values: dict[str, dict[str, Any]] = {}
        self.changed_any = False
        self.ahead = ahead  # each host's first batch, perhaps sent before the plan was built (facts_ahead.py)
        self._gathered: set[str] = set()  # hosts that had their first batch
        self._concurrent = False  # the phase under way runs its hosts at once (phase_starts)
        self._changed_before = False  # a host changed before the phase under way started

    def _wanted(self, host: Host, from_index: int) -> list[Fact[Any]]:
        ctx = self.rc.host_context(host)
        seen: dict[str, Fact[Any]] = {}
        for phase in self.plan[from_index:]:
            if isinstance(phase, Phase):
                if any(h.name == host.name for h in phase.hosts(self.rc.cluster)):
                    for fact in phase_facts(phase, ctx):
                        seen.setdefault(fact.key, fact)
            else:  # a custom phase may ask hosts it does not run on (e.g. whether the workers joined)
                for fact in phase.facts(ctx):
                    seen.setdefault(fact.key, fact)
        return list(seen.values())

    def for_phase(self, host: Host, index: int, transport: Transport) -> FactValues:
        phase = self.plan[index]
        assert isinstance(phase, Phase)
        ctx = self.rc.host_context(host)
        needed = {f.key for f in phase_facts(phase, ctx)}
        have = self.values.get(host.name, {})
        if needed - have.keys():
            facts = self._wanted(host, index)
            result, nonce = self._gather(host, facts, transport)
            parsed = split_batch(result.stdout, len(facts), nonce)
            # never read a fact whose end marker did not arrive as "absent": that would change a matching host
            missing = _missing(facts, result, nonce)
            if missing:
                said = " ".join((result.stderr or "").strip().splitlines()[-3:])[-300:]  # e.g. sudo refusing
                raise EngineError(
                    host.name,
                    f"gathering facts returned incomplete output ({len(missing)} of {len(facts)} facts missing, "
                    f"first {missing[0]}; exit {result.rc})" + (f": {said}" if said else ""),
                    hint="rerun; if it persists, a fact's command ends the shell (it must not `exit`)"
                    if len(missing) < len(facts) or not said
                    else "no fact arrived: the host's shell said why, above",
                )
            have = {f.key: f.parse(out, rc) for f, (out, rc) in zip(facts, parsed, strict=True)}
            self.values[host.name] = have
        return FactValues(have)

    def phase_starts(self, serial: bool) -> None:
        """A phase begins (the runner says so): what changed before it is what its hosts' batches are after."""
        self._concurrent, self._changed_before = not serial, self.changed_any

    def _changed_before_batch(self) -> bool:
        """Whether a host changed before a batch asked for now would run: in a phase that runs its hosts at once, a
        change of another host of the same phase may come before or after it (nothing orders them), so only the
        changes of earlier phases count; in a serial phase (or outside the runner) every change so far does."""
        return self._changed_before if self._concurrent else self.changed_any

    def _gather(self, host: Host, facts: list[Fact[Any]], transport: Transport) -> tuple[CommandResult, str]:
        """The batch's output and nonce: what was sent ahead to the host, when it ran this very script, its output
        is complete and no host changed before this batch would run (the batch sent ahead ran before any change);
        else the run's own script, run now."""
        first = host.name not in self._gathered
        self._gathered.add(host.name)
        if host.os is OS.WINDOWS:
            script, nonce = powershell.batch_script(facts)
            return transport.run(script, timeout=120), nonce
        ahead = self.ahead if first else None  # only a host's first batch was sent ahead, and is kept for the next run
        sent = ahead.take(host.name) if ahead is not None else None
        if ahead is not None and sent is not None:
            script, nonce = batch_script(facts, sent.nonce)
            result = sent.result()  # also when it is not used: one command at a time on the host
            same = script == sent.script and not self._changed_before_batch()
            if same and result is not None and not _missing(facts, result, nonce):
                ahead.remember(host.name, script, nonce)
                ahead.used.add(host.name)
                return result, nonce
        script, nonce = batch_script(facts)
        if ahead is not None:
            ahead.remember(host.name, script, nonce)
        return transport.run(script, timeout=120), nonce

    def cached(self, host: Host, index: int) -> bool:
        """Whether the phase at `index` finds every fact it reads on `host` already gathered (no SSH to plan it)."""
        phase = self.plan[index]
        assert isinstance(phase, Phase)
        have = self.values.get(host.name)
        return have is not None and all(f.key in have for f in phase_facts(phase, self.rc.host_context(host)))

    def invalidate(self, host: str) -> None:
        self.values.pop(host, None)
        self.changed_any = True

    def lookup(self, host: str, key: str) -> tuple[bool, Any]:
        """A custom phase's question answered from the host's batch: only while the run has changed nothing on any
        host (a cluster-wide answer such as "which masters are initialised" may change with another host)."""
        have = self.values.get(host, {})
        if self.changed_any or key not in have:
            return False, None
        return True, have[key]


def _missing(facts: Sequence[Fact[Any]], result: CommandResult, nonce: str) -> list[str]:
    """The keys of the facts whose end marker is not in the batch's output (cut off, or never run)."""
    return [f.key for i, f in enumerate(facts) if f"@@KR-{nonce} {i} " not in result.stdout]
