"""`keelson verify`'s restore check: the newest backup restored into a scratch host — never into the live cluster —
and its objects counted against the live cluster's (`backups/keycount.py` compares).

1. the snapshot: the newest one the backup agent keeps on the members (`keelson backup list`'s listing, local
   copies), or — `fresh` — one taken now by the agent (`keelson backup now`'s run: the leader takes it, verifies it,
   keeps it and copies it to the targets, which are then pruned to `retention`);
2. fetched from the member that keeps it over the engine's connection and verified on this machine
   (`backups/snapshots.py`, the check `keelson restore` makes: gzip, then etcd's trailing sha256);
3. the live cluster's keys under `/registry/` at the snapshot's revision, read on a member (`etcdctl get --rev`,
   read-only), right away: the apiserver compacts history every few minutes;
4. a scratch host booted (`provision/lab/scratch.py`: a lab of its own), etcd's binaries installed on it by the etcd
   role's own step from the cluster's release in the local artifact set (the lab host reaches no network beyond its
   bridge: nothing is downloaded), the snapshot uploaded, `etcdutl snapshot restore` into a temp data dir, a
   throwaway etcd started on the host's loopback, its keys counted, the etcd stopped and its data removed; the
   scratch lab taken down in every case.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backups import agent, keycount
from backups.keycount import Comparison, RegistryKeys
from inventory.errors import KeelsonError
from inventory.kubernetes import Artifacts
from inventory.model import Cluster

if TYPE_CHECKING:
    from backups.operations import Members
    from provision.lab.scratch import ScratchHost
    from roles.engine.transport import Transport

SCRATCH_DIR = "/var/tmp/keelson-verify"
UNIT = "keelson-verify-etcd"
CLIENT = "http://127.0.0.1:2379"
PEER = "http://127.0.0.1:2380"
MEMBER = "scratch"
START_TIMEOUT_S = 60.0

Boot = Callable[[Cluster, Path], AbstractContextManager["ScratchHost"]]


@dataclass
class Outcome:
    status: str  # pass | fail | skipped
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


class DrillFailed(KeelsonError):
    """A step of the scratch restore failed: the message says which and why."""


# -- the snapshot --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kept:
    member: str
    name: str
    location: str  # its path on the member
    revision: int


def newest(
    listings: dict[str, dict[str, Any]], cluster: str, name: str | None = None, after: dt.datetime | None = None
) -> Kept | None:
    """The newest snapshot of `cluster` (by the UTC time in its name, then revision) over the members' local copies —
    or the one called `name`; only those taken after `after` when given. `listings`: member -> the agent's `list`
    JSON."""
    found: list[tuple[tuple[dt.datetime, int], Kept]] = []
    for member, listing in sorted(listings.items()):
        for item in listing.get("local") or []:
            parsed = agent.parse_snapshot_name(str(item.get("name", "")))
            if parsed is None or parsed.cluster != cluster or (name is not None and item["name"] != name):
                continue
            if after is not None and parsed.time <= after:
                continue
            kept = Kept(member, item["name"], str(item.get("location", "")), parsed.revision)
            found.append(((parsed.time, parsed.revision), kept))
    return max(found, key=lambda f: f[0])[1] if found else None


def restored_at(ls_output: str, data_dir: str) -> dt.datetime | None:
    """When the cluster was last restored (`keelson restore` keeps each replaced data dir as
    `<data_dir>.pre-restore-<UTC time>`), from `ls -d` of those on the members; None: never, as far as they show."""
    from backups.restore import PRE_RESTORE

    prefix = data_dir.rstrip("/") + PRE_RESTORE
    times = []
    for line in ls_output.split():
        if line.startswith(prefix):
            try:
                times.append(dt.datetime.strptime(line[len(prefix) :], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC))
            except ValueError:
                continue
    return max(times, default=None)


def last_restore(members: Members, cluster: Cluster) -> dt.datetime | None:
    from backups.restore import PRE_RESTORE

    pattern = shlex.quote(cluster.etcd.data_dir.rstrip("/") + PRE_RESTORE) + "*"
    outputs = [t.run(f"ls -d {pattern} 2>/dev/null; true", timeout=30).stdout for t in members.transports.values()]
    return restored_at("\n".join(outputs), cluster.etcd.data_dir)


def choose(members: Members, cluster: Cluster, *, fresh: bool) -> Kept | Outcome:
    from backups.operations import run_list, run_now

    if not members.transports:
        return Outcome("fail", f"no etcd member answered ({'; '.join(members.down.values())})")
    taken = None
    if fresh:
        result = run_now(members)
        if not result.taken_by:
            return Outcome("fail", "the backup run took no snapshot: " + " | ".join(result.describe().splitlines()))
        taken = str(result.runs[result.taken_by[0]]["snapshot"])
    listing = run_list(members, offsite=False)
    if not listing.members:
        why = "; ".join(f"{m}: {e}" for m, e in sorted(listing.unreachable.items()))
        return Outcome("fail", f"no etcd member could list its snapshots ({why})")
    since = last_restore(members, cluster)  # older snapshots hold a history the restore replaced: nothing to count
    kept = newest(listing.members, cluster.name, taken, after=since)
    if kept is None and taken:
        return Outcome("fail", f"the snapshot just taken, {taken}, is not among those the members keep")
    if kept is None and since is not None and newest(listing.members, cluster.name) is not None:
        return Outcome(
            "skipped",
            f"no snapshot taken since the cluster was restored ({since:%Y-%m-%d %H:%M:%S} UTC): older ones hold a "
            "history the restore replaced, so the live cluster cannot tell whether they are whole (take one: keelson "
            "backup now, or keelson verify --fresh-backup)",
        )
    if kept is None:
        return Outcome(
            "skipped",
            f"no snapshot kept on any etcd member yet (the backup timer runs {cluster.backups.schedule}; take one: "
            "keelson backup now, or keelson verify --fresh-backup)",
        )
    return kept


def fetch(transport: Transport, kept: Kept, work: Path) -> Any:
    """The snapshot's bytes from its member, verified here (a bad one raises SnapshotRejected)."""
    from backups.snapshots import verify_snapshot

    path = work / kept.name
    path.write_bytes(transport.get(kept.location))
    return verify_snapshot(path)


