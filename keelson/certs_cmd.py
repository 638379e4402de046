"""`keelson certs check`: the expiry of every certificate on every host and in the state dir (roles/pki/expiry.py);
`keelson certs renew`: the control plane's certificates, master by master (roles/control_plane/certs_renew.py)."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated

import typer

from keelson.engine_cmd import Concurrency, Hosts, Inventory, Json, StateOpt, Tofu

if TYPE_CHECKING:
    from rich.console import Console

    from roles.pki.expiry import Checked

app = typer.Typer(
    help="Certificates: when each one on the hosts and in the state dir expires; renew the control plane's.",
    no_args_is_help=True,
)


def _table(console: Console, title: str, checked: Checked, host: str, warn_days: int, now: dt.datetime) -> None:
    from rich.table import Table
    from rich.text import Text

    found = checked.found[host]
    table = Table(title=title, title_justify="left")
    table.add_column("path", overflow="fold")
    table.add_column("subject", overflow="fold")
    table.add_column("not after (UTC)", no_wrap=True)
    table.add_column("days left", justify="right", no_wrap=True)
    for record in sorted(found.records, key=lambda r: (r.path, r.index)):
        days = record.days_left(now)
        style = "bold red" if days < warn_days else "green"
        where = record.path + (f" [{record.index}]" if record.index else "")
        left = Text("EXPIRED" if record.expired(now) else str(days), style=style)
        table.add_row(where, record.subject, f"{record.not_after:%Y-%m-%d %H:%M}", left)
    for bad in found.unreadable:
        table.add_row(bad.path, Text(f"unreadable: {bad.reason}", style="bold red"), "", "")
    if not found.records and not found.unreadable:
        console.print(Text(f"{title}: no certificates found", style="dim"))
        return
    console.print(table)


def check(
    inventory: Inventory,
    warn_days: Annotated[int, typer.Option("--warn-days", help="fail when one expires within N days", min=0)] = 30,
    hosts: Hosts = None,
    as_json: Annotated[bool, typer.Option("--json", help="the result as one JSON object on stdout")] = False,
    concurrency: Concurrency = 32,
    trust_on_first_use: Tofu = False,
    state_dir: StateOpt = None,
) -> None:
    """Every certificate keelson or kubeadm put on each host (etcd, backup agent, /etc/kubernetes/pki, kubeconfigs'
    client certificates, the kubelet's) and in the state dir: path, subject, expiry, days left. Exits 1 when one
    expires within --warn-days (default 30) or already did, is unreadable, or a host could not be read."""
    from rich.console import Console
    from rich.text import Text

    from inventory.loader import load_inventory
    from roles.engine.adhoc import select_hosts
    from roles.engine.transport import ConnectionPool
    from roles.pki.expiry import OPERATOR, check, expiring
    from roles.state import StateDir

    cluster = load_inventory(inventory)
    chosen = select_hosts(cluster, hosts)
    state = StateDir(state_dir) if state_dir else StateDir.for_cluster(cluster.name)
    console = Console(highlight=False, stderr=as_json)

    def notice(host: str, message: str) -> None:
        console.print(Text(f"warning {host}: {message}", style="yellow"), soft_wrap=True)

    pool = ConnectionPool(cluster, trust_on_first_use=trust_on_first_use, notice=notice)
    try:
        checked = check(chosen, pool, state if state.path.is_dir() else None, workers=concurrency)
    finally:
        pool.close()
    now = dt.datetime.now(dt.UTC)
    soon = expiring(checked.records, warn_days, now)
    ok = not soon and not checked.unreadable and not checked.errors
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": ok,
                    "warn_days": warn_days,
                    "checked_at": now.isoformat(),
                    "certificates": [r.to_dict(now) for r in checked.records],
                    "unreadable": [{"host": u.host, "path": u.path, "reason": u.reason} for u in checked.unreadable],
                    "errors": checked.errors,
                    "skipped": checked.skipped,
                    "expiring": [{"host": r.host, "path": r.path, "days_left": r.days_left(now)} for r in soon],
                }
            )
        )
    else:
        for host in [h.name for h in chosen if h.name in checked.found] + [OPERATOR] * (OPERATOR in checked.found):
            title = f"state dir {state.path}" if host == OPERATOR else host
            _table(console, title, checked, host, warn_days, now)
        for host, error in checked.errors.items():
            console.print(Text(f"{host}: {error}", style="bold red"), soft_wrap=True)
        for host, why in checked.skipped.items():
            console.print(Text(f"{host}: not checked, {why}", style="dim"), soft_wrap=True)
        hosts_read = len([h for h in checked.found if h != OPERATOR])
        summary = (
            f"{len(checked.records)} certificates ({hosts_read} hosts"
            + (", the state dir" if OPERATOR in checked.found else "")
            + f"): {len(soon)} expire within {warn_days} days or already did, {len(checked.unreadable)} unreadable, "
            f"{len(checked.errors)} hosts could not be read"
        )
        console.print(Text(summary, style="green" if ok else "bold red"), soft_wrap=True)
    if not ok:
        raise typer.Exit(1)


def renew(
    inventory: Inventory,
    hosts: Hosts = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would run; change nothing")] = False,
    as_json: Json = False,
    concurrency: Concurrency = 32,
    trust_on_first_use: Tofu = False,
    state_dir: StateOpt = None,
) -> None:
    """Renew the control plane's certificates (kubeadm's: apiserver, front-proxy client, the kubeconfigs) on each
    master, one at a time: `kubeadm certs renew all`, then the apiserver, controller-manager and scheduler restarted,
    and the next master only once this one's apiserver and the API through the VIP answer. keelson's etcd
    certificates are renewed by `keelson apply` ahead of their expiry."""
    from inventory.loader import load_inventory
    from keelson.engine_cmd import run
    from roles.plans import renew as renew_plan

    cluster = load_inventory(inventory)
    run(
        renew_plan.plan(cluster),
        cluster,
        dry_run,
        as_json,
        hosts=hosts,
        concurrency=concurrency,
        tofu=trust_on_first_use,
        state_dir=state_dir,
    )


app.command("check")(check)
app.command("renew")(renew)
