"""The CNI's manifests for the inventory's `network` section, pinned: flannel and kube-router to the artifact set's
versions (the Release), calico and canal's calico half to `CniDefaults.calico_version`."""

from __future__ import annotations

from inventory.model import Cluster
from provision.artifacts.catalog import release
from roles.cni.defaults import DEFAULTS
from roles.templating import render


def manifests(cluster: Cluster) -> dict[str, str]:
    net = cluster.network
    rel = release(cluster.kubernetes.release_version)
    if net.cni == "flannel":
        text = render(
            __file__,
            "flannel.yaml.j2",
            flannel_version=rel.flannel,
            flannel_image=rel.flannel_image,
            pod_cidr=str(net.pod_cidr),
            vxlan_windows=windows_vxlan(cluster),
        )
        out = {"cni-flannel": text}
        if net.network_policy:  # flannel does not enforce NetworkPolicy: kube-router's firewall controller does
            out["network-policy-kube-router"] = render(
                __file__,
                "kube-router-netpol.yaml.j2",
                cni="flannel",
                version=rel.kube_router,
                image=rel.kube_router_image,
            )
        return out
    if net.cni in ("calico", "canal"):  # rendered, accepted by the apiserver; not applied (roles/plans/apply.py)
        canal = net.cni == "canal"
        crds = render(__file__, "calico-crds.yaml.j2", crds=DEFAULTS.calico_crds)
        text = render(
            __file__,
            "calico.yaml.j2",
            canal=canal,
            version=DEFAULTS.calico_version,
            cni_image=DEFAULTS.calico_image("cni"),
            node_image=DEFAULTS.calico_image("node"),
            controllers_image=DEFAULTS.calico_image("kube-controllers"),
            flannel_version=rel.flannel,
            flannel_image=rel.flannel_image,
            pod_cidr=str(net.pod_cidr),
        )
        return {f"cni-{net.cni}-crds": crds, f"cni-{net.cni}": text}
    return {}


def windows_vxlan(cluster: Cluster) -> tuple[int, int] | None:
    """With Windows workers, the VNI and UDP port Windows' overlay accepts (4096, 4789): every node's flannel must use
    the same, and the Linux defaults (VNI 1, the kernel's 8472) are refused on Windows. None: the Linux defaults."""
    if not any(h.os.value == "windows" for h in cluster.workers):
        return None
    from roles.windows.defaults import DEFAULTS as WINDOWS

    return WINDOWS.vxlan_vni, WINDOWS.vxlan_port