# -- the live cluster's keys ---------------------------------------------------------------------------------------


def live_keys(cluster: Cluster, members: Members, revision: int) -> tuple[RegistryKeys, bool, str]:
    """(keys, at the revision?, member asked): the live keys at `revision`, or — compacted — those there now."""
    from roles.etcd.commands import HEALTHCHECK_TLS, etcdctl, member_client_url

    errors = []
    for host in members.hosts:
        transport = members.transports[host.name]
        url = member_client_url(cluster, host)
        at = transport.run(etcdctl(keycount.get_keys_args(revision), endpoints=url, tls=HEALTHCHECK_TLS), timeout=120)
        if at.rc == 0:
            return keycount.parse_keys(at.stdout), True, host.name
        if keycount.compacted(at.stderr):
            now = transport.run(etcdctl(keycount.get_keys_args(), endpoints=url, tls=HEALTHCHECK_TLS), timeout=120)
            if now.rc == 0:
                return keycount.parse_keys(now.stdout), False, host.name
            at = now
        errors.append(f"{host.name}: {(at.stderr or at.stdout).strip()[-300:] or f'exit {at.rc}'}")
    raise DrillFailed("could not read the live cluster's keys: " + "; ".join(errors))


# -- the scratch host ----------------------------------------------------------------------------------------------


def scratch_cluster(scratch: Cluster, live: Cluster) -> Cluster:
    """The scratch lab's inventory with the live cluster's Kubernetes release, its artifacts from the local set (a
    lab host reaches nothing but its bridge)."""
    kubernetes = live.kubernetes
    if kubernetes.artifacts.source != "local":
        kubernetes = kubernetes.model_copy(update={"artifacts": Artifacts(source="local")})
    return scratch.model_copy(update={"kubernetes": kubernetes})


