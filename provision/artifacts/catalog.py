"""Which versions make up one artifact set, per supported Kubernetes release, and the image names kubeadm expects.

A Kubernetes release pins the versions of its companions the way kubeadm does (`cmd/kubeadm/app/constants`:
pause, CoreDNS) and `build/dependencies.yaml` (CNI plugins, crictl). Adding a release: run
`keelson artifacts pin --kubernetes vX.Y.Z` in a checkout (writes the Go recipes), then add a line here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from inventory.errors import KeelsonError


@dataclass(frozen=True)
class Release:
    kubernetes: str  # "v1.37.2"
    pause: str  # "3.10.2" (kubeadm's constants.PauseVersion)
    coredns: str  # "v1.14.6" (kubeadm's constants.CoreDNSVersion)
    crictl: str  # cri-tools, same minor as Kubernetes where released
    cni_plugins: str  # containernetworking/plugins
    flannel: str  # flannel-io/flannel (the daemon)
    flannel_cni: str  # the `flannel` CNI meta plugin: containernetworking/plugins before it moved out (v0.9.1)
    agnhost: str  # Kubernetes' test image (test/images/agnhost/VERSION of this release)
    kube_router: str  # NetworkPolicy for flannel: kube-router's firewall controller alone (as k3s embeds it)
    etcd: str  # keelson's external etcd (kubeadm's MinExternalEtcdVersion for 1.37 is 3.5.24)
    # Cluster add-ons (images in the set; installing them is the add-ons' business, not kubeadm's).
    metrics_server: str  # kubernetes-sigs/metrics-server: the resource metrics API (`kubectl top`, the HPA)
    local_path_provisioner: str  # rancher/local-path-provisioner: PersistentVolumes in a folder of the node
    traefik: str  # traefik/traefik: the Ingress controller (v3.6.12: v3.7.x cannot be built as served, recipes.py)
    # The busybox image local-path-provisioner's helper pods run (mkdir/rm of a volume's folder): Debian's busybox,
    # the set's debian-busybox part (busybox-static 1:1.35.0-4+deb12u1 in Debian 12), tagged with its upstream
    # version. The build refuses a part of another version (images.busybox_version), so the tag never lies.
    busybox: str
    # Add-ons installed from upstream's own images, which the set does not hold (not built here: nginx + Lua, or
    # no Go recipe yet). Pinned to one upstream release each, the same for every Kubernetes release: rendered and
    # validated by a server-side dry run, not proven running in the lab. A cluster whose nodes pull (source:
    # upstream or mirror) installs them; an air-gapped one (source: local) refuses them (addons/cluster.py).
    # Out of the repr: the set's key hashes repr(release) (build.set_key), and these decide nothing in the set.
    # ingress-nginx controller: its last release (the project was retired in March 2026); kube-webhook-certgen: the
    # certificate Jobs of its optional admission webhook
    ingress_nginx: str = field(default="v1.15.1", repr=False)
    ingress_nginx_certgen: str = field(default="v1.6.9", repr=False)
    nfs_provisioner: str = field(default="v4.0.2", repr=False)  # nfs-subdir-external-provisioner (its chart's image)
    prometheus: str = field(default="v3.14.0", repr=False)  # prometheus-community chart 29.27.0
    node_exporter: str = field(default="v1.12.1", repr=False)
    grafana: str = field(default="13.2.0", repr=False)  # grafana-community chart 12.11.1
    loki: str = field(default="3.7.6", repr=False)  # single binary
    fluent_bit: str = field(default="5.1.1", repr=False)  # fluent chart 0.58.1
    # kubernetes/dashboard's modules as its chart 7.13.0 pins them, and Kong as its DB-less gateway (kong chart 2.46.0)
    dashboard_api: str = field(default="1.13.0", repr=False)
    dashboard_web: str = field(default="1.7.0", repr=False)
    dashboard_auth: str = field(default="1.3.0", repr=False)
    dashboard_metrics_scraper: str = field(default="1.2.2", repr=False)
    kong: str = field(default="3.8", repr=False)

    @property
    def minor(self) -> tuple[int, int]:
        major, minor, _ = self.kubernetes.lstrip("v").split(".")
        return int(major), int(minor)

    # Image names exactly as kubeadm and the manifests ask for them.
    def control_plane_image(self, component: str) -> str:
        return f"registry.k8s.io/{component}:{self.kubernetes}"

    @property
    def pause_image(self) -> str:
        return f"registry.k8s.io/pause:{self.pause}"

    @property
    def coredns_image(self) -> str:
        return f"registry.k8s.io/coredns/coredns:{self.coredns}"

    @property
    def flannel_image(self) -> str:
        return f"ghcr.io/flannel-io/flannel:{self.flannel}"

    @property
    def kube_router_image(self) -> str:
        return f"docker.io/cloudnativelabs/kube-router:{self.kube_router}"

    @property
    def agnhost_image(self) -> str:
        return f"registry.k8s.io/e2e-test-images/agnhost:{self.agnhost}"

    @property
    def metrics_server_image(self) -> str:
        return f"registry.k8s.io/metrics-server/metrics-server:{self.metrics_server}"

    @property
    def local_path_provisioner_image(self) -> str:
        return f"docker.io/rancher/local-path-provisioner:{self.local_path_provisioner}"

    @property
    def traefik_image(self) -> str:
        return f"docker.io/library/traefik:{self.traefik}"  # Docker Hub's official image, tagged "v3.6.12"

    @property
    def busybox_image(self) -> str:
        return f"docker.io/library/busybox:{self.busybox}"

    @property
    def set_addon_images(self) -> tuple[str, ...]:
        """The add-ons' images the artifact set holds (images.images() builds them)."""
        return (self.metrics_server_image, self.local_path_provisioner_image, self.busybox_image, self.traefik_image)

    @property
    def ingress_nginx_image(self) -> str:
        return f"registry.k8s.io/ingress-nginx/controller:{self.ingress_nginx}"

    @property
    def ingress_nginx_certgen_image(self) -> str:
        return f"registry.k8s.io/ingress-nginx/kube-webhook-certgen:{self.ingress_nginx_certgen}"

    @property
    def nfs_provisioner_image(self) -> str:
        return f"registry.k8s.io/sig-storage/nfs-subdir-external-provisioner:{self.nfs_provisioner}"

    @property
    def prometheus_image(self) -> str:
        return f"quay.io/prometheus/prometheus:{self.prometheus}"

    @property
    def node_exporter_image(self) -> str:
        return f"quay.io/prometheus/node-exporter:{self.node_exporter}"

    @property
    def grafana_image(self) -> str:
        return f"docker.io/grafana/grafana:{self.grafana}"

    @property
    def loki_image(self) -> str:
        return f"docker.io/grafana/loki:{self.loki}"

    @property
    def fluent_bit_image(self) -> str:
        return f"cr.fluentbit.io/fluent/fluent-bit:{self.fluent_bit}"

    def dashboard_image(self, module: str) -> str:
        """`module`: api, web, auth or metrics-scraper."""
        version = {
            "api": self.dashboard_api,
            "web": self.dashboard_web,
            "auth": self.dashboard_auth,
            "metrics-scraper": self.dashboard_metrics_scraper,
        }[module]
        return f"docker.io/kubernetesui/dashboard-{module}:{version}"

    @property
    def kong_image(self) -> str:
        return f"docker.io/library/kong:{self.kong}"  # Docker Hub's official image


