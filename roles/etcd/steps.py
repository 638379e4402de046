"""Per-member steps of the etcd role: packages, config, unit, data dir, and the quorum-aware restart on change."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inventory.model import Cluster, Host
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, Fact, FactValues, FileText, PackagesInstalled, ServiceState
from roles.engine.step import CommandStep, FileStep, HostCheck, ServiceStep, Step
from roles.etcd import defaults
from roles.etcd.commands import (
    HEALTHCHECK_TLS,
    client_endpoints,
    endpoint_health_cmd,
    local_client_url,
    snapshot_save_cmd,
)
from roles.etcd.facts import EtcdVersionFact
from roles.etcd.render import render_config, render_unit
from roles.pki.store import CA, PEER, SERVER, cert_path, key_path
from roles.state import StateDir

q = shlex.quote


def desired_digest(cluster: Cluster, host: Host, state: StateDir) -> str | None:
    """sha256 over everything etcd reads at start (config, unit, CA, server and peer pairs); None before the PKI
    phase issued them (a dry run of a fresh cluster)."""
    parts = [render_config(cluster, host), render_unit(cluster)]
    for name in (cert_path(CA, None), cert_path(SERVER, host.name), key_path(SERVER, host.name),
                 cert_path(PEER, host.name), key_path(PEER, host.name)):  # fmt: skip
        if not state.exists(name):
            return None
        parts.append(state.read(name))
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def mark_applied(digest: str) -> Command:
    marker = defaults.APPLIED_MARKER
    return Command(f"printf '%s\\n' {q(digest)} > {q(marker)}.tmp && mv -f {q(marker)}.tmp {q(marker)}")


@dataclass
class EtcdPackages(Step):
    """etcd-server and etcd-client installed, without letting the package start Debian's own etcd (a
    temporary policy-rc.d denies service starts during the install; an existing one is left alone)."""

    name: str = "packages | etcd-server etcd-client"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (PackagesInstalled(defaults.PACKAGES),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        missing = [p for p in defaults.PACKAGES if p not in facts.get(PackagesInstalled(defaults.PACKAGES))]
        if not missing:
            return []
        policy = "/usr/sbin/policy-rc.d"
        script = (
            f"created=; if [ ! -e {policy} ]; then printf '#!/bin/sh\\nexit 101\\n' > {policy}; "
            f"chmod 0755 {policy}; created=1; fi; "
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
            f'{shlex.join(missing)}; rc=$?; [ -n "$created" ] && rm -f {policy}; exit $rc'
        )
        return [Command(script, description=f"apt-get install {' '.join(missing)} (service start held back)")]


def _version_problem(ctx: HostContext, facts: FactValues) -> str | None:
    if "etcd-server" not in facts.get(PackagesInstalled(defaults.PACKAGES)):
        return None  # a dry run before "etcd | Packages" installed it; an apply gathers facts again after that
    version = facts.get(EtcdVersionFact())
    if version is None:
        return f"`{defaults.ETCD_BINARY} --version` did not print an etcd version"
    if (version.major, version.minor) < defaults.MIN_VERSION:
        return f"etcd {version} is too old: keelson needs {'.'.join(map(str, defaults.MIN_VERSION))} or newer"
    return None


def version_check() -> HostCheck:
    return HostCheck(
        name="etcd version",
        needs=(EtcdVersionFact(), PackagesInstalled(defaults.PACKAGES)),
        problem=_version_problem,
        hint="install etcd-server 3.4+ (Debian bookworm has 3.4.23) or an upstream 3.5/3.6 build at /usr/bin/etcd",
    )


def data_dir_step(cluster: Cluster) -> CommandStep:
    path = cluster.etcd.data_dir
    fact = CommandOutput("etcd-data-dir", f"stat -c '%U %G %a' {q(path)}")
    want = f"{defaults.ETCD_USER} {defaults.ETCD_USER} 700"
    return CommandStep(
        name=f"etcd data dir {path}",
        needs=(fact,),
        satisfied=lambda ctx, facts: facts.get(fact)[0].strip() == want,
        run=lambda ctx, facts: [
            Command(f"install -d -o {defaults.ETCD_USER} -g {defaults.ETCD_USER} -m 0700 {q(path)}")
        ],
    )


def configure_steps(cluster: Cluster) -> list[Step]:
    return [
        version_check(),
        data_dir_step(cluster),
        FileStep(defaults.CONFIG_FILE, lambda ctx: render_config(ctx.cluster, ctx.host), mode=0o644),
        FileStep(defaults.UNIT_FILE, lambda ctx: render_unit(ctx.cluster), mode=0o644, daemon_reload=True),
        ServiceStep(defaults.UNIT_NAME, running=False, enabled=True),
    ]


@dataclass
class RestartOnChange(Step):
    """Restart a running member whose config, unit or certificates changed since it last started (the marker
    holds the digest it started with). Quorum-aware: its phase is serial with a health gate after each member,
    and the command itself refuses to restart unless the whole cluster is healthy right now; a snapshot is taken
    first. A member that is not running is the bootstrap phase's business, not a restart."""

    name: str = "etcd | restart on change"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileText(defaults.APPLIED_MARKER), ServiceState(defaults.UNIT_NAME))

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        if facts.get(ServiceState(defaults.UNIT_NAME)).active not in ("active", "activating"):
            return []
        desired = desired_digest(ctx.cluster, ctx.host, ctx.state)
        applied = (facts.get(FileText(defaults.APPLIED_MARKER)) or "").strip()
        if desired is None or applied == desired:
            return []
        cluster = ctx.cluster
        health = endpoint_health_cmd(endpoints=client_endpoints(cluster), tls=HEALTHCHECK_TLS)
        snapshot = snapshot_save_cmd(
            defaults.PRE_RESTART_SNAPSHOT, endpoint=local_client_url(cluster), tls=HEALTHCHECK_TLS
        )
        return [
            Command(
                f"{health} >/dev/null || {{ echo 'etcd cluster not healthy: refusing to restart "
                f"{ctx.host.name} (quorum)' >&2; exit 75; }}",
                description="etcd | whole cluster healthy before restarting this member",
            ),
            Command(
                f"install -d -m 0700 {q(defaults.PRE_RESTART_SNAPSHOT.rsplit('/', 1)[0])} && {snapshot} >/dev/null"
                f" && chmod 0600 {q(defaults.PRE_RESTART_SNAPSHOT)}",
                description=f"etcd | snapshot to {defaults.PRE_RESTART_SNAPSHOT} before the restart",
            ),
            Command(f"systemctl restart {q(defaults.UNIT_NAME)}", description="etcd | restart this member"),
            mark_applied(desired),
        ]
