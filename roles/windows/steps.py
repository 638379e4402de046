"""A Windows worker's steps: each reads PowerShell facts (facts.py) and yields PowerShell commands (render.py's
scripts) only where the host differs. The steps of each phase are listed by the functions at the bottom."""

from __future__ import annotations

import ntpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from roles.control_plane import render as control_plane
from roles.control_plane.steps import _ca_hash, etcd_endpoints, master_ips, node_ip
from roles.engine.command import Command, sha256_hex
from roles.engine.context import HostContext
from roles.engine.errors import HostCheckFailed
from roles.engine.facts import Fact, FactValues
from roles.engine.step import Step
from roles.pki import kubernetes as k8s_pki
from roles.windows import credentials, render
from roles.windows.defaults import DEFAULTS
from roles.windows.facts import FeatureState, FileHashes, FirewallRules, Folders, ScheduledTask, Services, TextFiles

Content = Callable[[HostContext], bytes | str]


def ps(script: str, description: str, *, secret: bool = False) -> Command:
    """A PowerShell command; plans show `description` (the scripts are long and some carry file contents)."""
    return Command(script, description=description, summary_only=True, secret=secret)


@dataclass
class WinFileStep(Step):
    """A file with this content (compared by Get-FileHash first: an equal file is never written). `secret`: readable
    by Administrators and SYSTEM only, and its script reaches the host through stdin. `then`: PowerShell run right
    after a write (a restart), in the same command."""

    path: str
    content: Content
    secret: bool = False
    then: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"file | {self.path}"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileHashes((self.path,)),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        value = self.content(ctx)
        data = value.encode() if isinstance(value, str) else value
        digest = sha256_hex(data)
        if facts.get(FileHashes((self.path,))).get(self.path) == digest:
            return []
        what = "secret, " if self.secret else ""
        return [
            ps(
                render.write_file(self.path, data, secret=self.secret, then=self.then),
                f"write {self.path} ({what}{len(data)} bytes, sha256 {digest[:12]})"
                + ("; restart what reads it" if self.then else ""),
                secret=self.secret,
            )
        ]


