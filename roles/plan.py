"""The apply, as one ordered list of phases (k0sctl style). Read it top to bottom: that is what `keelson apply` does.

Connect (built into the runner) → Validate hosts → Prepare hosts → Container runtime → PKI → etcd →
load balancer/VIP → first master → other masters → workers → Windows workers → kubeconfig → addons → backups.
Each role contributes its phases; a role not yet built simply has no line here.
"""

from __future__ import annotations

from backups import role as backups
from inventory.model import Cluster
from roles import common, containerd, etcd, loadbalancer, pki, validate
from roles.engine.phase import AnyPhase


def cluster_plan(cluster: Cluster) -> list[AnyPhase]:
    return [
        *validate.phases(cluster),
        *common.phases(cluster),
        *containerd.phases(cluster),
        *pki.phases(cluster),  # etcd CA and certificates: issued on the operator side, uploaded when changed
        *etcd.phases(cluster),  # external etcd with TLS; healthy before anything that needs it
        *loadbalancer.phases(cluster),  # the VIP and the proxy in front of every apiserver
        *backups.phases(cluster),  # last: the agent needs etcd and its client certificate
    ]
