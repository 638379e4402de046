"""The PKI role's per-host steps: the etcd CA check, the etcd system user, and the certificate uploads.

Uploads are engine FileSteps: compared by sha256 first, written only when they differ; private keys are `secret`
(never shown in a plan or a log). Which file goes where is the contract in `roles/etcd/__init__.py`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from roles.engine.command import Command, sha256_hex
from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, FactValues, FileInfo
from roles.engine.step import CommandStep, FileStep, HostCheck, Step
from roles.pki import kubernetes as k8s_pki
from roles.pki.defaults import DEFAULTS as PKI
from roles.pki.store import (
    APISERVER_ETCD_CLIENT,
    BACKUP_CLIENT,
    CA,
    HEALTHCHECK_CLIENT,
    PEER,
    SERVER,
    PKIError,
    cert_path,
    key_path,
)

q = shlex.quote


class MissingStateFile(PKIError):
    pass


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
    remote = facts.get(FileInfo(PKI.etcd_ca_cert))
    if remote is None:
        return None
    local_name = cert_path(CA, None)
    if not ctx.state.exists(local_name):
        return (
            f"{PKI.etcd_ca_cert} exists (sha256 {remote.sha256[:12]}) but the state dir {ctx.state_dir} has no etcd "
            "CA: keelson will not replace the CA this etcd member trusts"
        )
    local = sha256_hex(ctx.state.read(local_name))
    if local != remote.sha256:
        return (
            f"{PKI.etcd_ca_cert} (sha256 {remote.sha256[:12]}) is not the etcd CA of the state dir ({local[:12]}): "
            "keelson will not replace the CA this etcd member trusts"
        )
    return None


def ca_check() -> HostCheck:
    return HostCheck(
        name="etcd CA on the host is ours",
        needs=(FileInfo(PKI.etcd_ca_cert),),
        problem=_ca_problem,
        hint="restore the cluster's state dir (pki/etcd/ca.crt, ca.key) from a backup; if this host's etcd is "
        "disposable, remove /etc/etcd/pki and the etcd data dir on it first",
    )


def etcd_user() -> CommandStep:
    """etcd's keys belong to the `etcd` system user (Debian's etcd-server package makes the same user later)."""
    return CommandStep(
        name="etcd system user",
        needs=(CommandOutput("etcd-user", f"id -u {PKI.etcd_user}"),),
        satisfied=lambda ctx, facts: facts.get(CommandOutput("etcd-user", f"id -u {PKI.etcd_user}"))[1] == 0,
        run=lambda ctx, facts: [
            Command(
                f"useradd --system --user-group --home-dir /var/lib/etcd --no-create-home "
                f"--shell /usr/sbin/nologin {PKI.etcd_user}"
            )
        ],
    )


def member_files() -> list[Step]:
    user = PKI.etcd_user
    return [
        etcd_user(),
        _cert(PKI.etcd_ca_cert, CA, per_host=False),
        _cert(PKI.etcd_server_cert, SERVER, per_host=True),
        _key(PKI.etcd_server_key, SERVER, per_host=True, owner=user),
        _cert(PKI.etcd_peer_cert, PEER, per_host=True),
        _key(PKI.etcd_peer_key, PEER, per_host=True, owner=user),
        _cert(PKI.healthcheck_cert, HEALTHCHECK_CLIENT, per_host=False),
        _key(PKI.healthcheck_key, HEALTHCHECK_CLIENT, per_host=False),
        _cert(PKI.backup_ca, CA, per_host=False),
        _cert(PKI.backup_cert, BACKUP_CLIENT, per_host=False),
        _key(PKI.backup_key, BACKUP_CLIENT, per_host=False),
    ]


def master_files() -> list[Step]:
    return [
        _cert(PKI.kube_etcd_ca, CA, per_host=False),
        _cert(PKI.kube_apiserver_etcd_cert, APISERVER_ETCD_CLIENT, per_host=False),
        _key(PKI.kube_apiserver_etcd_key, APISERVER_ETCD_CLIENT, per_host=False),
    ]


def _kubernetes_ca_problem(ctx: HostContext, facts: FactValues) -> str | None:
    remote = facts.get(FileInfo(PKI.kube_ca_cert))
    if remote is None:
        return None
    local = f"{k8s_pki.CA}.crt"
    if not ctx.state.exists(local):
        return (
            f"{PKI.kube_ca_cert} exists (sha256 {remote.sha256[:12]}) but the state dir {ctx.state_dir} has no "
            "Kubernetes CA: keelson will not replace the CA this cluster trusts"
        )
    if sha256_hex(ctx.state.read(local)) != remote.sha256:
        return f"{PKI.kube_ca_cert} is not the Kubernetes CA of the state dir: keelson will not replace it"
    return None


def kubernetes_files() -> list[Step]:
    d, k = PKI.kube_pki_dir, k8s_pki

    def state(name: str) -> Callable[[HostContext], bytes]:
        return from_state(lambda ctx: name)

    return [
        HostCheck(
            "Kubernetes CA on the host is ours",
            (FileInfo(PKI.kube_ca_cert),),
            _kubernetes_ca_problem,
            hint="restore the cluster's state dir (pki/kubernetes/) from a backup",
        ),
        StateFileStep(f"{d}/ca.crt", state(f"{k.CA}.crt")),
        StateFileStep(f"{d}/ca.key", state(f"{k.CA}.key"), mode=0o600, secret=True),
        StateFileStep(f"{d}/front-proxy-ca.crt", state(f"{k.FRONT_PROXY_CA}.crt")),
        StateFileStep(f"{d}/front-proxy-ca.key", state(f"{k.FRONT_PROXY_CA}.key"), mode=0o600, secret=True),
        StateFileStep(f"{d}/sa.key", state(k.SA_KEY), mode=0o600, secret=True),
        StateFileStep(f"{d}/sa.pub", state(k.SA_PUB)),
    ]
