"""The "Reset | …" phases, in order: the node first (its static pods and the kubelet stop), then the load balancer
(the VIP leaves the host), the backup timer, and etcd last."""

from __future__ import annotations

from inventory.model import OS, Cluster, Host
from roles.engine.phase import Phase, of_role
from roles.reset.steps import backups_step, etcd_step, lb_step, node_step


def node_hosts(cluster: Cluster) -> list[Host]:
    return [h for h in cluster.hosts if h.os is OS.LINUX and (h in cluster.masters or h in cluster.workers)]


LOAD_BALANCER = "Reset | Load balancer (keepalived, proxy)"


def phases(cluster: Cluster) -> list[Phase]:
    return of_role(
        "reset",
        [
            Phase("Reset | Kubernetes node (kubeadm reset, kubelet, CNI)", node_hosts, [node_step()]),
            Phase(LOAD_BALANCER, lambda c: c.lb_hosts, [lb_step()]),
            Phase("Reset | Backup timer", lambda c: c.etcd_members, [backups_step()]),
            Phase("Reset | etcd member (stopped, data and config removed)", lambda c: c.etcd_members, [etcd_step()]),
        ],
    )
