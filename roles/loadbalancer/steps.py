"""The load balancer on its hosts: haproxy (or nginx stream) in front of every apiserver, keepalived for the VIP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inventory.model import Cluster, Host
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.errors import HostCheckFailed
from roles.engine.facts import CommandOutput, Fact, FactValues, FileInfo, ServiceState
from roles.engine.step import CommandStep, FileStep, Handler, PackagesStep, ServiceStep, Step, reload
from roles.loadbalancer import render
from roles.loadbalancer.defaults import DEFAULTS


def interface_fact(cluster: Cluster, host: Host) -> CommandOutput:
    """Three views of where the VIP belongs on this host (read-only): the NIC with the host's own address, the NIC
    holding the VIP right now, and the route to the VIP."""
    vip = cluster.control_plane.vip.ip
    return CommandOutput(
        "vip-interface",
        f"ip -o addr show to {host.address}; echo @@; ip -o addr show to {vip}; echo @@; ip -o route get {vip}",
    )


def parse_interface(out: str) -> str | None:
    """The NIC for keepalived, from `interface_fact`'s output. Never `lo`: on the host holding the VIP the kernel
    routes the VIP through `lo` (a local address), so the route alone would move the VIP off its NIC."""
    own, held, route = [*out.split("@@\n"), "", ""][:3]
    for section in (own, held):  # `2: eth0    inet 10.0.0.11/24 brd … scope global eth0 …`
        for line in section.splitlines():
            words = line.split()
            if len(words) > 1 and words[0].endswith(":") and words[1] != "lo":
                return words[1].split("@")[0]
    words = route.split()  # `10.0.0.10 dev eth0 src 10.0.0.11 uid 0` (`local … dev lo …` on the holder)
    device = words[words.index("dev") + 1] if "dev" in words[:-1] else None
    return device if device != "lo" else None


def vip_interface(ctx: HostContext, facts: FactValues) -> str:
    """The inventory's interface, else the NIC carrying this host's address (or the VIP, or the route to it)."""
    if ctx.cluster.control_plane.interface:
        return ctx.cluster.control_plane.interface
    out, _ = facts.get(interface_fact(ctx.cluster, ctx.host))
    interface = parse_interface(out)
    if interface is None:
        raise HostCheckFailed(
            ctx.host.name,
            f"cannot tell which interface should carry the VIP {ctx.cluster.control_plane.vip.ip}: no interface has "
            f"{ctx.host.address} or the VIP, and there is no route to the VIP except through lo",
            hint="set control_plane.interface in the inventory",
        )
    return interface


@dataclass
class KeepalivedConfStep(Step):
    """keepalived.conf needs a fact (the VIP's interface), so it renders at check time."""

    name: str = "keepalived | config"
    notifies: tuple[str, ...] = ("reload keepalived",)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileInfo(DEFAULTS.keepalived_conf), interface_fact(ctx.cluster, ctx.host))

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        text = render.keepalived_conf(ctx.cluster, ctx.host, vip_interface(ctx, facts), ctx.state)
        step = FileStep(DEFAULTS.keepalived_conf, text, mode=0o640, validate="keepalived -t -f %s")
        return step.check(ctx, facts)


def _track_file_step(unit: str) -> Step:
    """A proxy already running before keelson installed its drop-in never wrote the track file: write it now."""
    current = CommandOutput("proxy-track-file", f"cat {DEFAULTS.track_file}")
    state = ServiceState(unit)

    def satisfied(ctx: HostContext, facts: FactValues) -> bool:
        return facts.get(state).active != "active" or facts.get(current)[0].strip() == "0"

    directory = DEFAULTS.track_file.rsplit("/", 1)[0]
    return CommandStep(
        f"{unit} | track file",
        (current, state),
        satisfied,
        lambda ctx, facts: [Command(f"mkdir -p {directory} && echo 0 > {DEFAULTS.track_file}")],
    )


# `nginx -t` of a candidate stream config alone (%s: the temp file), before it replaces the live one: a throwaway
# main config loading the stream module and including the candidate. The live config is checked again at reload.
NGINX_STREAM_CHECK = (
    f'{{ w=$(mktemp) && echo "include {DEFAULTS.nginx_stream_module}; events {{}} include" %s ";" > "$w" '
    '&& nginx -t -q -c "$w"; r=$?; rm -f "$w"; [ "$r" = 0 ]; }'
)


def _proxy_steps(cluster: Cluster) -> list[Step]:
    d = DEFAULTS
    if render.proxy_kind(cluster) == "nginx":
        return [
            PackagesStep(("nginx", "libnginx-mod-stream"), name="nginx | packages"),
            FileStep(
                "/etc/systemd/system/nginx.service.d/keelson-track.conf",
                render.proxy_track_dropin(),
                daemon_reload=True,
                name="nginx | tell keepalived when it stops",
            ),
            FileStep(
                d.nginx_stream_conf,
                render.nginx_stream_conf(cluster),
                validate=NGINX_STREAM_CHECK,
                notifies=("reload nginx",),
                name="nginx | stream config",
            ),
            FileStep(
                "/etc/nginx/sites-enabled/default",
                b"# keelson: no default site on API load balancers\n",
                name="nginx | no default site",
            ),
            ServiceStep("nginx", name="nginx | service"),
            _track_file_step("nginx"),
        ]
    return [
        PackagesStep(("haproxy", "socat"), name="haproxy | packages"),
        FileStep(
            "/etc/systemd/system/haproxy.service.d/keelson-track.conf",
            render.proxy_track_dropin(),
            daemon_reload=True,
            name="haproxy | tell keepalived when it stops",
        ),
        FileStep(
            d.haproxy_cfg,
            render.haproxy_cfg(cluster),
            validate="haproxy -c -q -f %s",
            notifies=("reload haproxy",),
            name="haproxy | config",
        ),
        ServiceStep("haproxy", name="haproxy | service"),
        _track_file_step("haproxy"),
    ]


KEEPALIVED_DROPIN = f"""# managed by keelson: the folder of the proxy's track file exists before keepalived reads it
[Service]
ExecStartPre=/bin/mkdir -p {DEFAULTS.track_file.rsplit("/", 1)[0]}
"""


def steps(cluster: Cluster) -> list[Step]:
    return [
        *_proxy_steps(cluster),
        PackagesStep(("keepalived",), name="keepalived | package"),
        FileStep(
            "/etc/systemd/system/keepalived.service.d/keelson.conf",
            KEEPALIVED_DROPIN,
            daemon_reload=True,
            name="keepalived | track file folder",
        ),
        FileStep(
            DEFAULTS.check_script,
            render.check_script(cluster),
            mode=0o755,
            notifies=("reload keepalived",),
            name="keepalived | API check script",
        ),
        KeepalivedConfStep(),
        ServiceStep("keepalived", name="keepalived | service"),
    ]


def handlers(cluster: Cluster) -> list[Handler]:
    proxy = reload("nginx", check="nginx -t -q") if render.proxy_kind(cluster) == "nginx" else reload("haproxy")
    return [proxy, reload("keepalived")]


def lb_hosts(cluster: Cluster) -> list[Host]:
    return cluster.lb_hosts
