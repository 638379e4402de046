"""Restore every etcd member from one snapshot, losing nothing that was in it, and safe to run again if interrupted.

Order (each step converges when repeated):
  1. verify the snapshot on the operator side (gzip + etcd's trailing sha256) — a bad file stops here, untouched;
  2. stage the SAME file on every member, compare its sha256 there, inflate it and run `snapshot status` on it;
  3. stop the apiservers (move kube-apiserver.yaml out of the static-pod folder, if there is one) and etcd;
  4. on each member: `snapshot restore` into `<data_dir>.restore-<id>` with its own name/peer URL and the full
     initial cluster, keep the old data dir as `<data_dir>.pre-restore-<UTC time>`, move the new one in place and
     write a marker `swapped <id>` (a rerun of the same snapshot skips members that carry the marker);
  5. start etcd on all members together, wait for every member to be healthy and at the snapshot's revision;
  6. put the apiservers back, remove the staged files and markers.
<id> is derived from the snapshot's sha256, so an interrupted run and its rerun agree on names and cluster token.
"""

from __future__ import annotations

import datetime as dt
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backups import agent
from backups.remote import HostShell, RemoteStepError, must, on_all
from backups.snapshots import VerifiedSnapshot, obtain
from inventory.errors import KeelsonError
from inventory.model import Cluster, Host
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.phase import CustomPhase, HostOutcome
from roles.etcd import commands
from roles.etcd import defaults as etcd_defaults

if TYPE_CHECKING:
    from roles.engine.transport import ConnectionPool

STAGE_DIR = "/var/lib/keelson/restore"
MANIFESTS = "/etc/kubernetes/manifests"
MANIFESTS_ASIDE = "/etc/kubernetes/manifests.keelson-restore"
APISERVER_MANIFEST = "kube-apiserver.yaml"
HEALTH_TIMEOUT_S = 90.0
HEALTH_POLL_S = 0.3


