"""The load balancer on its hosts: haproxy (or nginx stream) in front of every apiserver, keepalived for the VIP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inventory.model import Cluster
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.errors import HostCheckFailed
from roles.engine.facts import CommandOutput, Fact, FactValues, FileInfo, ServiceState
from roles.engine.step import CommandStep, FileStep, PackagesStep, ServiceStep, Step
from roles.loadbalancer import render
from roles.loadbalancer.defaults import DEFAULTS
from roles.loadbalancer.facts import interface_fact, parse_interface


def vip_interface(ctx: HostContext, facts: FactValues) -> str:
    """The inventory's interface, else the NIC carrying this host's address (or the VIP, or the route to it)."""
    if ctx.cluster.control_plane.interface:
        return ctx.cluster.control_plane.interface
    out, _ = facts.get(interface_fact(ctx))
    interface = parse_interface(out)
    if interface is None:
        raise HostCheckFailed(
            ctx.host.name,
            f"cannot tell which interface should carry the VIP {ctx.cluster.control_plane.vip.ip}: no interface has "
            f"{ctx.nodes.ip(ctx.host)} or the VIP, and there is no route to the VIP except through lo",
            hint="set control_plane.interface in the inventory",
        )
    return interface


@dataclass
class KeepalivedConfStep(Step):
    """keepalived.conf needs a fact (the VIP's interface), so it renders at check time."""

    name: str = "keepalived | config"
    notifies: tuple[str, ...] = ("reload keepalived",)

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileInfo(DEFAULTS.keepalived_conf), interface_fact(ctx))

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        text = render.keepalived_conf(ctx.cluster, ctx.host, vip_interface(ctx, facts), ctx.state, nodes=ctx.nodes)
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
    """haproxy, or nginx's stream module: the same steps, with nginx's default site out of the way."""
    d = DEFAULTS
    if render.proxy_kind(cluster) == "nginx":
        unit, packages, what = "nginx", ("nginx", "libnginx-mod-stream"), "stream config"
        config = FileStep(
            d.nginx_stream_conf,
            lambda ctx: render.nginx_stream_conf(ctx.cluster, nodes=ctx.nodes),
            validate=NGINX_STREAM_CHECK,
        )
        no_default = b"# keelson: no default site on API load balancers\n"
        extra: list[Step] = [FileStep("/etc/nginx/sites-enabled/default", no_default, name="nginx | no default site")]
    else:
        unit, packages, what = "haproxy", ("haproxy", "socat"), "config"
        config = FileStep(
            d.haproxy_cfg, lambda ctx: render.haproxy_cfg(ctx.cluster, nodes=ctx.nodes), validate="haproxy -c -q -f %s"
        )
        extra = []
    config.notifies, config.name = (f"reload {unit}",), f"{unit} | {what}"
    return [
        PackagesStep(packages, name=f"{unit} | packages"),
        FileStep(
            f"/etc/systemd/system/{unit}.service.d/keelson-track.conf",
            render.proxy_track_dropin(),
            daemon_reload=True,
            name=f"{unit} | tell keepalived when it stops",
        ),
        config,
        *extra,
        ServiceStep(unit, name=f"{unit} | service"),
        _track_file_step(unit),
    ]


def steps(cluster: Cluster) -> list[Step]:
    return [
        *_proxy_steps(cluster),
        PackagesStep(("keepalived",), name="keepalived | package"),
        FileStep(
            "/etc/systemd/system/keepalived.service.d/keelson.conf",
            render.keepalived_dropin(),
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
