"""Build recipes: one Go module per component version, pinned in the repo (go.mod + go.sum), plus what to build.

    provision/artifacts/recipes/<component>/<version>/go.mod   requires the upstream module at that version
                                                   /go.sum   every module's hash (the build refuses a mismatch)
                                                   /cmd/…    our own main packages, where there are any

A recipe's hash covers those files, the targets, the link flags and the Go version: a change to any of them is a
new cache entry, never a stale binary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provision.artifacts.catalog import Release

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


@dataclass(frozen=True)
class Target:
    package: str  # Go package path to build (a `tool` of the recipe's module, or ./cmd/… of our own)
    output: str  # binary name in the part's bin/


@dataclass(frozen=True)
class Recipe:
    component: str
    version: str
    targets: tuple[Target, ...]
    ldflags: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)  # extra name -> binary it points at (multi-call)
    raise_deps: tuple[str, ...] = ()  # module@version required on top (dependencies with known CVEs, raised)
    cgo: bool = False  # linked statically against the machine's C library (flannel's udp backend is C)
    # `keelson artifacts pin` raises the modules it shares with the default Kubernetes recipe to that recipe's versions
    # (align.py); False keeps upstream's pins (Kubernetes itself; metrics-server, below)
    align: bool = True

    @property
    def dir(self) -> Path:
        return RECIPES_DIR / self.component / self.version

    @property
    def key(self) -> str:
        return f"{self.component}-{self.version}"

    def files(self) -> list[Path]:
        return sorted(p for p in self.dir.rglob("*") if p.is_file())

    def digest(self, go_version: str) -> str:
        h = hashlib.sha256()
        for path in self.files():
            h.update(str(path.relative_to(self.dir)).encode() + b"\0" + path.read_bytes() + b"\0")
        for target in self.targets:
            h.update(f"{target.package}>{target.output}\0".encode())
        h.update("\0".join(self.ldflags).encode())
        h.update(repr((sorted(self.links.items()), self.cgo)).encode())
        h.update(go_version.encode())
        return h.hexdigest()[:16]


_ZERO_COMMIT = "0000000000000000000000000000000000000000"  # stamped where upstream stamps its git commit
_EPOCH = "1970-01-01T00:00:00Z"  # and where it stamps the build date: the same bytes from every build


def _stamp(packages: tuple[str, ...], values: dict[str, str]) -> tuple[str, ...]:
    return tuple(f"-X {pkg}.{key}={value}" for pkg in packages for key, value in values.items())


KUBE_COMPONENTS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "kubelet",
    "kubeadm",
    "kubectl",
)
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
_CNI_PATHS = {
    "bridge": "main/bridge",
    "host-local": "ipam/host-local",
    "loopback": "main/loopback",
    "portmap": "meta/portmap",
}


def kubernetes(release: Release) -> Recipe:
    """kubeadm, kubelet, kubectl and the control-plane components as ONE multi-call binary `kube` (dispatch on the
    program name, as hyperkube did: linked once instead of seven times), and agnhost, Kubernetes' test server."""
    v = release.kubernetes
    major, minor = release.minor
    stamp = _stamp(
        ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"),
        {
            "gitVersion": v,
            "gitMajor": str(major),
            "gitMinor": str(minor),
            "gitTreeState": "clean",
            "gitCommit": _ZERO_COMMIT,
            "buildDate": _EPOCH,
        },
    )
    return Recipe(
        "kubernetes",
        v,
        targets=(
            Target("./cmd/kube", "kube"),
            Target("k8s.io/kubernetes/test/images/agnhost", "agnhost"),
        ),
        ldflags=stamp,
        links=dict.fromkeys(KUBE_COMPONENTS, "kube"),
        align=False,  # the versions every companion aligns to: Kubernetes' own pins, never changed
    )


def crictl(release: Release) -> Recipe:
    return Recipe(
        "cri-tools",
        release.crictl,
        targets=(Target("sigs.k8s.io/cri-tools/cmd/crictl", "crictl"),),
        ldflags=_stamp(("sigs.k8s.io/cri-tools/pkg/version",), {"Version": release.crictl}),
    )


