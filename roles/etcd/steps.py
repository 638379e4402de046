"""Per-member steps of the etcd role: packages, config, unit, data dir, and the quorum-aware restart on change."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inventory.model import Cluster, Host
from roles.engine import fetch
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.errors import HostCheckFailed
from roles.engine.facts import CommandOutput, Fact, FactValues, FileInfo, FileText, ServiceState
from roles.engine.fetch import FetchStep
from roles.engine.nodes import NodeIPs
from roles.engine.step import CommandStep, FileStep, HostCheck, ServiceStep, Step
from roles.etcd.commands import (
    HEALTHCHECK_TLS,
    client_endpoints,
    endpoint_health_cmd,
    local_client_url,
    snapshot_save_cmd,
)
from roles.etcd.defaults import DEFAULTS as ETCD
from roles.etcd.facts import EtcdVersionFact, MemberStateFact
from roles.etcd.render import kept_block, render_config, render_unit
from roles.pki.defaults import DEFAULTS as PKI
from roles.pki.store import CA, PEER, SERVER, cert_path, key_path
from roles.state import StateDir

q = shlex.quote


def desired_digest(
    cluster: Cluster, host: Host, state: StateDir, nodes: NodeIPs | None = None, *, bootstrap: str | None = None
) -> str | None:
    """sha256 over everything etcd reads at start (config, unit, CA, server and peer pairs); None before the PKI
    phase issued them (a dry run of a fresh cluster). `bootstrap`: the config's bootstrap lines (`render_config`)."""
    parts = [render_config(cluster, host, nodes, bootstrap=bootstrap), render_unit(cluster)]
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
    marker = ETCD.applied_marker
    return Command(f"printf '%s\\n' {q(digest)} > {q(marker)}.tmp && mv -f {q(marker)}.tmp {q(marker)}")


def etcd_binaries(cluster: Cluster) -> list[Step]:
    """etcd, etcdctl and etcdutl from the cluster's artifact source (kubernetes.artifacts), sha256-checked, all or
    nothing, nothing fetched when the installed ones match. The release's etcd version is the catalog's."""
    from provision.artifacts.catalog import release
    from provision.artifacts.layout import etcd_member
    from provision.artifacts.sources import Resolver, ca_step

    resolver = Resolver(cluster.kubernetes.artifacts, release(cluster.kubernetes.release_version))
    members = tuple((etcd_member(resolver.release, b), f"{ETCD.bin_dir}/{b}") for b in ETCD.binaries)

    def wanted() -> fetch.Wanted:
        return [], [fetch.ArchiveInstall(resolver.payload(resolver.etcd()), members)]

    step = FetchStep(
        name="etcd | binaries",
        wanted=wanted,
        paths=tuple(dest for _, dest in members),
        markers=(fetch.marker_path(resolver.etcd().path),),
        origin=resolver.origin,
        ca_file=resolver.ca_path,
    )
    ca = ca_step(cluster.kubernetes.artifacts)
    return [*([ca] if ca else []), step]


def _version_problem(ctx: HostContext, facts: FactValues) -> str | None:
    version = facts.get(EtcdVersionFact())
    if version is None:  # not installed: a dry run before "etcd | Binaries" (an apply gathers facts again after it)
        return None
    if (version.major, version.minor) < ETCD.min_version:
        return f"etcd {version} is too old: keelson needs {'.'.join(map(str, ETCD.min_version))} or newer"
    return None


def version_check() -> HostCheck:
    return HostCheck(
        name="etcd version",
        needs=(EtcdVersionFact(),),
        problem=_version_problem,
        hint="install etcd-server 3.4+ (Debian bookworm has 3.4.23) or an upstream 3.5/3.6 build at /usr/bin/etcd",
    )


def data_dir_step(cluster: Cluster) -> CommandStep:
    path = cluster.etcd.data_dir
    fact = CommandOutput("etcd-data-dir", f"stat -c '%U %G %a' {q(path)}")
    want = f"{PKI.etcd_user} {PKI.etcd_user} 700"
    return CommandStep(
        name=f"etcd data dir {path}",
        needs=(fact,),
        satisfied=lambda ctx, facts: facts.get(fact)[0].strip() == want,
        run=lambda ctx, facts: [Command(f"install -d -o {PKI.etcd_user} -g {PKI.etcd_user} -m 0700 {q(path)}")],
    )