@dataclass(frozen=True)
class RestorePlan:
    cluster: Cluster
    snapshot: VerifiedSnapshot
    stamp: str = field(default_factory=lambda: f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
    etcd_version: str = "3.4.0"  # detected on the members before a real run (`etcd --version`)

    @property
    def restore_id(self) -> str:
        return self.snapshot.db_sha256[:16]

    @property
    def token(self) -> str:
        """A fresh cluster token per snapshot: restored members never mistake an old member for one of theirs."""
        return f"{commands.cluster_token(self.cluster)}-restore-{self.restore_id[:8]}"

    @property
    def staged_gz(self) -> str:
        return f"{STAGE_DIR}/{self.restore_id}.db.gz"

    @property
    def staged_db(self) -> str:
        return f"{STAGE_DIR}/{self.restore_id}.db"

    @property
    def marker(self) -> str:
        return f"{STAGE_DIR}/state"

    @property
    def data_dir(self) -> str:
        return self.cluster.etcd.data_dir.rstrip("/")

    def member(self, name: str) -> Host:
        return self.cluster.host(name)

    # -- the scripts, one per step (pure: tested as text, run by bash on the members) -------------------------
    def stage_script(self) -> str:
        q = shlex.quote
        status = commands.snapshot_status_cmd(self.etcd_version, self.staged_db)
        return f"""set -euo pipefail
test "$(sha256sum < {q(self.staged_gz)} | cut -d' ' -f1)" = {q(self.snapshot.file_sha256)} || {{
  echo "staged snapshot sha256 differs from the operator's copy" >&2; exit 3; }}
if ! test "$(sha256sum < {q(self.staged_db)} 2>/dev/null | cut -d' ' -f1)" = {q(self.snapshot.db_sha256)}; then
  gzip -dc {q(self.staged_gz)} > {q(self.staged_db)}.part && mv -f {q(self.staged_db)}.part {q(self.staged_db)}
fi
test "$(sha256sum < {q(self.staged_db)} | cut -d' ' -f1)" = {q(self.snapshot.db_sha256)}
{status}
"""

    def stop_apiserver_script(self) -> str:
        manifest, aside = f"{MANIFESTS}/{APISERVER_MANIFEST}", f"{MANIFESTS_ASIDE}/{APISERVER_MANIFEST}"
        return f"""set -eu
if [ -f {manifest} ]; then mkdir -p {MANIFESTS_ASIDE}; mv -f {manifest} {aside}; echo stopped
elif [ -f {aside} ]; then echo already-stopped
else echo absent; fi
"""

    def start_apiserver_script(self) -> str:
        manifest, aside = f"{MANIFESTS}/{APISERVER_MANIFEST}", f"{MANIFESTS_ASIDE}/{APISERVER_MANIFEST}"
        return f"""set -eu
if [ -f {aside} ]; then mv -f {aside} {manifest}; rmdir {MANIFESTS_ASIDE} 2>/dev/null || true; echo started
else echo absent; fi
"""

    def restore_script(self, host: Host) -> str:
        q = shlex.quote
        new, old = f"{self.data_dir}.restore-{self.restore_id}", f"{self.data_dir}.pre-restore-{self.stamp}"
        restore = commands.snapshot_restore_cmd(
            self.etcd_version,
            self.staged_db,
            host.name,
            commands.initial_cluster(self.cluster),
            self.token,
            commands.member_peer_url(self.cluster, host),
            new,
        )
        done = f"swapped {self.restore_id}"
        return f"""set -euo pipefail
if [ "$(cat {q(self.marker)} 2>/dev/null)" = {q(done)} ] && [ -d {q(self.data_dir)}/member ]; then
  echo already-restored; exit 0
fi
rm -rf {q(new)}
{restore} >/dev/null 2>{q(STAGE_DIR)}/restore.log || {{ cat {q(STAGE_DIR)}/restore.log >&2; exit 1; }}
chown -R {etcd_defaults.ETCD_USER}:{etcd_defaults.ETCD_USER} {q(new)}
chmod 700 {q(new)}
if [ -e {q(self.data_dir)} ]; then mv {q(self.data_dir)} {q(old)}; echo kept-old {q(old)}; fi
mv {q(new)} {q(self.data_dir)}
echo {q(done)} > {q(self.marker)}
sync
echo restored
"""

    def cleanup_script(self) -> str:
        q = shlex.quote
        return f"rm -f {q(self.staged_gz)} {q(self.staged_db)} {q(self.marker)} {q(STAGE_DIR)}/restore.log\n"


# -- the procedure ------------------------------------------------------------------------------------------------


def stage(plan: RestorePlan, shell: HostShell) -> agent.SnapshotStatus:
    """Upload unless the same bytes are already there; sha256 compared on the host; `snapshot status` there."""
    must(shell, f"mkdir -p -m 0700 {STAGE_DIR}", "creating the staging folder")
    present = shell.sh(f"sha256sum < {shlex.quote(plan.staged_gz)} 2>/dev/null | cut -d' ' -f1")
    if present.stdout.strip() != plan.snapshot.file_sha256:
        shell.upload(plan.snapshot.path, plan.staged_gz, mode=0o600)
    out = must(shell, plan.stage_script(), "checking the staged snapshot", timeout=300)
    status = agent.parse_snapshot_status(out)
    if plan.snapshot.revision is not None and status.revision != plan.snapshot.revision:
        raise RemoteStepError(
            f"{shell.name}: snapshot status says revision {status.revision}, its name says {plan.snapshot.revision}"
        )
    return status


def wait_healthy(plan: RestorePlan, shell: HostShell, revision: int, deadline: float) -> None:
    """Every member healthy, agreeing on one leader and at (or past) the snapshot's revision."""
    endpoints = [commands.member_client_url(plan.cluster, h) for h in plan.cluster.etcd_members]
    health = commands.endpoint_health_cmd(endpoints=endpoints, tls=commands.HEALTHCHECK_TLS, whole_cluster=False)
    status = commands.etcdctl(["endpoint", "status", "-w", "json"], endpoints=endpoints, tls=commands.HEALTHCHECK_TLS)
    while True:
        healthy = shell.sh(health, timeout=30)
        out = shell.sh(status, timeout=30) if healthy.ok else healthy
        statuses = agent.parse_endpoint_status(out.stdout) if out.ok else []
        leaders = {s.leader for s in statuses}
        caught_up = len(statuses) == len(endpoints) and all(s.revision >= revision for s in statuses)
        if caught_up and len(leaders) == 1 and 0 not in leaders:
            return
        if time.monotonic() > deadline:
            detail = (out.stderr or out.stdout).strip()[-300:]
            raise RemoteStepError(f"etcd not healthy {HEALTH_TIMEOUT_S:.0f} s after the restore: {detail}")
        time.sleep(HEALTH_POLL_S)


def current_leader(plan: RestorePlan, shell: HostShell) -> str | None:
    """The member that leads now, if etcd answers (it may well not: restores happen after disasters)."""
    endpoints = [commands.member_client_url(plan.cluster, h) for h in plan.cluster.etcd_members]
    status = commands.etcdctl(
        ["endpoint", "status", "-w", "json", "--command-timeout=2s", "--dial-timeout=1s"],
        endpoints=endpoints,
        tls=commands.HEALTHCHECK_TLS,
    )
    by_url = {commands.member_client_url(plan.cluster, h): h.name for h in plan.cluster.etcd_members}
    leaders = [s for s in agent.parse_endpoint_status(shell.sh(status, timeout=15).stdout) if s.is_leader]
    return by_url.get(leaders[0].endpoint) if leaders else None


def stop_etcd(plan: RestorePlan, shells: Sequence[HostShell]) -> str | None:
    """Followers first, then the leader: a leader stopped together with its followers tries to hand leadership to
    one that is going away and waits out the request timeout (~7 s measured); alone, it stops at once."""
    leader = current_leader(plan, shells[0])

    def stop(shell: HostShell) -> str:
        return must(shell, f"systemctl stop {etcd_defaults.UNIT_NAME}", "stopping etcd", timeout=120)

    on_all([s for s in shells if s.name != leader], stop)
    on_all([s for s in shells if s.name == leader], stop)
    return leader


Report = Callable[[str], None]


def run_restore(plan: RestorePlan, shells: Sequence[HostShell], report: Report) -> None:
    by_name = {s.name: s for s in shells}
    missing = [h.name for h in plan.cluster.etcd_members if h.name not in by_name]
    if missing:
        raise RemoteStepError(f"no connection to etcd member(s) {', '.join(missing)}: a restore needs every member")
    started = time.monotonic()
    statuses = on_all(shells, lambda s: stage(plan, s))
    revision = next(iter(statuses.values())).revision
    keys = next(iter(statuses.values())).total_keys
    report(f"staged {plan.snapshot.name} on {', '.join(by_name)}: sha256 equal, revision {revision}, {keys} keys")
    api = on_all(shells, lambda s: must(s, plan.stop_apiserver_script(), "stopping kube-apiserver").strip())
    stopped = [n for n, r in api.items() if r != "absent"]
    report(f"apiservers stopped on {', '.join(stopped)}" if stopped else "no kube-apiserver manifest: skipped")
    leader = stop_etcd(plan, shells)
    report("etcd stopped on every member" + (f" (followers first, then the leader {leader})" if leader else ""))
    results = on_all(shells, lambda s: must(s, plan.restore_script(plan.member(s.name)), "etcd snapshot restore"))
    for name, out in results.items():
        kept = [ln.split(maxsplit=1)[1] for ln in out.splitlines() if ln.startswith("kept-old ")]
        state = "already restored (rerun)" if "already-restored" in out else "restored"
        report(f"{name}: {state}" + (f"; old data kept in {kept[0]}" if kept else ""))
    on_all(shells, lambda s: must(s, f"systemctl start --no-block {etcd_defaults.UNIT_NAME}", "starting etcd"))
    wait_healthy(plan, shells[0], revision, time.monotonic() + HEALTH_TIMEOUT_S)
    report(f"etcd healthy on all {len(shells)} members at revision ≥ {revision}")
    if stopped:
        on_all(shells, lambda s: must(s, plan.start_apiserver_script(), "starting kube-apiserver"))
        report(f"apiservers started on {', '.join(stopped)}")
    on_all(shells, lambda s: must(s, plan.cleanup_script(), "removing the staged snapshot"))
    report(f"restore done in {time.monotonic() - started:.1f} s")


def dry_run_lines(plan: RestorePlan) -> Iterator[str]:
    yield f"would restore {plan.snapshot.describe()}"
    yield f"  cluster token {plan.token}; old data dirs kept as {plan.data_dir}.pre-restore-{plan.stamp}"
    for host in plan.cluster.etcd_members:
        yield f"  {host.name}: stage {plan.staged_gz} (sha256 compared), stop kube-apiserver (if any) and etcd"
        restore = commands.snapshot_restore_cmd(
            plan.etcd_version,
            plan.staged_db,
            host.name,
            commands.initial_cluster(plan.cluster),
            plan.token,
            commands.member_peer_url(plan.cluster, host),
            f"{plan.data_dir}.restore-{plan.restore_id}",
        )
        yield f"  {host.name}: {restore}"
    yield "  then: start etcd on every member together, wait for health, start kube-apiserver again"


def detect_version(shell: HostShell) -> commands.EtcdVersion:
    return commands.EtcdVersion.parse(must(shell, "etcd --version", "reading the etcd version"))


class RestoreFailed(KeelsonError):
    """The restore stopped part way: rerun the same command, it continues from where it is."""


class RestorePhase(CustomPhase):
    """The engine's view of a restore: the plan's commands per member (dry run), or the whole procedure."""

    title = "restore | etcd from snapshot"

    def __init__(self, snapshot: VerifiedSnapshot, report: Report) -> None:
        self.snapshot = snapshot
        self.report = report

    def hosts(self, cluster: Cluster) -> list[Host]:
        return list(cluster.etcd_members)

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        plan = RestorePlan(rc.cluster, self.snapshot)
        return {
            h.name: [
                Command(f"upload {self.snapshot.name} to {plan.staged_gz}"),
                Command(plan.stage_script()),
                Command(plan.stop_apiserver_script()),
                Command(f"systemctl stop {etcd_defaults.UNIT_NAME}"),
                Command(plan.restore_script(h)),
                Command(f"systemctl start --no-block {etcd_defaults.UNIT_NAME}"),
                Command(plan.start_apiserver_script()),
            ]
            for h in self.hosts(rc.cluster)
        }

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        from backups.connect import shells

        members = shells(pool, self.hosts(rc.cluster))
        version = detect_version(members[0])
        run_restore(RestorePlan(rc.cluster, self.snapshot, etcd_version=str(version)), members, self.report)
        return {s.name: HostOutcome(changed=True) for s in members}


def restore_cluster(cluster: Cluster, snapshot_ref: str, report: Report, *, dry_run: bool = False) -> None:
    """The CLI's entry: verify first (refusing before anything stops), then the procedure on every member."""
    from roles.engine.runner import run_plan
    from roles.state import StateDir

    with tempfile.TemporaryDirectory(prefix="keelson-restore-") as work:
        snapshot = obtain(cluster, snapshot_ref, Path(work))
        report(f"verified {snapshot.describe()}")
        if dry_run:
            for line in dry_run_lines(RestorePlan(cluster, snapshot)):
                report(line)
            return
        rc = RunContext(cluster=cluster, state_dir=StateDir.for_cluster(cluster.name).path)
        result = run_plan([RestorePhase(snapshot, report)], rc)
        if not result.ok:
            errors = sorted({e for h in result.hosts.values() for e in h.errors})
            raise RestoreFailed(
                "restore failed: " + "; ".join(errors),
                hint="fix the cause and rerun the same command: finished steps are skipped, old data dirs are kept",
            )
