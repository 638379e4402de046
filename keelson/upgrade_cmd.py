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
    from keelson.engine_cmd import PlanFailed, run
    from provision.artifacts.catalog import normalise
    from roles.plans import upgrade as upgrade_plan
    from roles.upgrade.preflight import Options

    cluster = load_inventory(inventory)
    plan = upgrade_plan.plan(cluster, to, Options(backup=not without_backup), drain_timeout_s=drain_timeout)
    try:
        run(plan, cluster, dry_run, as_json, concurrency=concurrency, tofu=trust_on_first_use, state_dir=state_dir)
    except PlanFailed as exc:
        if not as_json:
            typer.echo(
                after_failure(exc.stopped_after, f"keelson upgrade -i {inventory} --to {normalise(to)}"), err=True
            )
        raise


def after_failure(stopped_after: str | None, command: str) -> str:
    """What to do after a failed upgrade, by where it stopped. Pure. Before any node was touched (unreachable hosts,
    the preflight's refusals: skew, health, artifacts, backup) a rerun only helps once the cause is gone, and nothing
    is to resume; from the first master on, the same command resumes where it stopped."""
    if stopped_after is None or not stopped_after.startswith("Upgrade | ") or "Preflight" in stopped_after:
        return f"upgrade not started: nothing was changed; once what is reported above is dealt with: {command}"
    if stopped_after.startswith("Upgrade | Stage"):
        return f"upgrade not started: no node was drained or restarted; fix what failed, then: {command}"
    return (
        f"upgrade stopped: fix what failed and run the same command again ({command}): nodes already at the target "
        "are skipped, a cordoned node is resumed"
    )
