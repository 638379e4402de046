"""`keelson plan` and `keelson apply`: the dry run and the run of the cluster's ordered phases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Inventory = Annotated[Path, typer.Option("--inventory", "-i", help="inventory YAML", show_default=False)]
Only = Annotated[list[str] | None, typer.Option("--only", help="run only this phase (repeatable), e.g. containerd")]
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
    from rich.console import Console

    from inventory.errors import KeelsonError
    from inventory.loader import load_inventory
    from keelson.render import RichProgress
    from roles.engine.context import RunContext
    from roles.engine.events import JsonLines
    from roles.engine.runner import run_plan
    from roles.plan import cluster_plan
    from roles.state import StateDir

    cluster = load_inventory(inventory)
    names = frozenset(n.strip() for n in hosts.split(",") if n.strip()) if hosts else None
    unknown = sorted((names or frozenset()) - {h.name for h in cluster.hosts})
    if unknown:
        raise KeelsonError(f"--hosts names unknown hosts: {', '.join(unknown)}", hint="see keelson inventory show")
    plan = cluster_plan(cluster)
    if only:
        titles = {p.slug for p in plan} | {p.slug.split("-")[0] for p in plan} | {p.title.lower() for p in plan}
        bad = [o for o in only if o.lower() not in titles]
        if bad:
            raise KeelsonError(
                f"--only {', '.join(bad)}: no such phase", hint="phases: " + ", ".join(p.slug for p in plan)
            )
    state = StateDir(state_dir) if state_dir else StateDir.for_cluster(cluster.name)
    state.ensure()
    sink = JsonLines() if as_json else RichProgress(Console(stderr=False, highlight=False), dry_run)
    rc = RunContext(
        cluster,
        state.path,
        dry_run=dry_run,
        concurrency=concurrency,
        only=frozenset(only) if only else None,
        host_names=names,
        trust_on_first_use=tofu,
        events=sink,
    )
    report = run_plan(plan, rc)
    if not report.ok:
        raise typer.Exit(1)


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
