"""`keelson lab …`: boot, inspect and tear down the lab of nspawn hosts. Thin: the logic is in provision.lab."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The lab: full Debian hosts as systemd-nspawn containers on this machine.", no_args_is_help=True)

NameOpt = Annotated[str, typer.Option("--name", help="lab name (several labs can run at once)")]


@app.command()
def up(
    masters: Annotated[int, typer.Option(help="masters: 3 or 5 (1 is not HA)")] = 3,
    workers: Annotated[int, typer.Option(help="workers")] = 2,
    lbs: Annotated[int, typer.Option(help="dedicated load-balancer hosts")] = 0,
    name: NameOpt = "lab",
    inventory_out: Annotated[Path | None, typer.Option(help="where to write the generated inventory")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print hosts, addresses and paths as JSON")] = False,
) -> None:
    """Boot the lab's hosts (building the cached rootfs once) and write its inventory."""
    import logging

    from provision.lab import Lab, LabSpec

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    lab = Lab.up(LabSpec(name=name, masters=masters, workers=workers, lbs=lbs), inventory_out=inventory_out)
    if as_json:
        typer.echo(json.dumps(_describe(lab)))
        return
    typer.echo(f"lab {lab.name}: {len(lab.hosts)} hosts up; inventory {lab.inventory_path}", err=True)
    typer.echo(str(lab.inventory_path))


@app.command()
def prepare() -> None:
    """Build the lab's cached host image (the Debian rootfs) now, without booting hosts: `lab up` then starts at
    once."""
    import logging

    from provision.lab import host_setup, rootfs

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    host_setup.require_root()
    host_setup.ensure_host_packages()
    typer.echo(str(rootfs.ensure_base()))


@app.command()
def down(name: NameOpt = "lab") -> None:
    """Stop the lab's hosts and remove everything it made (mounts, cgroups, bridge, files). Idempotent."""
    from provision.lab import Lab
    from provision.lab.paths import LabPaths

    if not LabPaths(name).state_file.exists():
        typer.echo(f"lab {name}: not running", err=True)
        return
    Lab.load(name).down()
    typer.echo(f"lab {name}: down", err=True)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every lab on this machine and whether each host is running."""
    from rich.console import Console
    from rich.table import Table

    from provision.lab import Lab

    labs = [Lab.load(n) for n in Lab.names()]
    if as_json:
        typer.echo(json.dumps([_describe(lab) for lab in labs]))
        return
    if not labs:
        typer.echo("no lab is running")
        return
    table = Table("lab", "host", "role", "address", "state")
    for lab in labs:
        for h in lab.hosts:
            table.add_row(lab.name, h.name, h.role, h.address, "running" if lab.is_running(h.name) else "stopped")
    Console().print(table)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ssh(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="host name, e.g. m1")],
    name: NameOpt = "lab",
) -> None:
    """SSH into HOST (interactive), or run `-- COMMAND…` there and exit with its status."""
    import os

    from provision.lab import Lab

    lab = Lab.load(name)
    command = " ".join(ctx.args) if ctx.args else None  # like ssh: the remote shell parses it
    argv = lab.ssh_argv(host, command)
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - hand the terminal to ssh


@app.command()
def kill(host: str, name: NameOpt = "lab") -> None:
    """Hard power-off of HOST (every process SIGKILLed at once), for fault tests."""
    from provision.lab import Lab, faults

    faults.power_off(Lab.load(name), host)
    typer.echo(f"{host}: powered off", err=True)


@app.command()
def start(host: str, name: NameOpt = "lab") -> None:
    """Boot HOST again (same disk, same host key) and wait until SSH answers."""
    from provision.lab import Lab, faults

    faults.power_on(Lab.load(name), host)
    typer.echo(f"{host}: up", err=True)


def _describe(lab: object) -> dict[str, object]:
    from provision.lab import Lab

    assert isinstance(lab, Lab)
    return {
        "name": lab.name,
        "inventory": str(lab.inventory_path),
        "ssh_config": str(lab.ssh_config_path),
        "known_hosts": str(lab.known_hosts_path),
        "key": str(lab.key_path),
        "gateway": lab.gateway,
        "vip": lab.vip,
        "hosts": [{"name": h.name, "role": h.role, "address": h.address} for h in lab.hosts],
    }