RELEASES: dict[str, Release] = {
    r.kubernetes: r
    for r in (
        # The previous minor, so that `keelson upgrade` runs for real between two releases built here (the newest
        # v1.36 patch the Go module proxy serves). Only its Kubernetes binaries are its own: it shares every companion
        # with v1.37.2, so a cold build compiles one module. kubeadm v1.36 asks for CoreDNS v1.14.2
        # (constants.CoreDNSVersion); keelson's ClusterConfiguration sets dns.imageTag to the release's CoreDNS, so
        # the cluster runs v1.14.6 before and after an upgrade. cri-tools has no v1.36 on the proxy and crictl speaks
        # CRI v1 to any containerd. agnhost is built from this release's module (test/images/agnhost/VERSION 2.63.0).
        Release(
            kubernetes="v1.36.3",
            pause="3.10.2",
            coredns="v1.14.6",
            crictl="v1.37.0",
            cni_plugins="v1.9.1",
            flannel="v0.28.10",
            flannel_cni="v0.9.1",
            agnhost="2.63.0",
            kube_router="v2.1.0",
            etcd="v3.6.16",
            metrics_server="v0.8.0",
            local_path_provisioner="v0.0.30",
            traefik="v3.6.12",
            busybox="1.35.0",
        ),
        Release(
            kubernetes="v1.37.2",
            pause="3.10.2",
            coredns="v1.14.6",
            crictl="v1.37.0",
            cni_plugins="v1.9.1",
            flannel="v0.28.10",
            flannel_cni="v0.9.1",
            agnhost="2.66.1",
            kube_router="v2.1.0",
            etcd="v3.6.16",
            metrics_server="v0.8.0",
            local_path_provisioner="v0.0.30",
            traefik="v3.6.12",
            busybox="1.35.0",
        ),
    )
}
DEFAULT_KUBERNETES = "v1.37.2"


def normalise(version: str) -> str:
    """'1.37.2' and 'v1.37.2' are the same release."""
    version = version.strip()
    return version if version.startswith("v") else f"v{version}"


def release(version: str) -> Release:
    v = normalise(version)
    if not re.fullmatch(r"v\d+\.\d+\.\d+", v):
        raise KeelsonError(f"{version!r} is not a Kubernetes version (want e.g. {DEFAULT_KUBERNETES})")
    if v not in RELEASES:
        raise KeelsonError(
            f"Kubernetes {v} has no build recipe in this keelson",
            hint="supported: " + ", ".join(sorted(RELEASES)) + " (keelson artifacts pin adds one)",
        )
    return RELEASES[v]