def cni_plugins(release: Release) -> Recipe:
    base = "github.com/containernetworking/plugins/plugins"
    return Recipe(
        "cni-plugins",
        release.cni_plugins,
        targets=tuple(Target(f"{base}/{_CNI_PATHS[name]}", name) for name in CNI_PLUGINS),
        ldflags=_stamp(
            ("github.com/containernetworking/plugins/pkg/utils/buildversion",), {"BuildVersion": release.cni_plugins}
        ),
    )


def flannel_cni(release: Release) -> Recipe:
    """The `flannel` CNI meta plugin (reads /run/flannel/subnet.env, delegates to bridge + host-local). It lived in
    containernetworking/plugins until v0.9.1; its successor module (flannel-io/cni-plugin) is not served here."""
    return Recipe(
        "flannel-cni",
        release.flannel_cni,
        targets=(Target("github.com/containernetworking/plugins/plugins/meta/flannel", "flannel"),),
        ldflags=_stamp(
            ("github.com/containernetworking/plugins/pkg/utils/buildversion",), {"BuildVersion": release.flannel_cni}
        ),
    )


def coredns(release: Release) -> Recipe:
    """CoreDNS with the plugins cluster DNS uses (our main: templates/coredns-main.go), not the cloud backends."""
    return Recipe(
        "coredns",
        release.coredns,
        targets=(Target("./cmd/coredns", "coredns"),),
        ldflags=_stamp(("github.com/coredns/coredns/coremain",), {"GitCommit": release.coredns}),
    )


def flannel(release: Release) -> Recipe:
    return Recipe(
        "flannel",
        release.flannel,
        targets=(Target("github.com/flannel-io/flannel", "flanneld"),),
        ldflags=_stamp(("github.com/flannel-io/flannel/pkg/version",), {"Version": release.flannel}),
        cgo=True,
    )


# kube-router v2.1.0's own go.mod pins golang.org/x libraries and grpc with published CVEs; the recipe raises them to
# the versions Kubernetes v1.37.2 builds with (Go's minimal version selection takes the higher one), as distributions
# that ship kube-router do. The add-ons' recipes raise the same: local-path-provisioner v0.0.30 pins x/crypto v0.25.0,
# x/net v0.27.0 and x/oauth2 v0.10.0 (mid-2024), metrics-server v0.8.0 x/crypto v0.38.0, x/net v0.40.0, grpc v1.72.0,
# traefik v3.6.12 x/crypto v0.48.0, x/net v0.51.0, grpc v1.79.3.
RAISED = (
    "golang.org/x/net@v0.57.0",
    "golang.org/x/crypto@v0.54.0",
    "golang.org/x/sys@v0.47.0",
    "golang.org/x/text@v0.40.0",
    "golang.org/x/oauth2@v0.36.0",
    "google.golang.org/grpc@v1.82.1",
    "google.golang.org/protobuf@v1.36.11",
)


def kube_router(release: Release) -> Recipe:
    return Recipe(
        "kube-router",
        release.kube_router,
        targets=(Target("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router", "kube-router"),),
        ldflags=_stamp(("github.com/cloudnativelabs/kube-router/v2/pkg/version",), {"Version": release.kube_router}),
        raise_deps=RAISED,
    )


def etcd(release: Release) -> Recipe:
    """etcd, etcdctl and etcdutl (three modules of one release), as etcd's own build does: static, stamped."""
    return Recipe(
        "etcd",
        release.etcd,
        targets=(
            Target("go.etcd.io/etcd/server/v3", "etcd"),
            Target("go.etcd.io/etcd/etcdctl/v3", "etcdctl"),
            Target("go.etcd.io/etcd/etcdutl/v3", "etcdutl"),
        ),
        ldflags=_stamp(("go.etcd.io/etcd/api/v3/version",), {"GitSHA": release.etcd}),
    )


