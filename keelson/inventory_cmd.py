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
    from inventory.rules import notes

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
        "notes": notes(cluster),
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for note in notes(cluster):
        typer.echo(f"note: {note}", err=True)
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
    for column in ("host", "address", "node IP", "roles", "os", "ssh"):
        table.add_column(column)
    for host in cluster.hosts:
        ssh = cluster.ssh_for(host)
        node_ip = cluster.spec_node_ip(host)
        table.add_row(
            host.name,
            str(host.address),
            str(node_ip) if node_ip is not None else "discovered at run time",
            ", ".join(r.value for r in host.roles),
            host.os.value,
            f"{ssh.user}@{host.address}:{ssh.port}",
        )
    Console().print(table)


@app.command("import")
def import_(
    kind: Annotated[Literal["kubespray", "k0sctl"], typer.Argument(help="the tool FILE comes from")],
    file: Annotated[
        Path,
        typer.Argument(help="kubespray inventory.ini or hosts.yaml, or k0sctl.yaml", show_default=False),
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write here instead of stdout")] = None,
    vip: Annotated[str | None, typer.Option(help="VIP ADDRESS/PREFIX when FILE has none")] = None,
    name: Annotated[str | None, typer.Option(help="cluster name when FILE has none")] = None,
    fmt: Annotated[
        Literal["auto", "ini", "yaml"],
        typer.Option(
            "--format",
            help="kubespray only: INI or YAML; auto = by extension (.ini/.cfg, .yaml/.yml/.json), else by content",
        ),
    ] = "auto",
) -> None:
    """Convert another tool's inventory into a keelson inventory; the result is validated before it is written.
    Notes on what was left out or changed go to stderr (and into the file as comments). `-o` creates missing parent
    folders (as `keelson lab up` does for inventory/generated/)."""
    from inventory.importers import import_file

    result = import_file(kind, file, vip=vip, name=name, fmt=fmt)
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    if out is None:
        typer.echo(result.text, nl=False)
        return
    _write_output(out, result.text)
    cluster = result.cluster
    typer.echo(f"{out}: cluster {cluster.name}, {len(cluster.hosts)} hosts, imported from {kind} {file}", err=True)


def _write_output(out: Path, text: str) -> None:
    """Write `text` to `out` whole or not at all (temp file + rename), making missing parent folders; a path that
    cannot be written is a KeelsonError that says why."""
    import os
    import tempfile

    from inventory.errors import KeelsonError

    if out.is_dir():
        raise KeelsonError(f"-o {out}: is a directory", hint=f"name a file, e.g. -o {out / 'cluster.yaml'}")
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise KeelsonError(f"-o {out}: {blocker} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KeelsonError(f"-o {out}: cannot make the folder {out.parent}: {exc.strerror or exc}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as exc:
        raise KeelsonError(f"-o {out}: cannot write in {out.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as exc:
        raise KeelsonError(f"-o {out}: cannot write: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
