"""Build one artifact set: every part (Go components, pause, Debian userland), then the set in the mirror layout
(binaries, archives, OCI images, manifest). Cached by Kubernetes version + recipe hash: a warm run reads one file.

    sets/<version>-<hash>/release/<version>/bin/linux/amd64/{kubeadm,kubelet,kubectl,…}   (+ .sha256)
                         cri-tools/…, cni-plugins/…, flannel-cni/…                            archives (+ .sha256)
                         images/*.tar                                                         OCI image tarballs
                         manifest.json, SHA256SUMS
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from provision.artifacts import debs, layout, manifest
from provision.artifacts.cache import build_lock
from provision.artifacts.catalog import Release
from provision.artifacts.gotool import go_version, modules_prefetched
from provision.artifacts.images import ImageParts, images
from provision.artifacts.manifest import ImageEntry, Manifest
from provision.artifacts.oci import write_archive
from provision.artifacts.parts import Part, go_part
from provision.artifacts.pause import pause_part
from provision.artifacts.recipes import CNI_PLUGINS, KUBE_COMPONENTS, Recipe, recipes_for
from provision.artifacts.sets import ArtifactSet as ArtifactSet  # noqa: PLC0414 - re-exported: callers know it here
from provision.artifacts.sets import find as find  # noqa: PLC0414 - re-exported (the lookup lives in sets.py)
from provision.artifacts.sets import set_key, sets_root

T = TypeVar("T")


@dataclass(frozen=True)
class StepEvent:
    title: str
    finished: bool = False
    seconds: float = 0.0
    cached: bool = False


Reporter = Callable[[StepEvent], None]


def timed_step(report: Reporter, title: str, make: Callable[[], T], cached: bool = False) -> tuple[T, float]:
    """Run `make` as one reported step (started, then finished with its seconds)."""
    report(StepEvent(title))
    started = time.monotonic()
    value = make()
    seconds = round(time.monotonic() - started, 1)
    report(StepEvent(title, finished=True, seconds=seconds, cached=cached))
    return value, seconds


def build(release: Release, report: Reporter) -> ArtifactSet:
    found = find(release)
    if found is not None:
        return found
    with build_lock(sets_root()):
        found = find(release)  # another process finished it while we waited
        if found is not None:
            return found
        return _build(release, report)


def _build(release: Release, report: Reporter) -> ArtifactSet:
    seconds: dict[str, float] = {}
    parts: dict[str, Part] = {}
    recipes: dict[str, Recipe] = {r.component: r for r in recipes_for(release)}
    with modules_prefetched([r.dir for r in list(recipes.values())[1:]]):
        for component, recipe in recipes.items():
            parts[component], seconds[component] = timed_step(
                report, f"build {component} {recipe.version} (Go)", functools.partial(go_part, recipe)
            )
    parts["pause"], seconds["pause"] = timed_step(
        report, f"build pause {release.pause} (C)", lambda: pause_part(release)
    )
    parts["iptables"], seconds["debian-iptables"] = timed_step(report, "fetch Debian iptables", debs.iptables_part)
    parts["busybox"], seconds["debian-busybox"] = timed_step(report, "fetch Debian busybox", debs.busybox_part)

    key = set_key(release)
    final = sets_root() / key
    work = final.with_name(key + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    man = Manifest(
        kubernetes=release.kubernetes,
        key=key,
        go=go_version(),
        versions={r.component: r.version for r in recipes.values()} | {"pause": release.pause},
        build_seconds=seconds,
    )
    _, seconds["binaries"] = timed_step(report, "binaries and archives", lambda: _binaries(release, parts, work, man))
    _, seconds["images"] = timed_step(report, "OCI images", lambda: _images(release, parts, work, man))
    manifest.write(work, man)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    _remove_stale(release, keep=final)
    return ArtifactSet(final, man)


def _binaries(release: Release, parts: dict[str, Part], work: Path, man: Manifest) -> None:
    kube = parts["kubernetes"].bin / "kube"
    for name in KUBE_COMPONENTS:
        remote = layout.kube_binary(release, name)
        target = work / remote.path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(kube, target)  # one multi-call binary under every upstream name (hard links: stored once)
        man.files.append(manifest.record(work, remote.path, "binary"))
    archives = {
        layout.crictl_archive(release): {"crictl": parts["cri-tools"].bin / "crictl"},
        layout.cni_archive(release): {n: parts["cni-plugins"].bin / n for n in CNI_PLUGINS},
        layout.flannel_cni_archive(release.flannel_cni): {"flannel-amd64": parts["flannel-cni"].bin / "flannel"},
        layout.etcd_archive(release): {
            layout.etcd_member(release, b): parts["etcd"].bin / b for b in ("etcd", "etcdctl", "etcdutl")
        },
    }
    from provision.artifacts.archives import write_tgz

    for remote, members in archives.items():
        write_tgz(work / remote.path, members)
        man.files.append(manifest.record(work, remote.path, "archive"))


def _images(release: Release, parts: dict[str, Part], work: Path, man: Manifest) -> None:
    wanted = ImageParts(
        kubernetes=parts["kubernetes"],
        pause=parts["pause"],
        coredns=parts["coredns"],
        flannel=parts["flannel"],
        kube_router=parts["kube-router"],
        iptables=parts["iptables"],
        busybox=parts["busybox"],
        metrics_server=parts["metrics-server"],
        local_path_provisioner=parts["local-path-provisioner"],
        traefik=parts["traefik"],
    )
    written = write_archive(list(images(release, wanted)), work / layout.IMAGE_BUNDLE)
    man.files.append(manifest.record(work, layout.IMAGE_BUNDLE, "images"))
    man.images += [ImageEntry(w.name, layout.IMAGE_BUNDLE, w.manifest_digest) for w in written]


def _remove_stale(release: Release, keep: Path) -> None:
    for old in sets_root().glob(f"{release.kubernetes}-*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