def config_facts(ctx: HostContext) -> tuple[Fact[Any], ...]:
    """What the config's bootstrap lines depend on: the config there now, and whether the member has data."""
    return (FileText(ETCD.config_file), MemberStateFact(ctx.cluster.etcd.data_dir))


def bootstrap_lines(ctx: HostContext, facts: FactValues) -> str | None:
    """The bootstrap lines this member keeps (`roles/etcd/render.py`), None for a new cluster's."""
    state = facts.get(MemberStateFact(ctx.cluster.etcd.data_dir))
    if not state.complete:  # read as "no data", a running member would get a new cluster's lines and a restart
        raise HostCheckFailed(ctx.host.name, "could not read the etcd member's state", hint="rerun: nothing changed")
    return kept_block(facts.get(FileText(ETCD.config_file)), has_data=state.has_data)


@dataclass
class EtcdConfigStep(Step):
    """/etc/etcd/etcd.conf.yml: rendered from the inventory, with the bootstrap lines the member keeps (a member with
    data, or one joining, keeps its own; a new cluster's members get every inventory member and `new`). A joining
    member's config is written by the join (`roles/etcd/membership.py`), which knows the running cluster's members."""

    name: str = f"file | {ETCD.config_file}"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileInfo(ETCD.config_file), *config_facts(ctx))

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        text = render_config(ctx.cluster, ctx.host, ctx.nodes, bootstrap=bootstrap_lines(ctx, facts))
        return FileStep(ETCD.config_file, text, mode=0o644).check(ctx, facts)


def configure_steps(cluster: Cluster) -> list[Step]:
    return [
        version_check(),
        data_dir_step(cluster),
        EtcdConfigStep(),
        FileStep(ETCD.unit_file, lambda ctx: render_unit(ctx.cluster), mode=0o644, daemon_reload=True),
        ServiceStep(ETCD.unit_name, running=False, enabled=True),
    ]


@dataclass
class RestartOnChange(Step):
    """Restart a running member whose config, unit or certificates changed since it last started (the marker
    holds the digest it started with). Quorum-aware: its phase is serial with a health gate after each member,
    and the command itself refuses to restart unless the whole cluster is healthy right now; a snapshot is taken
    first. A member that is not running is the bootstrap phase's business, not a restart."""

    name: str = "etcd | restart on change"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileText(ETCD.applied_marker), ServiceState(ETCD.unit_name), *config_facts(ctx))

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        if facts.get(ServiceState(ETCD.unit_name)).active not in ("active", "activating"):
            return []
        bootstrap = bootstrap_lines(ctx, facts)
        desired = desired_digest(ctx.cluster, ctx.host, ctx.state, ctx.nodes, bootstrap=bootstrap)
        applied = (facts.get(FileText(ETCD.applied_marker)) or "").strip()
        if desired is None or applied == desired:
            return []
        cluster = ctx.cluster
        health = endpoint_health_cmd(endpoints=client_endpoints(cluster, ctx.nodes), tls=HEALTHCHECK_TLS)
        snapshot = snapshot_save_cmd(ETCD.pre_restart_snapshot, endpoint=local_client_url(cluster), tls=HEALTHCHECK_TLS)
        return [
            Command(
                f"{health} >/dev/null || {{ echo 'etcd cluster not healthy: refusing to restart "
                f"{ctx.host.name} (quorum)' >&2; exit 75; }}",
                description="etcd | whole cluster healthy before restarting this member",
            ),
            Command(
                f"install -d -m 0700 {q(ETCD.pre_restart_snapshot.rsplit('/', 1)[0])} && {snapshot} >/dev/null"
                f" && chmod 0600 {q(ETCD.pre_restart_snapshot)}",
                description=f"etcd | snapshot to {ETCD.pre_restart_snapshot} before the restart",
            ),
            Command(f"systemctl restart {q(ETCD.unit_name)}", description="etcd | restart this member"),
            mark_applied(desired),
        ]
