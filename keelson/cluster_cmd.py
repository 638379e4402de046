"""`keelson kubeconfig` and `keelson status`: the running cluster from the operator's side. Thin: the logic is in
roles.control_plane."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

InventoryOpt = Annotated[Path, typer.Option("-i", "--inventory", help="inventory YAML file", show_default=False)]
StateOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="operator-side state (default ~/.local/share/keelson/<cluster>)")
]


def _state(cluster_name: str, state_dir: Path | None):  # type: ignore[no-untyped-def]
    from roles.state import StateDir

    return StateDir(state_dir) if state_dir else StateDir.for_cluster(cluster_name)


def kubeconfig(
    inventory: InventoryOpt,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="file to write (0600); `-` for stdout; default: state dir")
    ] = None,
    state_dir: StateOpt = None,
) -> None:
    """An admin kubeconfig for the cluster's API through the VIP (a client certificate from keelson's cluster CA)."""
    from inventory.errors import KeelsonError
    from inventory.loader import load_inventory
    from roles.control_plane.kubeconfig import admin_kubeconfig

    cluster = load_inventory(inventory)
    state = _state(cluster.name, state_dir)
    text = admin_kubeconfig(cluster, state)
    if output is not None and str(output) == "-":
        sys.stdout.write(text)
        return
    target = output or state.path / "admin.kubeconfig"
    if not target.parent.is_dir():
        raise KeelsonError(f"cannot write {target}: folder {target.parent} does not exist")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(target, 0o600)
    typer.echo(str(target))


def status(
    inventory: InventoryOpt,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as one JSON object")] = False,
    state_dir: StateOpt = None,
) -> None:
    """Nodes and their readiness, the VIP holder, etcd members and health, the last backup. Exit 1 unless healthy."""
    from inventory.loader import load_inventory
    from roles.control_plane.status import describe, gather

    cluster = load_inventory(inventory)
    found = gather(cluster, _state(cluster.name, state_dir))
    typer.echo(json.dumps(found.as_dict()) if as_json else describe(found))
    if not found.healthy:
        raise typer.Exit(1)