def install_etcd(cluster: Cluster, work: Path) -> None:
    """The etcd role's own binaries step (sha256-checked, from the artifact set) on the scratch host."""
    from roles.engine.context import RunContext
    from roles.engine.phase import Phase
    from roles.engine.runner import run_plan
    from roles.etcd.steps import etcd_binaries

    phase = Phase("verify | etcd binaries on the scratch host", hosts=lambda c: c.hosts, steps=etcd_binaries(cluster))
    state = work / "scratch-state"
    state.mkdir(mode=0o700, exist_ok=True)
    report = run_plan([phase], RunContext(cluster, state))
    if not report.ok:
        errors = "; ".join(f"{h}: {'; '.join(s.errors)}" for h, s in report.hosts.items() if s.errors)
        raise DrillFailed(f"etcd's binaries could not be installed on the scratch host: {errors or 'failed'}")


def restore_script(uploaded: str, db_sha256: str, etcd_version: str) -> str:
    from roles.etcd.commands import snapshot_restore_cmd

    q = shlex.quote
    db, data = f"{SCRATCH_DIR}/snapshot.db", f"{SCRATCH_DIR}/data"
    restore = snapshot_restore_cmd(etcd_version, db, MEMBER, f"{MEMBER}={PEER}", "keelson-verify", PEER, data)
    return f"""set -euo pipefail
export PATH=/usr/local/bin:$PATH
systemctl stop {UNIT} 2>/dev/null || true
rm -rf {SCRATCH_DIR}; install -d -m 0700 {SCRATCH_DIR}
gzip -dc {q(uploaded)} > {db}
rm -f {q(uploaded)}
test "$(sha256sum < {db} | cut -d' ' -f1)" = {q(db_sha256)} || {{ echo "the uploaded snapshot differs" >&2; exit 3; }}
{restore} > {SCRATCH_DIR}/restore.log 2>&1 || {{ cat {SCRATCH_DIR}/restore.log >&2; exit 1; }}
"""


def start_command() -> str:
    etcd = [
        "/usr/local/bin/etcd",
        f"--name={MEMBER}",
        f"--data-dir={SCRATCH_DIR}/data",
        f"--listen-client-urls={CLIENT}",
        f"--advertise-client-urls={CLIENT}",
        f"--listen-peer-urls={PEER}",
        f"--initial-advertise-peer-urls={PEER}",
    ]
    return shlex.join(["systemd-run", f"--unit={UNIT}", "--collect", "--quiet", "--", *etcd])


def etcdctl_local(*args: str) -> str:
    return shlex.join(["/usr/local/bin/etcdctl", f"--endpoints={CLIENT}", *args])


def stop_command() -> str:
    return f"systemctl stop {UNIT} 2>/dev/null; rm -rf {SCRATCH_DIR}; true"


