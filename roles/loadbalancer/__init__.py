"""Role `loadbalancer`: the cluster's API endpoint, a VIP held by keepalived in front of haproxy (or nginx).

Runs on the dedicated `lb` hosts, else on the masters. `cluster.api_endpoint` (VIP:port) is what kubeadm's
--control-plane-endpoint and every kubeconfig use.
"""

from __future__ import annotations

from roles.loadbalancer.phases import phases

__all__ = ["phases"]
