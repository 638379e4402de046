"""A Windows worker's binaries, the Windows twin of the engine's FetchStep (roles/engine/fetch.py): every file at the
sha256 the artifact source publishes, downloaded by the host, checked with Get-FileHash, installed all or nothing,
and nothing fetched when the installed files' digests (and each archive's marker) already match.

What comes from where (provision/artifacts/layout.py's Windows remotes, resolved by provision/artifacts/sources.py):
kubelet.exe, kube-proxy.exe, kubeadm.exe, kubectl.exe (dl.k8s.io, .sha256); containerd's Windows release
(containerd.exe, ctr.exe, containerd-shim-runhcs-v1.exe); the Windows CNI plugins (win-overlay.exe, host-local.exe);
flannel's CNI plugin (flannel.exe) and flanneld.exe. Only `upstream`, or a `mirror` that carries these paths: a set
keelson builds holds linux/amd64 binaries and Linux images only (phases.py refuses `local` and image import).
"""

from __future__ import annotations

import ntpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provision.artifacts import layout
from provision.artifacts.layout import Remote
from provision.artifacts.sources import Resolver
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import Fact, FactValues
from roles.engine.fetch import Payload
from roles.engine.step import Step
from roles.windows import render
from roles.windows.defaults import DEFAULTS, WindowsDefaults
from roles.windows.facts import FileHashes, TextFiles

BINARIES = ("kubelet", "kube-proxy", "kubeadm", "kubectl")
CNI_PLUGINS = ("win-overlay", "host-local")
SERVICES = ("kube-proxy", "kubelet", "containerd")  # stopped before their binaries are replaced, in this order


@dataclass(frozen=True)
class Archive:
    remote: Remote
    members: tuple[tuple[str, str], ...]  # (name in the archive, destination)

    @property
    def marker(self) -> str:
        return ntpath.join(DEFAULTS.marker_dir, self.remote.path.rsplit("/", 1)[-1] + ".installed")


def archives(resolver: Resolver, d: WindowsDefaults = DEFAULTS) -> list[Archive]:
    release = resolver.release
    containerd = ("containerd", "ctr", "containerd-shim-runhcs-v1")
    return [
        Archive(
            layout.containerd_windows_archive(d.containerd_version),
            tuple((f"bin/{n}.exe", ntpath.join(d.containerd_dir, f"{n}.exe")) for n in containerd),
        ),
        Archive(
            layout.cni_windows_archive(release),
            tuple((f"{n}.exe", ntpath.join(d.cni_bin_dir, f"{n}.exe")) for n in CNI_PLUGINS),
        ),
        Archive(
            layout.flannel_cni_windows_archive(layout.UPSTREAM_FLANNEL_CNI),
            (("flannel-amd64.exe", ntpath.join(d.cni_bin_dir, "flannel.exe")),),
        ),
        Archive(layout.flanneld_windows_archive(release), (("flanneld.exe", ntpath.join(d.kube_dir, "flanneld.exe")),)),
    ]


def binaries(resolver: Resolver, d: WindowsDefaults = DEFAULTS) -> list[tuple[Remote, str]]:
    return [(layout.kube_binary_windows(resolver.release, n), ntpath.join(d.kube_dir, f"{n}.exe")) for n in BINARIES]


def archive_ok(archive: Archive, payload: Payload, digests: dict[str, str], marker: str | None) -> bool:
    """The marker names this archive's digest and lists every member (`<sha256> <path>`, paths may hold spaces)
    with the digest it has now."""
    if marker is None:
        return False
    lines = [line.strip() for line in marker.splitlines() if line.strip()]
    if not lines or lines[0] != payload.sha256:
        return False
    recorded = {}
    for line in lines[1:]:
        digest, _, path = line.partition(" ")
        recorded[path] = digest
    return all(dest in recorded and digests.get(dest) == recorded[dest] for _, dest in archive.members)


@dataclass
class WindowsFetchStep(Step):
    resolver: Resolver
    name: str = "windows | binaries (containerd, kubelet, kube-proxy, kubeadm, flanneld, CNI plugins)"

    def _paths(self) -> tuple[str, ...]:
        files = tuple(dest for _, dest in binaries(self.resolver))
        return files + tuple(dest for a in archives(self.resolver) for _, dest in a.members)

    def _markers(self) -> tuple[str, ...]:
        return tuple(a.marker for a in archives(self.resolver))

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (FileHashes(self._paths()), TextFiles(self._markers()))

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        digests = facts.get(FileHashes(self._paths()))
        markers = facts.get(TextFiles(self._markers()))
        r = self.resolver
        files = [(r.payload(remote), dest) for remote, dest in binaries(r)]
        files = [(p, dest) for p, dest in files if digests.get(dest) != p.sha256]
        todo = [(a, r.payload(a.remote)) for a in archives(r)]
        todo = [(a, p) for a, p in todo if not archive_ok(a, p, digests, markers.get(a.marker))]
        if not files and not todo:
            return []
        payloads: dict[str, render.FetchPayload] = {}
        for p in [p for p, _ in files] + [p for _, p in todo]:
            assert p.url is not None  # Windows payloads are always downloaded by the host (phases.py)
            payloads.setdefault(p.sha256, render.FetchPayload(p.name, p.sha256, p.url))
        script = render.fetch(
            list(payloads.values()),
            [render.FetchFile(p.sha256, dest) for p, dest in files],
            [render.FetchArchive(p.name, p.sha256, a.members, a.marker) for a, p in todo],
            services=SERVICES,
            tasks=(DEFAULTS.flannel_task,),
        )
        names = sorted({ntpath.basename(dest) for _, dest in files} | {p.name.rsplit("/", 1)[1] for _, p in todo})
        return [
            Command(
                script,
                description=f"install {', '.join(names)} ({r.origin()}; sha256-checked with Get-FileHash, "
                "all or nothing)",
                summary_only=True,
            )
        ]
