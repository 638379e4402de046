"""`keelson plan` and `keelson apply`: the dry run and the run of the cluster's ordered phases."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from inventory.errors import KeelsonError

if TYPE_CHECKING:
    from inventory.model import Cluster
    from roles.engine.context import RunContext
    from roles.engine.facts_ahead import FactsAhead
    from roles.engine.phase import Plan
    from roles.engine.transport import ConnectionPool


class BadOption(KeelsonError):
    """A bad --only/--hosts/--state-dir value: exit 2, like any other usage error."""

    exit_code = 2


Inventory = Annotated[Path, typer.Option("--inventory", "-i", help="inventory YAML", show_default=False)]
Only = Annotated[
    list[str] | None,
    typer.Option(
        "--only",
        help="run only this role's phases or this phase (repeatable): a role such as containerd, etcd, pki, "
        "loadbalancer, or a phase slug such as etcd-binaries",
    ),
]
Hosts = Annotated[str | None, typer.Option("--hosts", help="comma-separated host names to limit the run to")]
Concurrency = Annotated[int, typer.Option("--concurrency", help="hosts worked on at once", min=1)]
Json = Annotated[bool, typer.Option("--json", help="a JSON event stream on stdout instead of progress")]
Tofu = Annotated[bool, typer.Option("--trust-on-first-use", help="record unknown host keys (never changed ones)")]
StateOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="operator-side state (default ~/.local/share/keelson/<cluster>)")
]


def _run(
    inventory: Path,
    dry_run: bool,
    only: list[str] | None,
    hosts: str | None,
    concurrency: int,
    as_json: bool,
    tofu: bool,
    state_dir: Path | None,
) -> None:
    from inventory.loader import load_inventory

    cluster = load_inventory(inventory)
    ahead = _facts_ahead(inventory, only, hosts)
    pool = _logins_ahead(cluster, hosts, concurrency, tofu, ahead)
    try:
        from roles.plans import apply  # every role: imported while the logins above are under way

        if not dry_run:
            apply.refuse_unapplied_cni(cluster, only)
        plan = apply.plan(cluster)
        if not gc.isenabled():  # off for start-up (keelson/cli.py): what it made lives as long as the process
            gc.freeze()
            gc.enable()
        run(plan, cluster, dry_run, as_json, only=only, hosts=hosts, concurrency=concurrency, tofu=tofu,
            state_dir=state_dir, pool=pool)  # fmt: skip
    finally:
        if pool is not None:
            pool.close()  # closed by the run already, unless it stopped before running
        ahead.save()  # each host's first fact batch of this run, sent ahead by the next one


def _facts_ahead(inventory: Path, only: list[str] | None, hosts: str | None) -> FactsAhead:
    """The fact batches kept from the last run of this inventory with this selection and this keelson
    (roles/engine/facts_ahead.py), in ~/.cache/keelson/facts-ahead: one file per inventory path, --only and --hosts.
    Another inventory, selection or version has its own file; within one, a script that no longer matches the run's
    own is never used."""
    import hashlib
    import json

    from keelson import __version__
    from roles.engine.cachedir import user_cache_dir
    from roles.engine.facts_ahead import FactsAhead

    base = user_cache_dir()
    try:
        where = str(inventory.resolve())
    except (RuntimeError, OSError):  # a path that cannot be resolved (a symlink loop)
        return FactsAhead(None)
    if base is None:  # no home directory to be found
        return FactsAhead(None)
    names = host_names(hosts)
    key = json.dumps([__version__, where, sorted(only or []), sorted(names) if names is not None else None])
    return FactsAhead(base / "facts-ahead" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json")


def _logins_ahead(
    cluster: Cluster, hosts: str | None, concurrency: int, tofu: bool, ahead: FactsAhead | None = None
) -> ConnectionPool | None:
    """The run's connections, their logins started now (`concurrency` at a time): every Linux host the run is
    limited to, whatever --only says — the plan's first phase, "Validate hosts", runs on all of them always; each
    login then sends the host's fact batch kept in `ahead`. None when --hosts names a host the inventory lacks (the
    run stops on that before connecting)."""
    from inventory.model import OS
    from roles.engine.transport import ConnectionPool

    names = host_names(hosts)
    if names is not None and names - {h.name for h in cluster.hosts}:
        return None
    pool = ConnectionPool(cluster, trust_on_first_use=tofu)
    linux = [h for h in cluster.hosts if h.os is OS.LINUX and (names is None or h.name in names)]
    pool.connect_ahead(linux, max(1, concurrency), ahead)
    return pool


def host_names(hosts: str | None) -> frozenset[str] | None:
    """--hosts m1,w2 as names (None: every host)."""
    return frozenset(n.strip() for n in hosts.split(",") if n.strip()) if hosts else None


class PlanFailed(typer.Exit):
    """Exit 1 after a failed run, saying which phase it stopped after (what a verb's own closing advice depends on)."""

    def __init__(self, stopped_after: str | None) -> None:
        super().__init__(1)
        self.stopped_after = stopped_after


def run(
    plan: Plan,
    cluster: Cluster,
    dry_run: bool,
    as_json: bool,
    *,
    only: list[str] | None = None,
    hosts: str | None = None,
    concurrency: int = 32,
    tofu: bool = False,
    state_dir: Path | None = None,
    pool: ConnectionPool | None = None,
) -> None:
    """Every plan the CLI runs goes through here: the same runner, rich progress or `--json` events, exit 1 on a
    failure. `pool`: connections whose logins started ahead (the run closes it)."""
    from roles.engine.phase import role_names, unknown_names
    from roles.engine.runner import run_plan

    bad = unknown_names(plan.phases, only or [])
    if bad:
        raise BadOption(
            f"--only {', '.join(bad)}: no such role or phase",
            hint=f"roles: {', '.join(role_names(plan.phases))}; phases: {', '.join(p.slug for p in plan.phases)}",
        )
    rc = run_context(
        cluster, dry_run, as_json, only=only, hosts=hosts, concurrency=concurrency, tofu=tofu, state_dir=state_dir
    )
    report = run_plan(plan, rc, pool)
    if not report.ok:
        raise PlanFailed(report.stopped_after)


def run_context(
    cluster: Cluster,
    dry_run: bool,
    as_json: bool,
    *,
    only: list[str] | None = None,
    hosts: str | None = None,
    concurrency: int = 32,
    tofu: bool = False,
    state_dir: Path | None = None,
) -> RunContext:
    """The run context every CLI plan runs with: --hosts checked, the state dir made, progress or JSON events."""
    from roles.engine.context import RunContext
    from roles.engine.events import Event, JsonLines
    from roles.state import StateDir

    names = host_names(hosts)
    unknown = sorted((names or frozenset()) - {h.name for h in cluster.hosts})
    if unknown:
        raise BadOption(f"--hosts names unknown hosts: {', '.join(unknown)}", hint="see keelson inventory show")
    state = StateDir(state_dir) if state_dir else StateDir.for_cluster(cluster.name)
    try:
        state.ensure()
    except OSError as exc:
        raise BadOption(
            f"state dir {state.path}: cannot use it: {exc.strerror or exc}",
            hint="the state dir (--state-dir, default ~/.local/share/keelson/<cluster>) must be a folder keelson can "
            "create and write: it holds the cluster's CA and keys",
        ) from None
    sink: Callable[[Event], None] = JsonLines()
    if not as_json:  # rich only for progress: ~50 modules, ~20 ms of CPU a --json run does without
        from rich.console import Console

        from keelson.render import RichProgress

        sink = RichProgress(Console(stderr=False, highlight=False), dry_run)
    return RunContext(
        cluster,
        state.path,
        dry_run=dry_run,
        concurrency=concurrency,
        only=frozenset(only) if only else None,
        host_names=names,
        trust_on_first_use=tofu,
        events=sink,
    )


def plan(
    inventory: Inventory,
    only: Only = None,
    hosts: Hosts = None,
    concurrency: Concurrency = 32,
    as_json: Json = False,
    trust_on_first_use: Tofu = False,
    state_dir: StateOpt = None,
) -> None:
    """Dry run: the exact commands each host would run (secrets masked). Reads facts; changes nothing."""
    _run(inventory, True, only, hosts, concurrency, as_json, trust_on_first_use, state_dir)


def apply(
    inventory: Inventory,
    only: Only = None,
    hosts: Hosts = None,
    concurrency: Concurrency = 32,
    as_json: Json = False,
    trust_on_first_use: Tofu = False,
    state_dir: StateOpt = None,
) -> None:
    """Make the hosts match the inventory, phase by phase; a rerun changes nothing."""
    _run(inventory, False, only, hosts, concurrency, as_json, trust_on_first_use, state_dir)
