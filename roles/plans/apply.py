"""The apply, as one ordered list of phases (k0sctl style). Read it top to bottom: that is what `keelson apply` does.

Connect and Discover node IPs (built into the runner; discovery only for hosts the inventory gives no node IP,
see roles/engine/discovery.py) → Validate hosts → Prepare hosts → Container runtime → Kubernetes node → PKI → etcd
→ load balancer/VIP → first master → other masters → pod network → workers → Windows workers → addons → backups.
Each role contributes its phases; a role not yet built simply has no line here, and `not_applied_yet` names the
inventory sections it would apply, so that `plan` and `apply` say so (one line, and a `not_applied_yet` event).
"""

from __future__ import annotations

from collections.abc import Sequence

from backups import role as backups
from inventory.errors import KeelsonError
from inventory.model import Cluster
from roles import (
    cni,
    common,
    containerd,
    control_plane,
    etcd,
    kubernetes_node,
    loadbalancer,
    pki,
    validate,
    windows,
    worker,
)
from roles.cni.defaults import DEFAULTS as CNI
from roles.engine.phase import AnyPhase, Plan, matches
from roles.windows.phases import CNIS as WINDOWS_CNIS


def phases(cluster: Cluster) -> list[AnyPhase]:
    return [
        *validate.phases(cluster),
        *common.phases(cluster),
        *containerd.phases(cluster),
        *kubernetes_node.phases(cluster),  # kubeadm, kubelet, kubectl, crictl, CNI plugins; images when air-gapped
        *pki.phases(cluster),  # etcd CA and certificates: issued on the operator side, uploaded when changed
        *etcd.phases(cluster),  # external etcd with TLS; healthy before anything that needs it
        *loadbalancer.phases(cluster),  # the VIP and the proxy in front of every apiserver
        *control_plane.phases(cluster),  # kubeadm init on the first master, the others join one at a time
        *cni.phases(cluster),  # the pod network, applied through the API
        *worker.phases(cluster),  # workers join in parallel; serving certificates; all nodes Ready
        *windows.phases(cluster),  # Windows workers over OpenSSH + PowerShell (flannel's overlay); then Ready
        *backups.phases(cluster),  # last: the agent needs etcd and its client certificate
    ]


ADDONS_BY_PULUMI = "addons (installed by `pulumi up`)"


def not_applied_yet(cluster: Cluster) -> tuple[str, ...]:
    """The inventory sections this inventory sets that this version's apply does not act on (their roles are not
    built): a CNI other than flannel, the addons beyond what kubeadm installs (CoreDNS: the addons are Pulumi
    resources, installed by `pulumi up`, addons/), Windows hosts on a CNI without a Windows side here (roles/windows:
    flannel only)."""
    addons = cluster.addons
    sections = [] if cluster.network.cni in CNI.applied else [f"network.cni ({cluster.network.cni})"]
    if (
        addons.ingress != "none"
        or addons.storage != "none"
        or any((addons.metrics, addons.monitoring, addons.logging, addons.dashboard))
    ):
        sections.append(ADDONS_BY_PULUMI)
    if any(h.os.value == "windows" for h in cluster.hosts) and cluster.network.cni not in WINDOWS_CNIS:
        sections.append("hosts (windows)")
    return tuple(sections)


class CniNotApplied(KeelsonError):
    """The inventory's `network.cni` is one this version renders but does not apply (exit 2, before connecting)."""

    exit_code = 2


def refuse_unapplied_cni(cluster: Cluster, only: Sequence[str] | None = None) -> None:
    """`keelson apply` refuses a CNI it cannot bring up rather than stopping 5 minutes later at "nodes Ready" with a
    cluster that has no pod network. A run whose `--only` leaves out the pod network phase is not refused; `keelson
    plan` never is (it names the CNI as not applied yet and shows its manifests)."""
    cni = cluster.network.cni
    if cni in CNI.applied:
        return
    if only and not any(p.role == "cni" and any(matches(p, n) for n in only) for p in phases(cluster)):
        return
    rendered = (
        f"its manifests are rendered and the apiserver accepts them (`keelson plan -i …` shows them), but {cni}'s "
        "images are not built into keelson's artifact sets and it has never run here"
        if cni in CNI.rendered
        else f"keelson has no manifests for {cni} yet"
    )
    raise CniNotApplied(
        f"network.cni: {cni} is not applied by this version of keelson: {rendered}, so no node would become Ready",
        hint=f"use network.cni: {CNI.applied[0]} (network_policy: true adds kube-router's NetworkPolicy "
        "enforcement); --only can still run the phases before the pod network",
    )


def plan(cluster: Cluster) -> Plan:
    return Plan("apply", phases(cluster), not_applied=not_applied_yet(cluster))
