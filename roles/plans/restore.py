"""The restore: one etcd snapshot back onto every member and the cluster working on it again, in order (what each
phase does: `backups/restore.py`).

The snapshot is verified on the operator side before this plan exists (`backups.snapshots.obtained`): a corrupt or
truncated file is refused (exit 3) before anything is connected to or stopped. Staging checks it again on every
member before the first phase that stops anything, and the runner stops a plan at the first phase that fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from backups.restore import RestoreSpec
from backups.restore_phases import RemoveStaged, RestoreData, RestoreRun, StageSnapshot, StartEtcd, StopEtcd
from backups.snapshots import VerifiedSnapshot, obtained
from inventory.errors import KeelsonError
from inventory.model import Cluster
from roles.control_plane.restore_phases import ClusterAnswers, RestartKubelets, StartControlPlane, StopControlPlane
from roles.engine.context import RunContext
from roles.engine.events import Event
from roles.engine.phase import Plan
from roles.engine.runner import RunReport, run_plan
from roles.state import StateDir


class RestoreFailed(KeelsonError):
    """The restore stopped part way: rerun the same command, it continues from where it is."""


def plan(cluster: Cluster, snapshot: VerifiedSnapshot, *, stamp: str | None = None) -> Plan:
    spec = RestoreSpec(cluster, snapshot) if stamp is None else RestoreSpec(cluster, snapshot, stamp)
    run = RestoreRun(spec)
    return Plan(
        "restore",
        [
            StageSnapshot(run),
            StopControlPlane(run),  # every master: apiserver, controller-manager, scheduler stopped
            StopEtcd(run),
            RestoreData(run),
            StartEtcd(run),
            StartControlPlane(run),  # each apiserver ready on its own address
            RestartKubelets(run),  # every Linux node
            ClusterAnswers(run),  # through the VIP, every node Ready: a working cluster, not only a working etcd
            RemoveStaged(run),  # last: until here a rerun skips the data restore (the marker)
        ],
        notes=(
            f"verified {snapshot.describe()}",
            f"cluster token {spec.token}; old data dirs are kept as {spec.old_data_dir}; an interrupted restore "
            "continues when the same command runs again",
        ),
    )


def restore(
    cluster: Cluster,
    snapshot_ref: str,
    events: Callable[[Event], None] | None = None,
    *,
    dry_run: bool = False,
    state_dir: Path | None = None,
) -> RunReport:
    """Verify `snapshot_ref` (a file or s3://bucket/key; SnapshotRejected before anything else), then run the plan.
    Raises RestoreFailed when a phase failed."""
    with obtained(cluster, snapshot_ref) as snapshot:
        rc = RunContext(
            cluster=cluster,
            state_dir=state_dir or StateDir.for_cluster(cluster.name).path,
            dry_run=dry_run,
            events=events or (lambda event: None),
        )
        report = run_plan(plan(cluster, snapshot), rc)
    if not report.ok:
        errors = sorted({e for h in report.hosts.values() for e in h.errors})
        raise RestoreFailed(
            "restore failed: " + "; ".join(errors),
            hint="fix the cause and rerun the same command: finished steps are skipped, old data dirs are kept",
        )
    return report
