"""kubernetes_node: the node's binaries and CNI plugins (sha256-checked, all or nothing), the images when the
source is air-gapped, the kubelet unit and crictl's config. Each yields commands only where the host differs."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provision.artifacts.sources import Resolver
from roles.engine import fetch
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import CommandOutput, Fact, FactValues
from roles.engine.fetch import FetchStep
from roles.engine.step import FileStep, ServiceStep, Step
from roles.kubernetes_node import render
from roles.kubernetes_node.defaults import DEFAULTS
from roles.kubernetes_node.facts import CgroupVersion

q = shlex.quote


def node_artifacts(resolver: Resolver) -> FetchStep:
    """kubeadm, kubelet, kubectl, crictl and the CNI plugins at the digests the source publishes."""
    d = DEFAULTS
    plugins = ("bridge", "host-local", "loopback", "portmap")

    def wanted() -> fetch.Wanted:
        r = resolver
        files = [fetch.FileInstall(f"{d.bin_dir}/{n}", r.binary(n)) for n in d.node_binaries]
        crictl, cni, flannel = r.archives()
        archives = [
            fetch.ArchiveInstall(r.payload(crictl), (("crictl", f"{d.bin_dir}/crictl"),)),
            fetch.ArchiveInstall(r.payload(cni), tuple((n, f"{d.cni_bin_dir}/{n}") for n in plugins)),
            fetch.ArchiveInstall(r.payload(flannel), (("flannel-amd64", f"{d.cni_bin_dir}/flannel"),)),
        ]
        return files, archives

    paths = tuple(f"{d.bin_dir}/{n}" for n in (*d.node_binaries, "crictl"))
    paths += tuple(f"{d.cni_bin_dir}/{n}" for n in (*plugins, "flannel"))
    return FetchStep(
        name="kubernetes node | binaries and CNI plugins",
        wanted=wanted,
        paths=paths,
        markers=tuple(fetch.marker_path(remote.path) for remote in resolver.archives()),
        origin=resolver.origin,
        ca_file=resolver.ca_path,
    )


CONTAINERD_DB = "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"  # every image record lives here
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
IMAGES_SEEN = f"{fetch.MARKER_DIR}/containerd-images"  # the last listing, after the db's stat signature


def images_listing(
    db: str = CONTAINERD_DB, socket: str = CONTAINERD_SOCKET, seen: str = IMAGES_SEEN, settle_s: int = 2
) -> CommandOutput:
    """`ctr -n k8s.io images ls`'s output. Listing costs ~50 ms of the host's CPU (and containerd's own work) on
    every no-op, so the last listing is kept beside the stat signature (size, inode, ctime and mtime to the
    nanosecond) of containerd's metadata database, which holds every image's name, digest and labels: any change
    to an image writes the database and changes the signature, and containerd is asked again. Asked again too when
    containerd is not listening, and never kept from a database written within `settle_s` seconds (the kernel's
    ctime clock is coarse: the fetch's `Installed` digest cache has the same rule)."""
    script = (
        f"s=$(stat -c '%Z {fetch.SIGNATURE}' -- {q(db)} 2>/dev/null); sig=${{s#* }}; m=; "
        f'[ -n "$s" ] && [ -S {q(socket)} ] && [ -f {q(seen)} ] && IFS= read -r m < {q(seen)}; '
        f'if [ -n "$m" ] && [ "$m" = "$sig" ]; then tail -n +2 {q(seen)}; else '
        f"o=$(ctr -n k8s.io images ls 2>/dev/null; r=$?; echo .; exit $r); r=$?; o=${{o%.}}; printf '%s' \"$o\"; "
        f"printf -v now '%(%s)T' -1; "
        f'if [ $r -eq 0 ] && [ -n "$s" ] && [ $((now - ${{s%% *}})) -ge {settle_s} ]; then '
        f"mkdir -p -m 0700 {q(seen.rsplit('/', 1)[0])} && "
        f'printf \'%s\\n%s\' "$sig" "$o" > {q(seen + ".tmp")} && mv -f {q(seen + ".tmp")} {q(seen)}; fi; '
        "(exit $r); fi"
    )
    return CommandOutput("containerd-images", script)


IMAGES = images_listing()


def parse_images(out: str) -> dict[str, str]:
    """`ctr images ls` -> {name: manifest digest}."""
    found = {}
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[2].startswith("sha256:"):
            found[parts[0]] = parts[2]
    return found


@dataclass
class ImagesStep(Step):
    """Air-gapped images: every image of the set in containerd's k8s.io namespace at its digest; otherwise the one
    bundle (shared layers stored once) is fetched or uploaded, checked and imported."""

    resolver: Resolver
    name: str = "kubernetes node | images (import)"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (IMAGES,)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        have = parse_images(facts.get(IMAGES)[0])
        missing = sorted(n for n, d in self.resolver.image_digests().items() if have.get(n) != d)
        if not missing:
            return []
        bundle = self.resolver.image_bundle()
        ca = self.resolver.ca_path
        lines = [
            "set -e",
            f"d=$(mktemp -d {fetch.DOWNLOAD_DIR}/keelson-images.XXXXXX)",
            "trap 'rm -rf \"$d\"' EXIT",
            *fetch.fetch_lines([bundle], ca),
            *fetch.verify_lines([bundle]),
            f'ctr -n k8s.io images import --no-unpack=false "$d"/{bundle.sha256} >/dev/null',
        ]
        return [
            Command(
                "\n".join(lines),
                description=f"import {len(missing)} image(s) into containerd ({', '.join(missing)})",
                summary_only=True,
                uploads=fetch.uploads([bundle]),
            )
        ]


@dataclass
class CgroupNote(Step):
    """Report the cgroup version the kubelet will run on (cgroup v1: configured with failCgroupV1: false)."""

    name: str = "kubernetes node | cgroup version"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (CgroupVersion(),)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        return []

    def warnings(self, ctx: HostContext, facts: FactValues) -> list[str]:
        cgroup = facts.get(CgroupVersion())
        if cgroup.version == 1:
            return [
                f"cgroup {cgroup.label}: the kubelet is configured with failCgroupV1: false (Kubernetes >= 1.35 "
                "refuses v1 otherwise); move this host to cgroup v2 when you can"
            ]
        return []


def kubelet_unit_steps() -> list[Step]:
    return [
        FileStep(DEFAULTS.kubelet_unit, render.kubelet_unit(), daemon_reload=True),
        FileStep(DEFAULTS.kubelet_dropin, render.kubelet_dropin(), daemon_reload=True),
        ServiceStep("kubelet", running=False, enabled=True, name="service | kubelet enabled (kubeadm starts it)"),
        FileStep(DEFAULTS.crictl_config, render.crictl_yaml()),
    ]
