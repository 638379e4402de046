"""Defaults of the load-balancer role: timings tuned for sub-second VIP failover (measured in README)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadBalancerDefaults:
    # VRRP: version 3 allows sub-second adverts (v2 is whole seconds). A dead holder is noticed after
    # 3 x advert_int + skew (~0.65 s at 0.2 s); a stopping keepalived hands over at once (priority 0 advert).
    vrrp_version: int = 3
    advert_int: float = 0.2
    priority_top: int = 150
    priority_step: int = 10
    # The API-path check: keepalived 2.2's vrrp_script interval is whole seconds (>= 1).
    check_interval_s: int = 1
    check_fall: int = 2
    check_rise: int = 2
    # haproxy backend health: /healthz over TLS every 0.5 s; 2 failures mark a backend down, 2 successes up.
    health_inter_ms: int = 500
    health_fall: int = 2
    health_rise: int = 2
    stats_socket: str = "/run/haproxy/admin.sock"
    track_file: str = "/run/keelson/haproxy.down"  # 0 while haproxy runs, 1 once it stopped (systemd writes it)
    haproxy_cfg: str = "/etc/haproxy/haproxy.cfg"
    keepalived_conf: str = "/etc/keepalived/keepalived.conf"
    check_script: str = "/etc/keepalived/keelson-check-api.sh"
    nginx_stream_conf: str = "/etc/nginx/modules-enabled/90-keelson-apiserver.conf"
    nginx_stream_module: str = "/usr/share/nginx/modules-available/mod-stream.conf"  # Debian's load_module line


DEFAULTS = LoadBalancerDefaults()