@dataclass
class FoldersStep(Step):
    paths: tuple[str, ...]
    name: str = "windows | folders"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (Folders(self.paths),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        missing = [p for p in self.paths if p not in facts.get(Folders(self.paths))]
        return [ps(render.folders(missing), f"create {', '.join(missing)}")] if missing else []


REBOOT_HINT = "reboot the host (Restart-Computer), then run keelson apply again"


@dataclass
class FeatureStep(Step):
    """The Containers feature: installed when available; one a reboot has not finished yet stops the run."""

    feature: str = DEFAULTS.feature
    name: str = "windows | Containers feature"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FeatureState(self.feature),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        state = facts.get(FeatureState(self.feature))
        if state == "Installed":
            return []
        if state == "InstallPending":
            raise HostCheckFailed(ctx.host.name, f"the {self.feature} feature waits for a reboot", hint=REBOOT_HINT)
        if state == "unknown":
            raise HostCheckFailed(
                ctx.host.name,
                f"cannot read the {self.feature} feature (Get-WindowsFeature)",
                hint="Windows workers are Windows Server 2019 or later, reached over OpenSSH as an administrator",
            )
        return [ps(render.feature(self.feature), f"install the {self.feature} feature")]


def feature_gate(ctx: HostContext, transport: Any) -> None:
    """After the Prepare phase: the feature must be in place before containerd can run (a fresh install asks for a
    reboot first)."""
    fact = FeatureState(DEFAULTS.feature)
    state = fact.parse(transport.run(fact.command(), timeout=120).stdout, 0)
    if state != "Installed":
        raise HostCheckFailed(
            ctx.host.name, f"the {DEFAULTS.feature} feature is {state}: Windows finishes it at boot", hint=REBOOT_HINT
        )


@dataclass
class FirewallStep(Step):
    rules: tuple[tuple[str, str, int], ...] = DEFAULTS.firewall_rules
    name: str = "windows | firewall (kubelet, VXLAN)"

    def _names(self) -> tuple[str, ...]:
        return tuple(r[0] for r in self.rules)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FirewallRules(self._names()),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        have = facts.get(FirewallRules(self._names()))
        missing = [r for r in self.rules if r[0] not in have]
        if not missing:
            return []
        return [ps(render.firewall(missing), f"firewall rules {', '.join(r[0] for r in missing)}")]


@dataclass
class ContainerdServiceStep(Step):
    name: str = "windows | containerd service"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (Services(("containerd",)),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        info = facts.get(Services(("containerd",))).get("containerd")
        if info is not None and info.state == "Running" and info.start_mode == "Auto":
            return []
        return [ps(render.containerd_service(), "containerd: registered as a service, started")]


@dataclass
class ServiceStep(Step):
    """A Windows service with this command line, started automatically at boot and restarted when it crashes.
    `start(facts)`: whether it must run now (the kubelet: once the node joined; kubeadm starts it the first time)."""

    service: str
    command: Callable[[HostContext], str]
    description: str
    start: Callable[[FactValues], bool] = field(default=lambda facts: True)
    needs: tuple[Fact[Any], ...] = ()
    depends: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"service | {self.service}"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (Services((self.service,)), *self.needs)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        info = facts.get(Services((self.service,))).get(self.service)
        command = self.command(ctx)
        start = self.start(facts)
        if info is None or info.path != command or info.start_mode != "Auto":
            script = render.service(
                self.service, command, description=self.description, depends=self.depends, start=start
            )
            return [ps(script, f"service {self.service}: `{command}`")]
        if start and info.state != "Running":
            return [ps(render.start_service(self.service), f"start {self.service}")]
        return []


def joined(facts: FactValues) -> bool:
    return DEFAULTS.join_marker in facts.get(FileHashes((DEFAULTS.join_marker,)))


def node_labels(ctx: HostContext) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(ctx.host.labels.items())]


def kubelet_service() -> ServiceStep:
    return ServiceStep(
        "kubelet",
        lambda ctx: render.kubelet_command(ctx.host.name, node_ip(ctx, ctx.host), node_labels(ctx)),
        description="the kubelet",
        start=joined,
        needs=(FileHashes((DEFAULTS.join_marker,)),),
        depends="containerd",
    )


def kube_proxy_service() -> ServiceStep:
    return ServiceStep("kube-proxy", lambda ctx: render.kube_proxy_command(), description="kube-proxy (HNS)")


def join_config(ctx: HostContext) -> str:
    node = control_plane.NodeValues(
        name=ctx.host.name,
        ip=node_ip(ctx, ctx.host),
        cgroup_v1=False,  # Windows has no cgroups; read only for kubeadm init's kubelet configuration
        conntrack_writable=True,
        labels=tuple(node_labels(ctx)),
    )
    return render.join_config(
        ctx.cluster,
        node,
        token=k8s_pki.bootstrap_token(ctx.state),
        ca_cert_hash=_ca_hash(ctx.state),
        master_ips=master_ips(ctx),
        etcd_endpoints=etcd_endpoints(ctx.cluster, ctx.nodes),
    )


@dataclass
class JoinStep(Step):
    """`kubeadm.exe join` on a Windows worker keelson has not joined (no marker); kubeadm's kubelet.conf without the
    marker is an interrupted join: `kubeadm reset -f` first."""

    name: str = "kubeadm | join (windows worker)"

    def _fact(self) -> FileHashes:
        return FileHashes((DEFAULTS.join_marker, DEFAULTS.kubelet_conf))

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (self._fact(),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        have = facts.get(self._fact())
        if DEFAULTS.join_marker in have:
            return []
        reset = DEFAULTS.kubelet_conf in have
        return [ps(render.join(reset), "kubeadm join as a Windows worker" + (" (reset first)" if reset else ""))]


@dataclass
class FlanneldTaskStep(Step):
    name: str = "windows | flanneld (scheduled task)"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (ScheduledTask(DEFAULTS.flannel_task),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        task = facts.get(ScheduledTask(DEFAULTS.flannel_task))
        if task is not None and task.arguments == render.task_arguments() and task.state == "Running":
            return []
        return [ps(render.flanneld_task(), f"scheduled task {DEFAULTS.flannel_task}: flanneld, started")]


def source_vip(text: str | None) -> str | None:
    """The sourceVip a kube-proxy config names (pure)."""
    for line in (text or "").splitlines():
        key, _, value = line.strip().partition(":")
        if key == "sourceVip":
            return value.strip().strip('"') or None
    return None


@dataclass
class KubeProxyConfigStep(Step):
    """kube-proxy's configuration: everything from the inventory, except the source VIP, which the host reserves in
    flannel's subnet for this node (known once flanneld has its lease). Compared with what it would be for the VIP
    the file already names; a change restarts kube-proxy."""

    name: str = "windows | kube-proxy configuration (source VIP on the overlay)"

    def _fact(self) -> TextFiles:
        return TextFiles((DEFAULTS.kube_proxy_config,))

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (self._fact(),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        current = facts.get(self._fact()).get(DEFAULTS.kube_proxy_config)
        vip = source_vip(current)
        if vip is not None and current == render.kube_proxy_config(ctx.cluster, ctx.host.name, vip):
            return []
        config = render.kube_proxy_config(ctx.cluster, ctx.host.name, render.VIP_TOKEN)
        script = render.kube_proxy_script(config) + render.restart("service", "kube-proxy")
        return [
            ps(
                script,
                "kube-proxy: reserve its source VIP in the node's pod subnet, write its configuration "
                f"{DEFAULTS.kube_proxy_config}",
            )
        ]


# -- the steps of each phase ---------------------------------------------------------------------------------------


def prepare_steps() -> list[Step]:
    d = DEFAULTS
    paths = (
        d.kube_dir,
        ntpath.dirname(d.flannel_start),
        d.containerd_dir,
        d.cni_bin_dir,
        d.cni_conf_dir,
        d.kubelet_dir,
        d.kubernetes_dir,
        d.keelson_dir,
        d.log_dir,
        d.flannel_dir,
        ntpath.dirname(d.flannel_subnet_file),
        d.kube_proxy_dir,
        d.cni_ipam_dir,
        d.marker_dir,
    )
    return [FeatureStep(), FoldersStep(paths), FirewallStep()]


def containerd_steps(sandbox_image: str) -> list[Step]:
    return [
        WinFileStep(
            DEFAULTS.containerd_config,
            lambda ctx: render.containerd_config(sandbox_image),
            then=render.restart("service", "containerd"),
            name="containerd | config.toml",
        ),
        ContainerdServiceStep(),
    ]


def join_steps() -> list[Step]:
    d = DEFAULTS
    return [
        WinFileStep(d.cni_conf, lambda ctx: render.cni_conf(ctx.cluster), name="cni | flannel (win-overlay)"),
        WinFileStep(d.flannel_net_conf, lambda ctx: render.flannel_net_conf(ctx.cluster), name="flannel | net-conf"),
        kubelet_service(),
        WinFileStep(render.join_config_path(), join_config, secret=True, name="kubeadm | join-worker configuration"),
        JoinStep(),
    ]


def network_steps() -> list[Step]:
    d = DEFAULTS
    return [
        WinFileStep(
            d.flannel_start,
            lambda ctx: render.start_flanneld(ctx.host.name, node_ip(ctx, ctx.host)),
            then=render.restart("task", d.flannel_task),
            name="flannel | start script",
        ),
        FlanneldTaskStep(),
        WinFileStep(
            d.kube_proxy_kubeconfig,
            lambda ctx: credentials.kube_proxy_kubeconfig(ctx.cluster, ctx.host.name, ctx.state),
            secret=True,
            then=render.restart("service", "kube-proxy"),
            name="kube-proxy | kubeconfig (system:kube-proxy)",
        ),
        KubeProxyConfigStep(),
        kube_proxy_service(),
    ]
