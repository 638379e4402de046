"""The images of a set, named exactly as kubeadm and the manifests ask for them, written as one OCI image-layout
tarball (`ctr -n k8s.io images import` loads them all; no registry, no Docker).

Each image is layers of files from parts: a small base (passwd, group, nsswitch, /tmp), userland from Debian
packages where a component needs it (iptables for kube-proxy and flannel, busybox for shell tools), and the
component's own binary. The control-plane images share one layer (the multi-call `kube` binary), stored once.
The cluster add-ons' images (metrics-server, local-path-provisioner and the busybox its helper pods run, traefik) are
made the same way.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provision.artifacts.catalog import Release
from provision.artifacts.gotool import BuildError
from provision.artifacts.oci import Directory, File, Image, ImageConfig, Layer, Symlink
from provision.artifacts.parts import Part
from provision.artifacts.recipes import KUBE_COMPONENTS

BASE_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    "etc/group": "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
    "etc/nsswitch.conf": "hosts: files dns\n",
}
IPTABLES_TOOLS = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")


def base_layer() -> Layer:
    files = [File(p, data=text.encode()) for p, text in BASE_FILES.items()]
    return Layer([*files, Directory("tmp", mode=0o1777), Directory("root", mode=0o700)])


def tree_entries(root: Path) -> list[File | Symlink | Directory]:
    """Every file, directory and symlink under `root`, at the same paths in the image."""
    out: list[File | Symlink | Directory] = []
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out.append(Symlink(rel, str(path.readlink())))
        elif path.is_dir():
            out.append(Directory(rel, mode=path.stat().st_mode & 0o7777))
        else:
            out.append(File(rel, source=path, mode=path.stat().st_mode & 0o7777))
    return out


def iptables_layer(debs: Part) -> Layer:
    """Debian's iptables and its libraries, with the nft variant as `iptables` (Debian 12's default, and what the
    hosts' own iptables uses: every component on one backend)."""
    links = [Symlink(f"usr/sbin/{tool}", "xtables-nft-multi") for tool in IPTABLES_TOOLS]
    return Layer([*tree_entries(debs.path / "root"), *links])


def busybox_layer(debs: Part) -> Layer:
    binary = debs.path / "root" / "bin" / "busybox"
    applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True, check=True).stdout.split()
    return Layer(
        [
            File("bin/busybox", source=binary, mode=0o755),
            *(Symlink(f"bin/{a}", "busybox") for a in applets if a != "busybox"),
        ]
    )


def debian_upstream_version(debs: Part, package: str) -> str:
    """The upstream version of a Debian package in a part: "1:1.35.0-4+deb12u1+b1" -> "1.35.0"."""
    packages = debs.info.get("packages")
    version = packages.get(package) if isinstance(packages, dict) else None
    if not isinstance(version, str):
        raise BuildError(f"the part {debs.name} has no Debian package {package}")
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


def busybox_version(debs: Part) -> str:
    return debian_upstream_version(debs, "busybox-static")


def kube_layer(kubernetes: Part) -> Layer:
    kube = File("usr/local/bin/kube", source=kubernetes.bin / "kube", mode=0o755)
    return Layer([kube, *(Symlink(f"usr/local/bin/{c}", "kube") for c in KUBE_COMPONENTS)])


def binary_layer(part: Part, name: str, at: str) -> Layer:
    return Layer([File(at.lstrip("/"), source=part.bin / name, mode=0o755)])


@dataclass(frozen=True)
class ImageParts:
    kubernetes: Part
    pause: Part
    coredns: Part
    flannel: Part
    kube_router: Part
    iptables: Part
    busybox: Part
    metrics_server: Part
    local_path_provisioner: Part
    traefik: Part


def images(release: Release, parts: ImageParts) -> Iterator[Image]:
    if busybox_version(parts.busybox) != release.busybox:
        raise BuildError(
            f"Debian's busybox here is {busybox_version(parts.busybox)}, but the catalog tags the busybox image "
            f"{release.busybox_image}",
            hint="set `busybox` in provision/artifacts/catalog.py to the version Debian ships",
        )
    base, kube = base_layer(), kube_layer(parts.kubernetes)
    iptables, busybox = iptables_layer(parts.iptables), busybox_layer(parts.busybox)

    def run(*entrypoint: str) -> ImageConfig:
        return ImageConfig(entrypoint=entrypoint)

    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        yield Image(release.control_plane_image(component), [base, kube], run(f"/usr/local/bin/{component}"))
    yield Image(release.control_plane_image("kube-proxy"), [base, iptables, kube], run("/usr/local/bin/kube-proxy"))
    yield Image(release.pause_image, [binary_layer(parts.pause, "pause", "/pause")], run("/pause"))
    yield Image(release.coredns_image, [base, binary_layer(parts.coredns, "coredns", "/coredns")], run("/coredns"))
    flanneld = binary_layer(parts.flannel, "flanneld", "/opt/bin/flanneld")
    yield Image(release.flannel_image, [base, iptables, busybox, flanneld], run("/opt/bin/flanneld"))
    router = binary_layer(parts.kube_router, "kube-router", "/usr/local/bin/kube-router")
    yield Image(release.kube_router_image, [base, iptables, router], run("/usr/local/bin/kube-router"))
    agnhost = binary_layer(parts.kubernetes, "agnhost", "/agnhost")
    yield Image(release.agnhost_image, [base, busybox, agnhost], run("/agnhost"))
    # Cluster add-ons. metrics-server runs as nobody, as upstream's distroless image does (USER 65534).
    metrics = binary_layer(parts.metrics_server, "metrics-server", "/metrics-server")
    yield Image(
        release.metrics_server_image, [base, metrics], ImageConfig(entrypoint=("/metrics-server",), user="65534")
    )
    provisioner = binary_layer(
        parts.local_path_provisioner, "local-path-provisioner", "/usr/bin/local-path-provisioner"
    )
    yield Image(release.local_path_provisioner_image, [base, provisioner], run("/usr/bin/local-path-provisioner"))
    yield Image(release.busybox_image, [base, busybox], ImageConfig(cmd=("sh",)))  # as Docker's busybox: CMD ["sh"]
    # Traefik: no USER, as upstream's image has none (the pod spec decides whom it runs as).
    traefik = binary_layer(parts.traefik, "traefik", "/usr/local/bin/traefik")
    yield Image(release.traefik_image, [base, traefik], run("/usr/local/bin/traefik"))