def _timed(figures: dict[str, Any], name: str, action: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = action()
    figures[name] = round(time.monotonic() - started, 3)
    return result


def _check(transport: Transport, script: str, what: str, timeout: float = 300) -> str:
    out = transport.run(script, timeout=timeout)
    if out.rc != 0:
        raise DrillFailed(f"{what} failed on the scratch host: {(out.stderr or out.stdout).strip()[-400:]}")
    return out.stdout


def restore_on(transport: Transport, snapshot: Any, etcd_version: str, figures: dict[str, Any]) -> RegistryKeys:
    """Upload, restore, start, count, stop: the keys the snapshot holds, as a restored etcd serves them."""
    from roles.engine.waiting import until
    from roles.etcd.health import parse_health

    folder = _timed(figures, "upload_s", lambda: transport.send_files([(snapshot.path, snapshot.name)]))
    uploaded = f"{folder}/{snapshot.name}"
    script = restore_script(uploaded, snapshot.db_sha256, etcd_version)
    _timed(figures, "restore_s", lambda: _check(transport, script, "etcdutl snapshot restore"))
    try:
        _check(transport, start_command(), "starting the throwaway etcd", timeout=60)

        def healthy() -> bool:
            report = parse_health(transport.run(etcdctl_local("endpoint", "health", "-w", "json"), timeout=30).stdout)
            return bool(report) and all(e.healthy for e in report)

        waited = until(healthy, timeout_s=START_TIMEOUT_S)
        if waited is None:
            log = transport.run(f"journalctl -u {UNIT} --no-pager -n 5 -o cat", timeout=30).stdout.strip()
            raise DrillFailed(f"the throwaway etcd was not healthy within {START_TIMEOUT_S:.0f} s: {log[-400:]}")
        figures["start_s"] = round(waited, 3)
        out = _check(transport, etcdctl_local(*keycount.get_keys_args()), "counting the restored keys", timeout=120)
        return keycount.parse_keys(out)
    finally:
        transport.run(stop_command(), timeout=60)


# -- the check -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _private_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="keelson-verify-") as work:  # 0700: the snapshot holds every Secret
        yield Path(work)


def drill(
    cluster: Cluster,
    *,
    scratch: str = "lab",
    fresh: bool = False,
    boot: Boot | None = None,
    unavailable: Callable[[], str | None] | None = None,
) -> Outcome:
    """The restore check, start to end; every failure an Outcome with its reason (never an exception a user sees)."""
    if scratch == "none":
        return Outcome("skipped", "turned off (--scratch none)")
    if not cluster.backups.enabled:
        return Outcome("skipped", "backups are off in the inventory (backups.enabled: false): nothing to restore")
    if boot is None or unavailable is None:
        from provision.lab import scratch as lab_scratch

        boot, unavailable = boot or lab_scratch.lab_scratch, unavailable or lab_scratch.unavailable
    why = unavailable()
    if why is not None:
        return Outcome("skipped", f"no scratch host can boot here: {why}")
    try:
        return _drill(cluster, fresh, boot)
    except KeelsonError as exc:
        hint = f" (hint: {exc.hint})" if exc.hint else ""
        return Outcome("fail", f"{exc.message}{hint}")
    except OSError as exc:  # this machine's side: the temp folder, the lab's files
        return Outcome("fail", f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")


def _drill(cluster: Cluster, fresh: bool, boot: Boot) -> Outcome:
    from backups.operations import connected
    from provision.artifacts.catalog import release

    started = time.monotonic()
    figures: dict[str, Any] = {}
    with connected(cluster) as members, _private_dir() as work:
        kept = choose(members, cluster, fresh=fresh)
        if isinstance(kept, Outcome):
            return kept
        snapshot = _timed(figures, "fetch_s", lambda: fetch(members.transports[kept.member], kept, work))
        figures.update(snapshot=kept.name, member=kept.member, revision=kept.revision)
        live, at_revision, asked = live_keys(cluster, members, kept.revision)
        version = release(cluster.kubernetes.release_version).etcd
        with boot(cluster, work) as host:
            figures.update(scratch_lab=host.lab, boot_s=host.boot_s)
            target = scratch_cluster(host.cluster, cluster)
            _timed(figures, "binaries_s", lambda: install_etcd(target, work))
            from roles.engine.transport import ConnectionPool

            pool = ConnectionPool(target)
            try:
                restored = restore_on(pool.get(host.host), snapshot, version, figures)
            finally:
                pool.close()
    compared = (keycount.exact if at_revision else keycount.contained)(restored, live, kept.revision)
    figures.update(compared.figures, how=compared.how, per_kind=restored.kinds(), live_read_on=asked)
    figures["total_s"] = round(time.monotonic() - started, 3)
    return _outcome(compared, kept, figures)


def _outcome(compared: Comparison, kept: Kept, figures: dict[str, Any]) -> Outcome:
    where = f"{kept.name} (on {kept.member}) restored on scratch host {figures.get('scratch_lab')}"
    timing = (
        f"restore {figures.get('restore_s')} s, etcd up {figures.get('start_s')} s, total {figures.get('total_s')} s"
    )
    return Outcome("pass" if compared.ok else "fail", f"{where}: {compared.detail}; {timing}", figures)
