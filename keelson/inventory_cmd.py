"""`keelson inventory …`: validate, show and import inventories. Thin: the logic is in the `inventory` package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

app = typer.Typer(help="Validate, show and import cluster inventories.", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="inventory YAML file", show_default=False)]


@app.command()
def validate(
    file: FileArg,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Check an inventory with no network: schema, then the cluster rules. Exit 2 on any problem."""
    from inventory.errors import InventoryError
    from inventory.loader import load_inventory

    try:
        cluster = load_inventory(file)
    except InventoryError as exc:
        if not as_json:
            raise
        problems = [{"file": p.file, "line": p.line, "field": p.field, "message": p.message} for p in exc.problems]
        typer.echo(json.dumps({"valid": False, "problems": problems}))
        raise typer.Exit(exc.exit_code) from None
    summary = {
        "valid": True,
        "file": str(file),
        "cluster": cluster.name,
        "hosts": len(cluster.hosts),
        "masters": len(cluster.masters),
        "workers": len(cluster.workers),
        "etcd_members": len(cluster.etcd_members),
        "windows_workers": sum(1 for h in cluster.workers if h.os.value == "windows"),
        "endpoint": cluster.api_endpoint,
        "load_balancer": cluster.control_plane.load_balancer,
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"{file}: ok — cluster {cluster.name}, {summary['hosts']} hosts ({summary['masters']} masters, "
        f"{summary['workers']} workers, {summary['etcd_members']} etcd), API at {cluster.api_endpoint} "
        f"via {cluster.control_plane.load_balancer}"
    )


@app.command()
def show(file: FileArg) -> None:
    """A table of the hosts, their roles and how keelson reaches them."""
    from rich.console import Console
    from rich.table import Table

    from inventory.loader import load_inventory

    cluster = load_inventory(file)
    table = Table(title=f"cluster {cluster.name} — API {cluster.api_endpoint}")
    for column in ("host", "address", "roles", "os", "ssh"):
        table.add_column(column)
    for host in cluster.hosts:
        ssh = cluster.ssh_for(host)
        table.add_row(
            host.name,
            str(host.address),
            ", ".join(r.value for r in host.roles),
            host.os.value,
            f"{ssh.user}@{host.address}:{ssh.port}",
        )
    Console().print(table)


@app.command("import")
def import_(
    kind: Annotated[Literal["kubespray", "k0sctl"], typer.Argument(help="the format of FILE")],
    file: Annotated[Path, typer.Argument(help="kubespray hosts.yaml or k0sctl.yaml", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write here instead of stdout")] = None,
    vip: Annotated[str | None, typer.Option(help="VIP ADDRESS/PREFIX when FILE has none")] = None,
    name: Annotated[str | None, typer.Option(help="cluster name when FILE has none")] = None,
) -> None:
    """Convert another tool's inventory into a keelson inventory; the result is validated before it is written."""
    from inventory.importers import import_file

    text, cluster = import_file(kind, file, vip=vip, name=name)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"{out}: cluster {cluster.name}, {len(cluster.hosts)} hosts, imported from {kind} {file}", err=True)
