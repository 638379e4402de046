"""Render the load balancer's files for one host. Pure: inventory and the run's node IPs in, text out."""

from __future__ import annotations

import secrets

from inventory.model import Cluster, Host
from roles.engine.nodes import NodeIPs
from roles.loadbalancer.defaults import DEFAULTS, LoadBalancerDefaults
from roles.state import StateDir
from roles.templating import render


def proxy_kind(cluster: Cluster) -> str:
    return "nginx" if cluster.control_plane.load_balancer == "keepalived+nginx" else "haproxy"


def _proxy_conf(template: str, cluster: Cluster, d: LoadBalancerDefaults, nodes: NodeIPs | None) -> str:
    cp = cluster.control_plane
    ips = NodeIPs.of(cluster, nodes)
    return render(
        __file__,
        template,
        d=d,
        vip=cp.vip.ip,
        port=cluster.api_port,
        apiserver_port=cp.apiserver_port,
        backends=[{"name": m.name, "address": ips.ip(m)} for m in cluster.masters],
    )


def haproxy_cfg(cluster: Cluster, d: LoadBalancerDefaults = DEFAULTS, nodes: NodeIPs | None = None) -> str:
    return _proxy_conf("haproxy.cfg.j2", cluster, d, nodes)


def nginx_stream_conf(cluster: Cluster, d: LoadBalancerDefaults = DEFAULTS, nodes: NodeIPs | None = None) -> str:
    return _proxy_conf("nginx-stream.conf.j2", cluster, d, nodes)


def check_script(cluster: Cluster, d: LoadBalancerDefaults = DEFAULTS) -> str:
    return render(__file__, "check-api.sh.j2", d=d, port=cluster.api_port, proxy=proxy_kind(cluster))


def proxy_track_dropin(d: LoadBalancerDefaults = DEFAULTS) -> str:
    return render(__file__, "proxy-track.conf.j2", d=d, track_dir=d.track_file.rsplit("/", 1)[0])


def keepalived_dropin(d: LoadBalancerDefaults = DEFAULTS) -> str:
    """keepalived's drop-in: the folder of the proxy's track file exists before keepalived reads it."""
    return render(__file__, "keepalived-dropin.conf.j2", track_dir=d.track_file.rsplit("/", 1)[0])


def vrrp_auth(state: StateDir) -> str:
    """The VRRPv2 PASS secret (8 characters is the protocol's limit), made once per cluster, kept in the state."""
    return state.secret("vrrp/auth-pass", lambda: secrets.token_hex(4))


def keepalived_conf(
    cluster: Cluster,
    host: Host,
    interface: str,
    state: StateDir,
    d: LoadBalancerDefaults = DEFAULTS,
    nodes: NodeIPs | None = None,
) -> str:
    holders = cluster.lb_hosts
    index = [h.name for h in holders].index(host.name)
    cp = cluster.control_plane
    ips = NodeIPs.of(cluster, nodes)
    return render(
        __file__,
        "keepalived.conf.j2",
        d=d,
        host=host.name,
        address=ips.ip(host),
        peers=[ips.ip(h) for h in holders if h.name != host.name],
        interface=interface,
        router_id=cp.vrrp_router_id,
        priority=d.priority_top - d.priority_step * index,
        vip=cp.vip.ip,
        vip_cidr=str(cp.vip),
        auth_pass=vrrp_auth(state) if d.vrrp_version == 2 else "",
    )
