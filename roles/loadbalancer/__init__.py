"""Role `loadbalancer`: the cluster's API endpoint, a VIP held by keepalived in front of haproxy (or nginx).

Runs on the dedicated `lb` hosts, else on the masters. `cluster.api_endpoint` (VIP:port) is what kubeadm's
--control-plane-endpoint and every kubeconfig use.
"""

from __future__ import annotations

from inventory.model import Cluster
from roles.engine.phase import Phase
from roles.loadbalancer.steps import handlers, lb_hosts, steps


def phases(cluster: Cluster) -> list[Phase]:
    if cluster.control_plane.load_balancer == "external":
        return []
    return [Phase("Load balancer", lb_hosts, steps(cluster), handlers=handlers(cluster))]
