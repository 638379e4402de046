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
from roles.engine.phase import AnyPhase, Phase
from roles.engine.transport import Transport


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

    def __init__(self, rc: RunContext, plan: Sequence[AnyPhase]) -> None:
        self.rc, self.plan = rc, plan
        self.values: dict[str, dict[str, Any]] = {}
        self.changed_any = False

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
            script, nonce = (powershell.batch_script if host.os is OS.WINDOWS else batch_script)(facts)
            result = transport.run(script, timeout=120)
            parsed = split_batch(result.stdout, len(facts), nonce)
            # never read a fact whose end marker did not arrive as "absent": that would change a matching host
            missing = [f.key for i, f in enumerate(facts) if f"@@KR-{nonce} {i} " not in result.stdout]
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
