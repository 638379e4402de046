"""`keelson upgrade --to VERSION`: the rolling upgrade plan (roles/plans/upgrade.py) through the one runner."""

from __future__ import annotations

from typing import Annotated

import typer

from keelson.engine_cmd import Concurrency, Inventory, Json, StateOpt, Tofu


def upgrade(
    inventory: Inventory,
    to: Annotated[
        str, typer.Option("--to", help="the Kubernetes version; the inventory's kubernetes.version must say it")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="preflight and the commands each node would run")] = False,
    drain_timeout: Annotated[
        int, typer.Option("--drain-timeout", help="seconds a node's drain may take (PodDisruptionBudgets)", min=1)
    ] = 300,
    without_backup: Annotated[
        bool, typer.Option("--without-backup", help="do not take and verify an etcd backup first (not advised)")
    ] = False,
    concurrency: Concurrency = 32,
    as_json: Json = False,
    trust_on_first_use: Tofu = False,
    state_dir: StateOpt = None,
) -> None:
    """Upgrade Kubernetes to the inventory's version: preflight (skew, health, artifacts, a verified backup), then
    the first master (kubeadm upgrade apply), the other masters and the workers one at a time (drain, kubeadm upgrade
    node, kubelet, health gate through the VIP, uncordon). Stops at the first failure; a rerun resumes."""
    from inventory.loader import load_inventory
    from keelson.engine_cmd import run
    from roles.plans import upgrade as upgrade_plan
    from roles.upgrade.preflight import Options

    cluster = load_inventory(inventory)
    plan = upgrade_plan.plan(cluster, to, Options(backup=not without_backup), drain_timeout_s=drain_timeout)
    try:
        run(plan, cluster, dry_run, as_json, concurrency=concurrency, tofu=trust_on_first_use, state_dir=state_dir)
    except typer.Exit as exc:
        if exc.exit_code and not as_json:
            typer.echo(
                f"upgrade stopped: fix what failed and run the same command again (keelson upgrade -i {inventory} "
                f"--to {to}): nodes already at {to} are skipped, a cordoned node is resumed",
                err=True,
            )
        raise
