"""Per-master and per-worker steps: the shared PKI and the apiserver's config files on the masters, kubeadm's
configuration on every node, and the join of a node that has not joined (kubeadm init is a custom phase)."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

from inventory.model import Cluster, Host
from roles.control_plane import render
from roles.control_plane.defaults import DEFAULTS
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, Fact, FactValues, FileInfo
from roles.engine.nodes import NodeIPs
from roles.engine.step import FileStep, Step
from roles.etcd.commands import member_client_url
from roles.kubernetes_node.facts import CgroupVersion
from roles.pki import kubernetes as k8s_pki
from roles.state import StateDir

q = shlex.quote
CONNTRACK = CommandOutput("conntrack-writable", "[ -w /proc/sys/net/netfilter/nf_conntrack_max ] && echo yes")
JOINED = {"master": f"{DEFAULTS.manifests_dir}/kube-apiserver.yaml", "worker": DEFAULTS.kubelet_conf}


def node_ip(ctx: HostContext, host: Host) -> str:
    """The run's node IP of `host` (`roles/engine/nodes.py`: internal_address, an IP address, or discovered)."""
    return str(ctx.nodes.ip(host))


def master_ips(ctx: HostContext) -> dict[str, str]:
    return {m.name: node_ip(ctx, m) for m in ctx.cluster.masters}


def etcd_endpoints(cluster: Cluster, nodes: NodeIPs | None = None) -> list[str]:
    return [member_client_url(cluster, h, nodes) for h in cluster.etcd_members]


def apiserver_config_steps(cluster: Cluster) -> list[FileStep]:
    d = DEFAULTS
    steps: list[FileStep] = [
        FileStep(f"{d.authn_dir}/config.yaml", render.authentication_config(), mode=0o600, name="apiserver | authn")
    ]
    if cluster.security.audit:
        steps.append(
            FileStep(f"{d.audit_dir}/policy.yaml", render.audit_policy(), mode=0o600, name="apiserver | audit")
        )
    if cluster.security.encryption_at_rest:
        steps.append(
            FileStep(
                f"{d.encryption_dir}/config.yaml",
                lambda ctx: render.encryption_config(k8s_pki.encryption_key(ctx.state)),
                mode=0o600,
                secret=True,
                name="apiserver | encryption at rest",
            )
        )
    return steps


def files_digest(ctx: HostContext) -> str:
    """sha256 over what the apiserver starts with that keelson decides: every config file it writes for this cluster
    (path and content), and the flags and volumes kubeadm puts in its static pod manifest (switching audit or
    encryption on or off changes those, not only files)."""
    digest = hashlib.sha256()
    for step in apiserver_config_steps(ctx.cluster):
        digest.update(step.path.encode() + b"\0" + hashlib.sha256(step.render(ctx)).digest())
    manifest = [render.apiserver_args(ctx.cluster), [list(astuple(v)) for v in render.apiserver_volumes(ctx.cluster)]]
    digest.update(b"manifest\0" + json.dumps(manifest).encode())
    return digest.hexdigest()


def mark_started(digest: str) -> Command:
    """Record the digest of the files the running apiserver was started with (0600: a digest of secret material)."""
    marker = q(DEFAULTS.apiserver_marker)
    return Command(
        f"(umask 077; mkdir -p {q(DEFAULTS.config_dir)} && printf '%s\\n' {q(digest)} > {marker}.tmp)"
        f" && mv -f {marker}.tmp {marker}",
        description="note the config files this apiserver started with",
    )


def _ca_hash(state: StateDir) -> str:
    pki = k8s_pki.load(state)
    return pki.discovery_hash if pki is not None else "sha256:" + "0" * 64


@dataclass
class KubeadmConfigStep(Step):
    """/etc/kubernetes/keelson/kubeadm-<mode>.yaml for this node (0600: it holds the join token)."""

    mode: render.Mode
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"kubeadm | {self.mode} configuration"

    @property
    def path(self) -> str:
        return config_path(self.mode)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileInfo(self.path), CgroupVersion(), CONNTRACK)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        node = render.NodeValues(
            name=ctx.host.name,
            ip=node_ip(ctx, ctx.host),
            cgroup_v1=facts.get(CgroupVersion()).version == 1,
            conntrack_writable=facts.get(CONNTRACK)[0].strip() == "yes",
            labels=tuple(f"{k}={v}" for k, v in sorted(ctx.host.labels.items())),
        )
        text = render.kubeadm_config(
            ctx.cluster,
            self.mode,
            node,
            token=k8s_pki.bootstrap_token(ctx.state),
            ca_cert_hash=_ca_hash(ctx.state),
            master_ips=master_ips(ctx),
            etcd_endpoints=etcd_endpoints(ctx.cluster, ctx.nodes),
        )
        return FileStep(self.path, text, mode=0o600, secret=True).check(ctx, facts)


def config_path(mode: render.Mode) -> str:
    return f"{DEFAULTS.config_dir}/kubeadm-{mode}.yaml"


@dataclass
class JoinStep(Step):
    """`kubeadm join` on a node keelson has not joined (no marker). A node with kubeadm's files but no marker is an
    interrupted join: `kubeadm reset -f` first, so the join starts clean."""

    kind: str  # "master" | "worker"
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"kubeadm | join ({self.kind})"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileInfo(DEFAULTS.init_marker), FileInfo(DEFAULTS.join_marker), FileInfo(JOINED[self.kind]))

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        if facts.get(FileInfo(DEFAULTS.init_marker)) or facts.get(FileInfo(DEFAULTS.join_marker)):
            return []
        mode: render.Mode = "join-control-plane" if self.kind == "master" else "join-worker"
        out = []
        if facts.get(FileInfo(JOINED[self.kind])) is not None:
            out.append(Command("kubeadm reset -f >/dev/null 2>&1", description="kubeadm reset (an interrupted join)"))
        out.append(
            Command(
                f"kubeadm join --config {q(config_path(mode))} && touch {DEFAULTS.join_marker}",
                description=f"kubeadm join as a {'control-plane node' if self.kind == 'master' else 'worker'}",
            )
        )
        if self.kind == "master":  # its apiserver starts with the files the configuration phase wrote
            out.append(mark_started(files_digest(ctx)))
        return out
