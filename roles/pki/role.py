"""The "PKI | …" phases: check the hosts trust our CA, issue certificates on the operator side, upload them.

Uploads are engine FileSteps: compared by sha256 first, written only when they differ; private keys are `secret`
(never shown in a plan or a log). Which file goes where is the contract in `roles/etcd/__init__.py`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from inventory.model import Cluster, Host
from roles.engine.command import Command, sha256_hex
from roles.engine.context import HostContext, RunContext
from roles.engine.facts import CommandOutput, FactValues, FileInfo
from roles.engine.phase import AnyPhase, CustomPhase, HostOutcome, Phase
from roles.engine.step import CommandStep, FileStep, HostCheck, Step
from roles.engine.transport import ConnectionPool
from roles.etcd import defaults as etcd
from roles.pki.store import (
    APISERVER_ETCD_CLIENT,
    BACKUP_CLIENT,
    CA,
    HEALTHCHECK_CLIENT,
    PEER,
    SERVER,
    PKIError,
    PKIReport,
    cert_path,
    ensure_etcd_pki,
    key_path,
    plan_etcd_pki,
)
from roles.state import StateDir

q = shlex.quote


class MissingStateFile(PKIError):
    pass


def etcd_members(cluster: Cluster) -> list[Host]:
    return cluster.etcd_members


def masters(cluster: Cluster) -> list[Host]:
    return cluster.masters


def _members_and_masters(cluster: Cluster) -> list[Host]:
    seen = {h.name: h for h in cluster.etcd_members}
    for h in cluster.masters:
        seen.setdefault(h.name, h)
    return list(seen.values())


def from_state(relative: Callable[[HostContext], str]) -> Callable[[HostContext], bytes]:
    def read(ctx: HostContext) -> bytes:
        name = relative(ctx)
        if not ctx.state.exists(name):
            raise MissingStateFile(f"{name} is not in the state dir {ctx.state_dir}", hint="run the PKI phases first")
        return ctx.state.read(name)

    return read


@dataclass
class StateFileStep(FileStep):
    """A FileStep whose content is a file of the operator-side state dir. In a dry run of a fresh cluster the file
    is not issued yet: the plan then shows the write, and the command (never run by an apply, where the PKI phase
    issues it first) fails loudly instead of uploading anything else."""

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        try:
            return super().check(ctx, facts)
        except MissingStateFile as exc:
            message = f"keelson: {self.path}: {exc.message}"
            return [
                Command(
                    f"echo {q(message)} >&2; exit 1",
                    description=f"write {self.path} (issued by the PKI phase)",
                    summary_only=True,
                )
            ]


def _cert(path: str, name: str, per_host: bool) -> StateFileStep:
    def rel(ctx: HostContext) -> str:
        return cert_path(name, ctx.host.name if per_host else None)

    return StateFileStep(path, from_state(rel), mode=0o644)


def _key(path: str, name: str, per_host: bool, owner: str = "root") -> StateFileStep:
    def rel(ctx: HostContext) -> str:
        return key_path(name, ctx.host.name if per_host else None)

    return StateFileStep(path, from_state(rel), mode=0o600, owner=owner, group=owner, secret=True)


def _ca_problem(ctx: HostContext, facts: FactValues) -> str | None:
    remote = facts.get(FileInfo(etcd.CA_CERT))
    if remote is None:
        return None
    local_name = cert_path(CA, None)
    if not ctx.state.exists(local_name):
        return (
            f"{etcd.CA_CERT} exists (sha256 {remote.sha256[:12]}) but the state dir {ctx.state_dir} has no etcd CA: "
            "keelson will not replace the CA this etcd member trusts"
        )
    local = sha256_hex(ctx.state.read(local_name))
    if local != remote.sha256:
        return (
            f"{etcd.CA_CERT} (sha256 {remote.sha256[:12]}) is not the etcd CA of the state dir ({local[:12]}): "
            "keelson will not replace the CA this etcd member trusts"
        )
    return None


def ca_check() -> HostCheck:
    return HostCheck(
        name="etcd CA on the host is ours",
        needs=(FileInfo(etcd.CA_CERT),),
        problem=_ca_problem,
        hint="restore the cluster's state dir (pki/etcd/ca.crt, ca.key) from a backup; if this host's etcd is "
        "disposable, remove /etc/etcd/pki and the etcd data dir on it first",
    )


def etcd_user() -> CommandStep:
    """etcd's keys belong to the `etcd` system user (Debian's etcd-server package makes the same user later)."""
    return CommandStep(
        name="etcd system user",
        needs=(CommandOutput("etcd-user", f"id -u {etcd.ETCD_USER}"),),
        satisfied=lambda ctx, facts: facts.get(CommandOutput("etcd-user", f"id -u {etcd.ETCD_USER}"))[1] == 0,
        run=lambda ctx, facts: [
            Command(
                f"useradd --system --user-group --home-dir /var/lib/etcd --no-create-home "
                f"--shell /usr/sbin/nologin {etcd.ETCD_USER}"
            )
        ],
    )


def member_files() -> list[Step]:
    user = etcd.ETCD_USER
    return [
        etcd_user(),
        _cert(etcd.CA_CERT, CA, per_host=False),
        _cert(etcd.SERVER_CERT, SERVER, per_host=True),
        _key(etcd.SERVER_KEY, SERVER, per_host=True, owner=user),
        _cert(etcd.PEER_CERT, PEER, per_host=True),
        _key(etcd.PEER_KEY, PEER, per_host=True, owner=user),
        _cert(etcd.HEALTHCHECK_CERT, HEALTHCHECK_CLIENT, per_host=False),
        _key(etcd.HEALTHCHECK_KEY, HEALTHCHECK_CLIENT, per_host=False),
        _cert(etcd.BACKUP_CA, CA, per_host=False),
        _cert(etcd.BACKUP_CERT, BACKUP_CLIENT, per_host=False),
        _key(etcd.BACKUP_KEY, BACKUP_CLIENT, per_host=False),
    ]


def master_files() -> list[Step]:
    return [
        _cert(etcd.KUBE_ETCD_CA, CA, per_host=False),
        _cert(etcd.KUBE_APISERVER_ETCD_CERT, APISERVER_ETCD_CLIENT, per_host=False),
        _key(etcd.KUBE_APISERVER_ETCD_KEY, APISERVER_ETCD_CLIENT, per_host=False),
    ]


class IssueEtcdCertificates(CustomPhase):
    """Operator side: make the CA once and (re-)issue what no longer fits the inventory. Touches no host."""

    title = "PKI | Issue etcd certificates (operator side)"

    def hosts(self, cluster: Cluster) -> list[Host]:
        return _members_and_masters(cluster)

    @staticmethod
    def _per_host(cluster: Cluster, report: PKIReport) -> dict[str, list[Command]]:
        out: dict[str, list[Command]] = {}
        shared = [f"{ident} ({why})" for ident, why in report.issued.items() if "/" not in ident]
        if report.ca_created:
            shared.insert(0, "etcd CA (new)")
        for host in _members_and_masters(cluster):
            own = [f"{ident} ({why})" for ident, why in report.issued.items() if ident.startswith(f"{host.name}/")]
            what = own + shared
            if what:
                out[host.name] = [
                    Command(":", description="operator side: issue " + ", ".join(what), summary_only=True)
                ]
        return out

    def dry_run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, list[Command]]:
        return self._per_host(rc.cluster, plan_etcd_pki(rc.cluster, StateDir(rc.state_dir)))

    def run(self, rc: RunContext, pool: ConnectionPool) -> dict[str, HostOutcome]:
        planned = self._per_host(rc.cluster, ensure_etcd_pki(rc.cluster, StateDir(rc.state_dir)))
        return {
            h.name: HostOutcome(changed=h.name in planned, commands=tuple(planned.get(h.name, ())))
            for h in self.hosts(rc.cluster)
        }


def phases(cluster: Cluster) -> list[AnyPhase]:
    return [
        Phase("PKI | Hosts trust our etcd CA", hosts=etcd_members, steps=[ca_check()]),
        IssueEtcdCertificates(),
        Phase("PKI | Upload etcd certificates", hosts=etcd_members, steps=member_files()),
        Phase("PKI | Upload apiserver etcd client certificate", hosts=masters, steps=master_files()),
    ]
