"""`keelson bench …`: measure keelson on the lab. Each prints one JSON object as its last line (DESIGN.md fields)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(
    help="Benchmarks on the lab (need root). The last stdout line is one JSON object.", no_args_is_help=True
)


def _preflight(hosts: int | None = None) -> None:
    """Arguments and prerequisites, checked before any lab is touched (built, torn down or booted)."""
    from provision.lab.host_setup import require_root
    from provision.lab.topology import MAX_WORKERS

    from .signals import stop_cleanly_on_sigterm

    most = 5 + MAX_WORKERS  # 5 masters + the workers one lab can address
    if hosts is not None and not 1 <= hosts <= most:
        raise typer.BadParameter(f"{hosts} is not between 1 and {most}", param_hint="'--hosts'")
    require_root()
    stop_cleanly_on_sigterm()  # its finally blocks take its labs down


@app.command()
def lab(
    hosts: Annotated[int, typer.Option(help="how many hosts to boot (1–164)")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False,
) -> None:
    """Boot N hosts until each accepts an SSH login (rootfs cached): `hosts`, `boot_s`, `mem_mib_per_host`."""
    _preflight(hosts)
    from provision.bench.lab_bench import bench_lab

    result = bench_lab(hosts)
    if not as_json:
        typer.echo(f"{hosts} hosts accept SSH in {result['boot_s']} s, {result['mem_mib_per_host']} MiB each", err=True)
    typer.echo(json.dumps(result))


@app.command()
def apply(
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="the whole Kubernetes cluster on a fresh 3-master + 2-worker lab instead: `cluster_fresh_s`, "
            "`cluster_noop_s`, `noop_changed`, `nodes_ready`, `vip_kill_api_gap_s`, `phases`",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False,
) -> None:
    """`keelson apply` on lab hosts as a user runs it, and the engine alone: `hosts`, `fresh_s`, `noop_s` (CLI wall
    time, whole plan), `engine_fresh_s`, `engine_noop_s`, `noop_ssh_commands_per_host`, `cpu_per_host_ms`,
    `scale_ratio`, and on 20 hosts the host-level phases' `noop_cpu_per_extra_host_ms`. With `--cluster`: the HA
    cluster's apply and the API through the VIP when its holder dies."""
    _preflight()
    if cluster:
        _apply_cluster(as_json)
        return
    from provision.bench.apply_bench import bench_apply

    result = bench_apply()
    if not as_json:
        cpu = result["cpu_per_host_ms"]
        typer.echo(
            f"{result['hosts']} hosts, keelson apply: fresh {result['fresh_s']} s, no-op {result['noop_s']} s "
            f"({result['noop_ssh_commands_per_host']} SSH command/host; keelson CPU per host: fresh {cpu['fresh']} ms, "
            f"no-op {cpu['noop']} ms); host phases on {result['hosts20']} hosts: no-op "
            f"{result['hostprep_noop_s']['20']} s, {result['noop_cpu_per_extra_host_ms']} ms CPU per extra host; "
            "engine alone: "
            f"fresh {result['engine_fresh_s']} s, no-op {result['engine_noop_s']} s, "
            f"20/2 hosts x{result['scale_ratio']}",
            err=True,
        )
    typer.echo(json.dumps(result))


def _apply_cluster(as_json: bool) -> None:
    from provision.bench.cluster_bench import bench_cluster

    result = bench_cluster()
    if not as_json:
        typer.echo(
            f"{result['hosts']} hosts, keelson apply: fresh {result['cluster_fresh_s']} s, no-op "
            f"{result['cluster_noop_s']} s ({result['noop_changed']} changed); {result['nodes_ready']} nodes Ready; "
            f"API gap through the VIP when its holder is killed: {result['vip_kill_api_gap_s']} s",
            err=True,
        )
    typer.echo(json.dumps(result))


