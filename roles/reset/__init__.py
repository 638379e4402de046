"""Role `reset`: undo what keelson and kubeadm did on a host, so that it can be joined or applied again from scratch.

On a node: `kubeadm reset -f` (the kubelet's containers, its files under /etc/kubernetes and /var/lib/kubelet), the
kubelet stopped and disabled, the CNI's config and links, keelson's join/init markers. On an etcd member: etcd stopped
and disabled, its data dir and config removed. On a load balancer: keepalived and haproxy stopped and disabled (the
VIP leaves the host). Packages, binaries and the rest of the host stay: `keelson apply` or `keelson join` converges
from there. Each step reads what is left first and yields nothing on a host that is already clean, so a rerun changes
nothing.
The plans that use it are `roles/plans/reset.py` (`keelson reset`) and `roles/plans/remove.py` (`keelson remove`).
"""

from __future__ import annotations

from roles.reset.phases import phases

__all__ = ["phases"]
