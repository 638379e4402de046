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


@app.command()
def apply(as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False) -> None:
    """Fresh and no-op apply on lab hosts: `hosts`, `fresh_s`, `noop_s`, `noop_ssh_commands_per_host`, `scale_ratio`."""
    from tests.bench.apply_bench import bench_apply

    result = bench_apply()
    if not as_json:
        typer.echo(
            f"5 hosts: fresh {result['fresh_s']} s, no-op {result['noop_s']} s "
            f"({result['noop_ssh_commands_per_host']} SSH command/host); 20/2 hosts: x{result['scale_ratio']}",
            err=True,
        )
    typer.echo(json.dumps(result))


@app.command()
def etcd(
    runs: Annotated[int, typer.Option(help="fresh bootstraps per cluster size (the median is reported)", min=1)] = 3,
    backups: Annotated[bool, typer.Option(help="also measure backup_s, restore3_s, keys_lost")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False,
) -> None:
    """etcd on lab hosts: `healthy3_s`, `healthy5_s` (parallel start → all members healthy over TLS), and the backup
    figures `backup_s`, `restore3_s`, `keys_lost` on the 3-member cluster."""
    from tests.bench.etcd_bench import bench_etcd

    result = bench_etcd(runs=runs, backups=backups)
    if not as_json:
        typer.echo(f"etcd healthy: 3 members {result['healthy3_s']} s, 5 members {result['healthy5_s']} s", err=True)
    typer.echo(json.dumps(result))


@app.command()
def vip(
    rounds: Annotated[int, typer.Option(help="failovers per fault (the figure is their median)")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False,
) -> None:
    """VIP failover on the lab: `keepalived_stop_s`, `haproxy_kill_s`, `host_kill_s`, `failed_requests`."""
    from tests.bench.vip_bench import bench_vip

    result = bench_vip(rounds)
    if not as_json:
        typer.echo(
            f"VIP moved after keepalived stop {result['keepalived_stop_s']} s, "
            f"haproxy kill {result['haproxy_kill_s']} s, host kill {result['host_kill_s']} s; "
            f"{result['failed_requests']} failed requests",
            err=True,
        )
    typer.echo(json.dumps(result))
