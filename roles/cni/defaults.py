"""Defaults of the `cni` role: which `network.cni` values are applied, which are only rendered, and calico's pin."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CalicoCrd:
    plural: str
    kind: str
    namespaced: bool = False


@dataclass(frozen=True)
class CniDefaults:
    applied: tuple[str, ...] = ("flannel",)
    """The `network.cni` values `keelson apply` applies (built, proven in the lab)."""
    rendered: tuple[str, ...] = ("flannel", "calico", "canal")
    """The values `render.manifests` has a manifest for. calico and canal are rendered and accepted by a real
    apiserver (`kubectl apply --dry-run=server`, tests/lab/test_cluster_restore.py), but their images are not in
    keelson's artifact sets and they have never run here: `keelson apply` refuses them (exit 2,
    roles/plans/apply.py)."""
    calico_version: str = "v3.32.1"
    """THE pin of calico (and canal's calico half): every calico image tag in the rendered manifests comes from here.
    Canal's flannel half is the artifact set's flannel (the Release's `flannel_image`)."""
    calico_registry: str = "quay.io/calico"
    calico_crds: tuple[CalicoCrd, ...] = (
        CalicoCrd("bgpconfigurations", "BGPConfiguration"),
        CalicoCrd("bgpfilters", "BGPFilter"),
        CalicoCrd("bgppeers", "BGPPeer"),
        CalicoCrd("blockaffinities", "BlockAffinity"),
        CalicoCrd("caliconodestatuses", "CalicoNodeStatus"),
        CalicoCrd("clusterinformations", "ClusterInformation"),
        CalicoCrd("felixconfigurations", "FelixConfiguration"),
        CalicoCrd("globalnetworkpolicies", "GlobalNetworkPolicy"),
        CalicoCrd("globalnetworksets", "GlobalNetworkSet"),
        CalicoCrd("hostendpoints", "HostEndpoint"),
        CalicoCrd("ipamblocks", "IPAMBlock"),
        CalicoCrd("ipamconfigs", "IPAMConfig"),
        CalicoCrd("ipamhandles", "IPAMHandle"),
        CalicoCrd("ippools", "IPPool"),
        CalicoCrd("ipreservations", "IPReservation"),
        CalicoCrd("kubecontrollersconfigurations", "KubeControllersConfiguration"),
        CalicoCrd("networkpolicies", "NetworkPolicy", namespaced=True),
        CalicoCrd("networksets", "NetworkSet", namespaced=True),
        CalicoCrd("stagedglobalnetworkpolicies", "StagedGlobalNetworkPolicy"),
        CalicoCrd("stagedkubernetesnetworkpolicies", "StagedKubernetesNetworkPolicy", namespaced=True),
        CalicoCrd("stagednetworkpolicies", "StagedNetworkPolicy", namespaced=True),
        CalicoCrd("tiers", "Tier"),
    )
    """The crd.projectcalico.org/v1 resources calico's components use at `calico_version` (its manifest's list)."""

    def calico_image(self, component: str) -> str:
        return f"{self.calico_registry}/{component}:{self.calico_version}"


DEFAULTS = CniDefaults()
