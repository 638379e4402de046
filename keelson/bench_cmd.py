"""`keelson bench …`: measure keelson on the lab. Each prints one JSON object as its last line (DESIGN.md fields)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(
    help="Benchmarks on the lab (need root). The last stdout line is one JSON object.", no_args_is_help=True
)


@app.command()
def lab(
    hosts: Annotated[int, typer.Option(help="how many hosts to boot")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False,
) -> None:
    """Boot N hosts to SSH-ready (rootfs cached): `hosts`, `boot_s`, `mem_mib_per_host`."""
    from tests.bench.lab_bench import bench_lab

    result = bench_lab(hosts)
    if not as_json:
        typer.echo(f"{hosts} hosts SSH-ready in {result['boot_s']} s, {result['mem_mib_per_host']} MiB each", err=True)
    typer.echo(json.dumps(result))
