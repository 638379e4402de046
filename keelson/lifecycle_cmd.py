"""`keelson join`, `keelson remove`, `keelson reset`: a node's life in a running cluster. Thin: each builds a plan in
`roles/plans/` (join.py, remove.py, reset.py) and runs it through `keelson.engine_cmd.run`, like apply."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from keelson.engine_cmd import Concurrency, Inventory, Json, StateOpt, Tofu

Names = Annotated[list[str], typer.Argument(help="host names in the inventory", show_default=False, metavar="HOST...")]
Yes = Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="print what would run; change nothing")]


def join(
    hosts: Names,
    inventory: Inventory,
    dry_run: DryRun = False,
    concurrency: Concurrency = 32,
    as_json: Json = False,
    trust_on_first_use: Tofu = False,
    state_dir: StateOpt = None,
) -> None:
    """Join new workers or masters (already in the inventory) to the running cluster: only they change — for masters,
    also etcd's membership (member add) and every load balancer's backends (a reload); nothing is restarted on any
    other host. A rerun changes nothing."""
    from inventory.loader import load_inventory
    from keelson.engine_cmd import run
    from roles.plans import join as join_plan

    cluster = load_inventory(inventory)
    plan = join_plan.plan(cluster, hosts)
    run(plan, cluster, dry_run, as_json, concurrency=concurrency, tofu=trust_on_first_use, state_dir=state_dir)


def remove(
    hosts: Names,
    inventory: Inventory,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="delete the pods instead of evicting them (disruption budgets bypassed); remove etcd members even to "
            "an even count or below a majority of the members there are now",
        ),
    ] = False,
    dry_run: DryRun = False,
    concurrency: Concurrency = 32,
    as_json: Json = False,
    trust_on_first_use: Tofu = False,
    state_dir: StateOpt = None,
) -> None:
    """Take workers or masters out of the cluster: cordon, drain (disruption budgets respected), delete the node, for
    masters `etcdctl member remove` (refused, unless --force, when etcd would be left at an even count or below a
    majority) and the other load balancers' backends updated (a reload), then reset each host that still answers; a
    dead host's node and member are removed all the same. Take the hosts out of the inventory after."""
    from inventory.loader import load_inventory
    from keelson.engine_cmd import run_context
    from roles.plans import remove as remove_plan

    cluster = load_inventory(inventory)
    remove_plan.removing(cluster, hosts, force=force)  # refused (exit 2) before anything is connected to
    rc = run_context(cluster, dry_run, as_json, concurrency=concurrency, tofu=trust_on_first_use, state_dir=state_dir)
    if not remove_plan.remove(rc, hosts, force=force).ok:
        raise typer.Exit(1)


def reset(
    inventory: Inventory,
    hosts: Annotated[list[str] | None, typer.Argument(help="host names in the inventory", metavar="[HOST...]")] = None,
    everything: Annotated[bool, typer.Option("--all", help="every host of the inventory: the whole cluster")] = False,
    force: Annotated[bool, typer.Option("--force", help="also a master or etcd member on its own")] = False,
    yes: Yes = False,
    dry_run: DryRun = False,
    concurrency: Concurrency = 32,
    as_json: Json = False,
    trust_on_first_use: Tofu = False,
    state_dir: StateOpt = None,
) -> None:
    """Undo what keelson and kubeadm did on the hosts (kubeadm reset, kubelet, CNI, etcd data, load balancer), so they
    can be joined or applied again. Asks first unless --yes. Packages and binaries stay."""
    from inventory.loader import load_inventory
    from keelson.engine_cmd import run
    from roles.plans import reset as reset_plan

    cluster = load_inventory(inventory)
    chosen = reset_plan.chosen(cluster, hosts or [], everything=everything, force=force)
    if not yes and not dry_run:
        what = "every host of" if everything else ", ".join(h.name for h in chosen) + " of"
        typer.confirm(
            f"Reset {what} cluster {cluster.name}? Kubernetes and etcd data on them are deleted",
            abort=True,
            err=True,
        )
    plan = reset_plan.plan(cluster, chosen)
    run(plan, cluster, dry_run, as_json, concurrency=concurrency, tofu=trust_on_first_use, state_dir=state_dir)


def verify(
    inventory: Inventory,
    warn_days: Annotated[
        int, typer.Option("--warn-days", help="fail when a certificate expires within N days", min=0)
    ] = 30,
    chaos: Annotated[
        bool,
        typer.Option(
            "--chaos",
            help="also the destructive parts: a VIP failover (keepalived stopped on the holder: connections through "
            "it break) and one etcd member stopped, then started again",
        ),
    ] = False,
    scratch: Annotated[
        Literal["lab", "none"],
        typer.Option(
            "--scratch",
            help="where the backup is restored and counted: one scratch lab host, booted and torn down here (needs "
            "root and systemd-nspawn), or none (the restore check is skipped)",
        ),
    ] = "lab",
    fresh_backup: Annotated[
        bool,
        typer.Option(
            "--fresh-backup",
            help="take a backup now (as keelson backup now: copied to the targets, which are pruned to retention) "
            "and restore that one, instead of the newest kept",
        ),
    ] = False,
    as_json: Json = False,
    state_dir: StateOpt = None,
) -> None:
    """A drill on the running cluster: etcd members healthy, the API through the VIP and every node Ready,
    certificate expiry, the newest backup restored into a scratch host (never the cluster) and its objects counted
    against the live cluster's. Safe by default; --chaos adds a VIP failover and an etcd member stopped and started.
    One line per check — PASS, FAIL or SKIP with the reason and figures; exit 1 on a FAIL."""
    import json

    from rich.console import Console
    from rich.text import Text

    from inventory.loader import load_inventory
    from roles.control_plane.verify import verify as drill
    from roles.state import StateDir

    from .signals import stop_cleanly_on_sigterm

    stop_cleanly_on_sigterm()  # killed, the drill still takes its scratch lab down and restarts what --chaos stopped
    cluster = load_inventory(inventory)
    state = StateDir(state_dir) if state_dir else StateDir.for_cluster(cluster.name)
    done = drill(
        cluster,
        state if state.path.is_dir() else None,
        warn_days=warn_days,
        chaos=chaos,
        scratch=scratch,
        fresh_backup=fresh_backup,
    )
    if as_json:
        typer.echo(json.dumps(done.as_dict()))
    else:
        console = Console(highlight=False, soft_wrap=True)
        styles = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow"}
        for mark, text in done.lines():
            console.print(Text(f"{mark} ", style=styles[mark]) + Text(text))
        console.print(Text("verify: " + ("passed" if done.ok else "FAILED"), style="green" if done.ok else "bold red"))
    if not done.ok:
        raise typer.Exit(1)