@app.command()
def etcd(
    runs: Annotated[int, typer.Option(help="fresh bootstraps per cluster size (the median is reported)", min=1)] = 3,
    backups: Annotated[bool, typer.Option(help="also measure backup_s, backup_cli_s, restore3_s, keys_lost")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False,
) -> None:
    """etcd on lab hosts: `healthy3_s`, `healthy5_s` (parallel start → all members healthy over TLS), and the backup
    figures `backup_s`, `backup_cli_s`, `restore3_s`, `keys_lost` on the 3-member cluster."""
    _preflight()
    from provision.bench.etcd_bench import bench_etcd

    result = bench_etcd(runs=runs, backups=backups)
    if not as_json:
        typer.echo(f"etcd healthy: 3 members {result['healthy3_s']} s, 5 members {result['healthy5_s']} s", err=True)
    typer.echo(json.dumps(result))


@app.command()
def vip(
    rounds: Annotated[int, typer.Option(help="failovers per fault (the figure is their median)", min=1)] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False,
) -> None:
    """VIP failover on the lab: `keepalived_stop_s`, `haproxy_kill_s`, `host_kill_s`, `failed_requests`."""
    _preflight()
    from provision.bench.vip_bench import bench_vip

    result = bench_vip(rounds)
    if not as_json:
        typer.echo(
            f"VIP moved after keepalived stop {result['keepalived_stop_s']} s, "
            f"haproxy kill {result['haproxy_kill_s']} s, host kill {result['host_kill_s']} s; "
            f"{result['failed_requests']} failed requests",
            err=True,
        )
    typer.echo(json.dumps(result))


@app.command()
def artifacts(
    cold: Annotated[
        bool, typer.Option("--cold", help="also build the whole set with empty caches (tens of minutes; Go needed)")
    ] = False,
    compare_binaries: Annotated[
        bool,
        typer.Option(
            "--compare-binaries",
            help="also build, in a temp folder from the warm Go caches, the one multi-call Kubernetes binary and the "
            "seven programs separately: wall s, CPU s and MiB of each (minutes; Go needed)",
        ),
    ] = False,
    install: Annotated[
        bool, typer.Option(help="install the set on 3 fresh lab hosts (--no-install: no lab; install_s null)")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False,
) -> None:
    """The artifact set: `build_warm_s` (and the CLI's), `set_mib`, `install_s` (the node role from `local` on 3 fresh
    lab hosts) and its no-op; with --cold, `build_cold_s` and `build_cold_cpu_s` with every cache empty; with
    --compare-binaries,
    `multicall_build_s`/`separate_build_s`, `…_cpu_s`, `…_mib` (one multi-call binary vs seven programs)."""
    _preflight()
    from provision.bench.artifacts_bench import bench_artifacts

    result = bench_artifacts(cold, compare=compare_binaries, install_set=install)
    if not as_json:
        typer.echo(
            f"set {result['set_mib']} MiB; warm build {result['build_warm_s']} s (CLI {result['build_warm_cli_s']} s); "
            f"install on 3 hosts {result['install_s']} s, again {result['install_noop_s']} s; "
            f"cold build {result['build_cold_s']} s ({result['build_cold_cpu_s']} CPU s)",
            err=True,
        )
        if compare_binaries:
            typer.echo(
                f"one multi-call binary: {result['multicall_build_s']} s, {result['multicall_cpu_s']} CPU s, "
                f"{result['multicall_mib']} MiB; seven programs: {result['separate_build_s']} s, "
                f"{result['separate_cpu_s']} CPU s, {result['separate_mib']} MiB",
                err=True,
            )
    typer.echo(json.dumps(result))


@app.command()
def pulumi(as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False) -> None:
    """The Pulumi stack on a 5-host lab through the real engine keelson built: `up_fresh_s`, `up_noop_s`,
    `preview_s`, and `cluster_noop_s` (the CLI's no-op apply of the same phases on the same cluster)."""
    from provision.bench.pulumi_bench import bench_pulumi

    result = bench_pulumi()
    if not as_json:
        typer.echo(
            f"pulumi up: fresh {result['up_fresh_s']} s, no-op {result['up_noop_s']} s; "
            f"preview {result['preview_s']} s; keelson apply no-op on the same cluster {result['cluster_noop_s']} s",
            err=True,
        )
    typer.echo(json.dumps(result))


@app.command()
def join(as_json: Annotated[bool, typer.Option("--json", help="print only the JSON object")] = False) -> None:
    """Adding one worker to a running cluster against one host on its own, on a fresh 6-host lab: `join_s` (keelson
    join w2), `single_host_s` (keelson apply of a one-host cluster), `join_ratio` (target ≤ 1.2)."""
    _preflight()
    from provision.bench.join_bench import bench_join

    result = bench_join()
    if not as_json:
        typer.echo(
            f"join {result['join_s']} s, one host alone {result['single_host_s']} s: ratio {result['join_ratio']}",
            err=True,
        )
    typer.echo(json.dumps(result))
