"""The restore's phases (CustomPhases: a restore is a procedure, not a state to converge to). Their order is the
restore plan, `roles/plans/restore.py`; what each step does and why it is safe to rerun: `backups/restore.py`.

Each phase's `dry_run` lists what its `run` would do on every member (reading only: the etcd version, the leader);
the runner shows both the same way, with the same progress and `--json` events as `keelson apply`. The phases of
the Kubernetes side (the control plane stopped and started, the kubelets, the cluster's answer) are the control
plane's: `roles/control_plane/restore_phases.py`, built on `RestorePhase` here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from backups import agent
from backups.restore import RestoreSpec
from inventory.model import Cluster, Host
from roles.engine.command import Command
from roles.engine.context import RunContext
from roles.engine.errors import CommandFailed
from roles.engine.nodes import NodeIPs
from roles.engine.parallel import each_host
from roles.engine.phase import CustomPhase, HostOutcome
from roles.engine.transport import ConnectionPool, Transport
from roles.etcd.bootstrap import start_command
from roles.etcd.commands import EtcdVersion
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.etcd.facts import EtcdVersionFact
from roles.etcd.health import asker, leader, wait_healthy


@dataclass
class RestoreRun:
    """What the phases of one restore share: the spec, and what staging found (the snapshot's revision)."""

    spec: RestoreSpec
    revision: int | None = None


def run_checked(transport: Transport, script: str, what: str, *, timeout: float = 120) -> str:
    result = transport.run(script, timeout=timeout)
    if result.rc != 0:
        detail = (result.stderr or result.stdout).strip()[-400:]
        raise CommandFailed(transport.host, f"{what} failed (exit {result.rc}): {detail}")
    return result.stdout


def etcd_version(transport: Transport) -> EtcdVersion:
    fact = EtcdVersionFact()
    result = transport.run(fact.command(), timeout=30)
    version = fact.parse(result.stdout, result.rc)
    if version is None:
        raise CommandFailed(transport.host, f"cannot read the etcd version (`{fact.command()}`)")
    return version


class RestorePhase(CustomPhase):
    def __init__(self, run: RestoreRun) -> None:
        self.restore = run

    @property
    def spec(self) -> RestoreSpec:
        return self.restore.spec

    def hosts(self, cluster: Cluster) -> list[Host]:
        return list(cluster.etcd_members)


class StageSnapshot(RestorePhase):
    """Upload unless the same bytes are there; sha256 compared on the member; `snapshot status` run there."""

    title = "restore | Stage and check the snapshot on every member"

    def _commands(self, version: EtcdVersion) -> list[Command]:
        snap = self.spec.snapshot
        upload = Command(
            f": upload {snap.name}",
            description=f"upload {snap.name} to {self.spec.staged_gz} (mode 0600, sha256 {snap.file_sha256[:12]}; "
            "skipped when the same bytes are there)",
            summary_only=True,
        )
        return [upload, Command(self.spec.stage_script(version))]

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return {h.name: self._commands(etcd_version(pool.get(h))) for h in self.hosts(rc.cluster)}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        spec, statuses = self.spec, {}

        def stage(host: Host) -> HostOutcome:
            transport = pool.get(host)
            version = etcd_version(transport)
            present = run_checked(transport, spec.staged_sha256_script(), "creating the staging folder").strip()
            if present != spec.snapshot.file_sha256:  # streamed by SFTP (snapshots can be large), then put in place
                name = f"{spec.restore_id}.db.gz"
                folder = shlex.quote(transport.send_files([(spec.snapshot.path, name)]))
                place = f"install -m 0600 -o root -g root {folder}/{name} {spec.staged_gz} && rm -f {folder}/{name}"
                run_checked(transport, place, "placing the uploaded snapshot")
            out = run_checked(transport, spec.stage_script(version), "checking the staged snapshot", timeout=300)
            try:
                status = agent.parse_snapshot_status(out)
            except agent.SnapshotInvalid as exc:
                raise CommandFailed(host.name, str(exc)) from None
            if spec.snapshot.revision is not None and status.revision != spec.snapshot.revision:
                raise CommandFailed(
                    host.name,
                    f"snapshot status says revision {status.revision}, its name says {spec.snapshot.revision}",
                )
            statuses[host.name] = status
            commands = self._commands(version)
            return HostOutcome(changed=present != spec.snapshot.file_sha256, commands=tuple(commands))

        outcomes = each_host(self.hosts(rc.cluster), stage, workers=rc.concurrency)
        if statuses:
            self.restore.revision = next(iter(statuses.values())).revision
        return outcomes


class StopEtcd(RestorePhase):
    """Followers first, then the leader: a leader stopped together with its followers tries to hand leadership to
    one that is going away and waits out the request timeout (~7 s measured); alone, it stops at once."""

    title = "restore | Stop etcd (followers first, then the leader)"

    def _order(self, cluster: Cluster, pool: ConnectionPool, nodes: NodeIPs) -> tuple[list[Host], list[Host]]:
        lead = leader(cluster, pool.get(asker(cluster)), nodes)
        followers = [h for h in cluster.etcd_members if lead is None or h.name != lead.name]
        return followers, [lead] if lead is not None else []

    @staticmethod
    def _command(last: bool) -> Command:
        script = f"systemctl stop {ETCD.unit_name}"
        return Command(script, description=f"{script} ({'the leader, last' if last else 'first'})", summary_only=True)

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        followers, lead = self._order(rc.cluster, pool, rc.nodes)
        return {h.name: [self._command(h in lead)] for h in followers + lead}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        followers, lead = self._order(rc.cluster, pool, rc.nodes)

        def stop(host: Host, last: bool) -> HostOutcome:
            command = self._command(last)
            run_checked(pool.get(host), command.script, "stopping etcd")
            return HostOutcome(changed=True, commands=(command,))

        outcomes = each_host(followers, lambda h: stop(h, last=False), workers=rc.concurrency)
        if any(o.error for o in outcomes.values()):
            return outcomes | {h.name: HostOutcome(error="not stopped: a follower failed to stop") for h in lead}
        return outcomes | each_host(lead, lambda h: stop(h, last=True))


class RestoreData(RestorePhase):
    title = "restore | Restore the data dirs (the old ones kept)"

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return {
            h.name: [Command(self.spec.restore_script(h, etcd_version(pool.get(h)), rc.nodes))]
            for h in self.hosts(rc.cluster)
        }

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        def restore(host: Host) -> HostOutcome:
            transport = pool.get(host)
            script = self.spec.restore_script(host, etcd_version(transport), rc.nodes)
            out = run_checked(transport, script, "etcd snapshot restore")
            return HostOutcome(changed="already-restored" not in out, commands=(Command(script),))

        return each_host(self.hosts(rc.cluster), restore, workers=rc.concurrency)


class StartEtcd(RestorePhase):
    """All members at once (each one's start waits for a quorum of peers), then the one health gate of the etcd
    role, asked until every member is healthy at the snapshot's revision under one leader."""

    title = "restore | Start etcd, healthy at the snapshot's revision"

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return {h.name: [start_command()] for h in self.hosts(rc.cluster)}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        command = start_command()

        def start(host: Host) -> HostOutcome:
            run_checked(pool.get(host), command.script, "starting etcd", timeout=60)
            return HostOutcome(changed=True, commands=(command,))

        outcomes = each_host(self.hosts(rc.cluster), start, workers=rc.concurrency)
        if not any(o.error for o in outcomes.values()):
            asked = pool.get(asker(rc.cluster))
            wait_healthy(rc.cluster, asked, nodes=rc.nodes, min_revision=self.restore.revision or 0)
        return outcomes


class RemoveStaged(RestorePhase):
    title = "restore | Remove the staged snapshot"

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return {h.name: [Command(self.spec.cleanup_script())] for h in self.hosts(rc.cluster)}

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        command = Command(self.spec.cleanup_script())

        def remove(host: Host) -> HostOutcome:
            run_checked(pool.get(host), command.script, "removing the staged snapshot")
            return HostOutcome(changed=True, commands=(command,))

        return each_host(self.hosts(rc.cluster), remove, workers=rc.concurrency)
