"""One layout for every source of artifacts: the paths of the upstream release sites, under one base.

    upstream  https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubeadm            (+ .sha256)
              https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz
              https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz
    mirror    <base>/release/v1.37.2/bin/linux/amd64/kubeadm                       (+ .sha256)
              <base>/cri-tools/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz           (+ .sha256)
              <base>/cni-plugins/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz         (+ .sha256)
              <base>/flannel-cni/v0.9.1/cni-plugin-flannel-linux-amd64-v0.9.1.tgz  (+ .sha256)
              <base>/etcd/v3.6.16/etcd-v3.6.16-linux-amd64.tar.gz                  (+ .sha256; upstream: SHA256SUMS)
              <base>/images/<name>.tar                                             (OCI image tarballs)
    local     the same paths inside an artifact set on the operator's machine

Windows workers (roles/windows; upstream, or a mirror that carries them — keelson's built sets are linux/amd64):
    upstream  https://dl.k8s.io/release/v1.37.2/bin/windows/amd64/kubelet.exe      (+ .sha256)
              https://github.com/containerd/containerd/releases/download/v2.3.4/containerd-2.3.4-windows-amd64.tar.gz
                                                                              (+ .tar.gz.sha256sum)
              https://github.com/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-windows-amd64-v1.9.1.tgz
              https://github.com/flannel-io/cni-plugin/releases/download/v1.7.1-flannel2/cni-plugin-flannel-windows-amd64-v1.7.1-flannel2.tgz
              https://github.com/flannel-io/flannel/releases/download/v0.28.10/flannel-v0.28.10-windows-amd64.tar.gz
                (flannel publishes no checksum file: its digest is the one GitHub's release API gives for the asset)
    mirror    the same tails under <base>/release, <base>/containerd, <base>/cni-plugins, <base>/flannel-cni,
              <base>/flannel, each with a `.sha256`

A built set is itself a valid mirror: serve its folder over HTTP(S) and point `kubernetes.artifacts.mirror` at it.
"""

from __future__ import annotations

from dataclasses import dataclass

from provision.artifacts.catalog import Release

ARCH = "amd64"
UPSTREAM_BASES = {
    "release": "https://dl.k8s.io/release",
    "cri-tools": "https://github.com/kubernetes-sigs/cri-tools/releases/download",
    "cni-plugins": "https://github.com/containernetworking/plugins/releases/download",
    "flannel-cni": "https://github.com/flannel-io/cni-plugin/releases/download",
    "etcd": "https://github.com/etcd-io/etcd/releases/download",
    "containerd": "https://github.com/containerd/containerd/releases/download",
    "flannel": "https://github.com/flannel-io/flannel/releases/download",
}
# Where upstream publishes no checksum file, the digest GitHub's release API records for the asset (`digest`).
RELEASE_APIS = {"flannel": "https://api.github.com/repos/flannel-io/flannel/releases/tags"}
WINDOWS = "windows"
# The flannel CNI plugin upstream publishes (flannel-io/cni-plugin); a locally built set carries the original
# plugin from containernetworking/plugins (see recipes.flannel_cni) under its own version.
UPSTREAM_FLANNEL_CNI = "v1.7.1-flannel2"


@dataclass(frozen=True)
class Remote:
    """One downloadable file: its path in the layout and, for the upstream source, its URL."""

    area: str  # key of UPSTREAM_BASES
    tail: str  # path under the area
    sums: str | None = None  # upstream publishes one SHA256SUMS beside it (name under the same folder)
    release_api: bool = False  # upstream's digest is the release API's for this asset (RELEASE_APIS[area])

    @property
    def path(self) -> str:
        return f"{self.area}/{self.tail}"

    @property
    def upstream_url(self) -> str:
        return f"{UPSTREAM_BASES[self.area]}/{self.tail}"

    @property
    def upstream_sums(self) -> str | None:
        if self.sums is None:
            return None
        return f"{UPSTREAM_BASES[self.area]}/{self.tail.rsplit('/', 1)[0]}/{self.sums}"

    @property
    def upstream_release_api(self) -> str | None:
        """The release API URL that lists this asset's digest (tag = the tail's first folder)."""
        if not self.release_api:
            return None
        return f"{RELEASE_APIS[self.area]}/{self.tail.split('/', 1)[0]}"


def kube_binary(release: Release, name: str) -> Remote:
    return Remote("release", f"{release.kubernetes}/bin/linux/{ARCH}/{name}")


# -- Windows workers (roles/windows) ---------------------------------------------------------------------------------


def kube_binary_windows(release: Release, name: str) -> Remote:
    """kubelet.exe, kube-proxy.exe, kubeadm.exe, kubectl.exe (`name` without .exe)."""
    return Remote("release", f"{release.kubernetes}/bin/{WINDOWS}/{ARCH}/{name}.exe")


def containerd_windows_archive(version: str) -> Remote:
    """containerd's Windows release: bin/containerd.exe, bin/ctr.exe, bin/containerd-shim-runhcs-v1.exe."""
    name = f"containerd-{version.lstrip('v')}-{WINDOWS}-{ARCH}.tar.gz"
    return Remote("containerd", f"{version}/{name}", sums=f"{name}.sha256sum")


def cni_windows_archive(release: Release) -> Remote:
    v = release.cni_plugins
    return Remote("cni-plugins", f"{v}/cni-plugins-{WINDOWS}-{ARCH}-{v}.tgz")


def flannel_cni_windows_archive(version: str) -> Remote:
    return Remote("flannel-cni", f"{version}/cni-plugin-flannel-{WINDOWS}-{ARCH}-{version}.tgz")


def flanneld_windows_archive(release: Release) -> Remote:
    v = release.flannel
    return Remote("flannel", f"{v}/flannel-{v}-{WINDOWS}-{ARCH}.tar.gz", release_api=True)


def crictl_archive(release: Release) -> Remote:
    v = release.crictl
    return Remote("cri-tools", f"{v}/crictl-{v}-linux-{ARCH}.tar.gz")


def cni_archive(release: Release) -> Remote:
    v = release.cni_plugins
    return Remote("cni-plugins", f"{v}/cni-plugins-linux-{ARCH}-{v}.tgz")


def flannel_cni_archive(version: str) -> Remote:
    return Remote("flannel-cni", f"{version}/cni-plugin-flannel-linux-{ARCH}-{version}.tgz")


def etcd_archive(release: Release) -> Remote:
    v = release.etcd
    return Remote("etcd", f"{v}/etcd-{v}-linux-{ARCH}.tar.gz", sums="SHA256SUMS")


def etcd_member(release: Release, binary: str) -> str:
    """A binary's name inside etcd's release archive (one folder named like the archive)."""
    return f"etcd-{release.etcd}-linux-{ARCH}/{binary}"


def image_path(image_name: str) -> str:
    """`registry.k8s.io/kube-apiserver:v1.37.2` -> `images/registry.k8s.io_kube-apiserver_v1.37.2.tar`."""
    return "images/" + image_name.replace("/", "_").replace(":", "_") + ".tar"


IMAGE_BUNDLE = "images/images.tar"  # every image of the set in one OCI layout (shared layers stored once)