def metrics_server(release: Release) -> Recipe:
    """metrics-server, as its Makefile builds it: the version stamped into client-go's version package."""
    return Recipe(
        "metrics-server",
        release.metrics_server,
        targets=(Target("sigs.k8s.io/metrics-server/cmd/metrics-server", "metrics-server"),),
        ldflags=_stamp(
            ("k8s.io/client-go/pkg/version",),
            {"gitVersion": release.metrics_server, "gitCommit": _ZERO_COMMIT, "buildDate": _EPOCH},
        ),
        raise_deps=RAISED,
        # Not aligned: metrics-server is an aggregated API server built on k8s.io/apiserver, whose minor it is made
        # for. Aligned to v1.37.2's k8s.io/* (v0.33 -> v0.37) it built, and crashed at start in the lab's cluster
        # (CrashLoopBackOff, exit 2; 2026-12-03): kept at its own pins (+ RAISED).
        align=False,
    )


def local_path_provisioner(release: Release) -> Recipe:
    """local-path-provisioner (its main package is the module's root), stamped as scripts/build does (main.VERSION)."""
    return Recipe(
        "local-path-provisioner",
        release.local_path_provisioner,
        targets=(Target("github.com/rancher/local-path-provisioner", "local-path-provisioner"),),
        ldflags=_stamp(("main",), {"VERSION": release.local_path_provisioner}),
        raise_deps=RAISED,
    )


TRAEFIK_CODENAME = "ramequin"  # the CODENAME of traefik v3.6's release workflow, which its goreleaser stamps


def traefik(release: Release) -> Recipe:
    """Traefik as upstream releases it: goreleaser stamps Version with the tag without its "v" (`traefik version`
    prints "3.6.12"), the release workflow's Codename, and BuildDate as an RFC 3339 date (here the epoch). Its go.mod
    replaces three modules with Containous forks (go-http-auth, gorilla/mux, mailgun/minheap); a dependency's replace
    directives do not apply in our recipe module, so the recipe's go.mod carries the same three (written by hand:
    `keelson artifacts pin` writes no replaces)."""
    return Recipe(
        "traefik",
        release.traefik,
        targets=(Target("github.com/traefik/traefik/v3/cmd/traefik", "traefik"),),
        ldflags=_stamp(
            ("github.com/traefik/traefik/v3/pkg/version",),
            {"Version": release.traefik.removeprefix("v"), "Codename": TRAEFIK_CODENAME, "BuildDate": _EPOCH},
        ),
        raise_deps=RAISED,
    )


# Traefik is v3.6.12, not v3.7.x (github.com/traefik/traefik/v3, the newest v3.7.13), which cannot be built as served.
# v3.7's go.mod requires github.com/traefik/traefik/dynamic/ext (pkg/config/dynamic/http_config.go embeds ext.HTTP and
# ext.Router) at the zero pseudo-version and points it at ./pkg/config/dynamic/ext with a replace directive; that
# folder is a module of its own, so the v3 module zip leaves it out, the proxy serves no version of that path (403),
# and a replace copied into our recipe would point at a folder we do not have. At least 14 of lego's DNS-provider
# SDKs it links are not served either. Building it would mean writing traefik's own config types ourselves: not done.
# v3.6.12 is the only other version of the module the proxy serves here (`go list -m -versions`: v3.6.12, v3.7.11,
# v3.7.12, v3.7.13; no v3.5); it has no such module and builds with its three fork replaces copied. Both
# embed only a placeholder web UI (webui/static is built by yarn, not shipped in the module): keelson runs traefik
# without its dashboard and API, so nothing serves it.
RECIPES: tuple[Callable[[Release], Recipe], ...] = (
    kubernetes,
    crictl,
    cni_plugins,
    flannel_cni,
    coredns,
    flannel,
    kube_router,
    etcd,
    metrics_server,
    local_path_provisioner,
    traefik,
)


def recipes_for(release: Release) -> list[Recipe]:
    return [make(release) for make in RECIPES]
