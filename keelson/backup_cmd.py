"""`keelson backup …` and `keelson restore`: thin wrappers over the `backups` package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="etcd backups: take one now, list them, verify a snapshot file.", no_args_is_help=True)

InventoryOpt = Annotated[Path, typer.Option("-i", "--inventory", help="inventory YAML file", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


@app.command()
def verify(
    snapshot: Annotated[Path, typer.Argument(help="a snapshot file (.db.gz or .db)", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Check a snapshot with no cluster and no etcd binary: the gzip stream, then etcd's trailing sha256."""
    from dataclasses import asdict

    from backups.snapshots import verify_snapshot

    result = verify_snapshot(snapshot)
    if as_json:
        typer.echo(json.dumps({**asdict(result), "path": str(result.path), "valid": True}))
    else:
        typer.echo(result.describe())


@app.command()
def now(inventory: InventoryOpt, as_json: JsonOpt = False) -> None:
    """Run the backup on every etcd member now (the leader takes it) and wait; say who took it and where it went."""
    from backups.operations import backup_now
    from inventory.loader import load_inventory

    result = backup_now(load_inventory(inventory))
    typer.echo(json.dumps(result.as_dict()) if as_json else result.describe())
    if not result.ok:
        raise typer.Exit(1)


@app.command("list")
def list_(
    inventory: InventoryOpt,
    as_json: JsonOpt = False,
    offsite: Annotated[bool, typer.Option(help="also list the snapshots at each offsite target")] = True,
) -> None:
    """Last success and last failure per target on each member, and the snapshots kept locally and offsite."""
    from backups.operations import backup_list
    from inventory.loader import load_inventory

    listing = backup_list(load_inventory(inventory), offsite=offsite)
    typer.echo(json.dumps(listing.as_dict()) if as_json else listing.describe())
    if not listing.ok:
        typer.echo("error: no etcd member answered: nothing to list", err=True)
        raise typer.Exit(1)


def restore(
    inventory: InventoryOpt,
    snapshot: Annotated[str, typer.Option("--snapshot", help="a local file or s3://bucket/key", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="verify and print the plan; change nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="a JSON event stream on stdout instead of progress")] = False,
) -> None:
    """Restore etcd on every member from one snapshot (verified first; the old data dirs are kept)."""
    from backups.snapshots import check_ref, obtained
    from inventory.loader import load_inventory
    from keelson.engine_cmd import run
    from roles.plans import restore as restore_plan

    check_ref(snapshot)  # an unsupported scheme or a missing file is refused before the question
    cluster = load_inventory(inventory)
    with obtained(cluster, snapshot) as verified:  # a bad snapshot stops here, exit 3, before anything is touched
        if not yes and not dry_run:
            typer.confirm(
                f"Restore cluster {cluster.name} from {verified.name}? etcd and the apiservers stop on every member",
                abort=True,
                err=True,
            )
        run(restore_plan.plan(cluster, verified), cluster, dry_run, as_json)
