"""Phases: a title, the hosts it runs on, and either steps (run by the generic runner) or its own orchestration.

A plan is an explicit ordered list of phases (k0sctl's actions), each built in one place: `roles/plans/`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from inventory.model import Cluster, Host
from roles.engine.command import Command
from roles.engine.context import HostContext, RunContext
from roles.engine.facts import Fact
from roles.engine.step import Handler, Step

if TYPE_CHECKING:
    from roles.engine.transport import ConnectionPool, Transport

HostSelector = Callable[[Cluster], list[Host]]
Gate = Callable[[HostContext, "Transport"], None]


def all_hosts(cluster: Cluster) -> list[Host]:
    return list(cluster.hosts)


def linux_hosts(cluster: Cluster) -> list[Host]:
    return [h for h in cluster.hosts if h.os.value == "linux"]


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def facts_on(ctx: HostContext, hosts: HostSelector, *facts: Fact[Any]) -> tuple[Fact[Any], ...]:
    """`facts` when `ctx.host` is one of `hosts`, else none: what a custom phase's `facts()` returns for a host."""
    return facts if any(h.name == ctx.host.name for h in hosts(ctx.cluster)) else ()


@dataclass
class Phase:
    """Per-host steps. `serial` runs one host at a time; `gate` (a health check with a deadline) runs after each
    host's commands and must pass before the next host starts (serial) or before the phase ends. With
    `gate_after_changes_only`, a host that needed nothing is not gated (nothing was done to it to check: a rolling
    restart's no-op asks no health question per host)."""

    title: str
    hosts: HostSelector
    steps: Sequence[Step]
    serial: bool = False
    gate: Gate | None = None
    gate_after_changes_only: bool = False
    handlers: Sequence[Handler] = field(default=())
    always: bool = False  # runs even when --only names other phases (live validation)
    role: str = ""  # the role that contributes it (`common`, `etcd`, …), set by the role's phases(): `--only ROLE`

    @property
    def slug(self) -> str:
        return slug(self.title)

    def gates(self, commands: Sequence[Command]) -> bool:
        """Whether a host that was given `commands` passes the gate after them."""
        return self.gate is not None and (bool(commands) or not self.gate_after_changes_only)


@dataclass(frozen=True)
class HostOutcome:
    changed: bool = False
    commands: tuple[Command, ...] = ()
    error: str | None = None


class CustomPhase(ABC):
    """Orchestration that is not per-host steps (a cluster bootstrap, a restore). k0sctl's Title/DryRun/Run."""

    title: str = ""
    role: str = ""  # the role that contributes it, as on Phase

    @property
    def slug(self) -> str:
        return slug(self.title)

    @abstractmethod
    def hosts(self, cluster: Cluster) -> list[Host]: ...

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        """The facts this phase reads on `ctx.host` (any host of the plan, not only its own) with
        `pool.read_fact`: gathered in the host's one fact batch, so a run that changes nothing asks it nothing more."""
        return ()

    @abstractmethod
    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        """The commands each host would run (facts may be read through the pool; nothing is changed)."""

    @abstractmethod
    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]: ...


AnyPhase = Phase | CustomPhase


@dataclass(frozen=True)
class Plan:
    """What the runner runs: an explicit ordered list of phases, built in `roles/plans/`.

    `not_applied` names the inventory sections this plan does not act on yet (said once, before the first phase);
    `notes` are lines said before the first phase (e.g. the verified snapshot a restore uses).
    """

    name: str
    phases: Sequence[AnyPhase]
    not_applied: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


# -- phases by role, and choosing them by name (`--only`) ---------------------------------------------------------

P = TypeVar("P", bound=AnyPhase)


def of_role(role: str, phases: list[P]) -> list[P]:
    """`phases`, each marked as contributed by `role`: what a role's phases() returns, so `--only ROLE` finds them."""
    for phase in phases:
        phase.role = role
    return phases


def _squash(name: str) -> str:
    """`load-balancer`, `load_balancer`, `LoadBalancer` → `loadbalancer`: role names as users type them."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def matches(phase: AnyPhase, name: str) -> bool:
    """Does `--only NAME` select this phase? NAME is its role (`containerd`: every phase of that role), its slug,
    its title, or the slug's first word (`prepare`), case-insensitive."""
    wanted = name.strip().lower()
    if phase.role and _squash(wanted) == _squash(phase.role):
        return True
    return wanted in (phase.slug, phase.title.lower(), phase.slug.split("-")[0])


def unknown_names(phases: Sequence[AnyPhase], names: Sequence[str]) -> list[str]:
    """The names that select no phase of `phases`."""
    return [n for n in names if not any(matches(p, n) for p in phases)]


def role_names(phases: Sequence[AnyPhase]) -> list[str]:
    """The roles of `phases`, in order, once each."""
    return list(dict.fromkeys(p.role for p in phases if p.role))
