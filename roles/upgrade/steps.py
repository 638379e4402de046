"""The upgrade's per-host steps: the target's kubeadm and kubectl (`stage_kubeadm`), and the target's images on a
node, imported (air-gapped) and pinned (`PinnedImagesStep`).

Pinned (containerd's `io.cri-containerd.pinned=pinned` label, which the CRI reports as `pinned`): the kubelet's
image garbage collection never removes a pinned image. Without it, a node whose disk is above the kubelet's GC
threshold deletes every image no container uses — the target's control-plane images between the moment they are
imported and the moment kubeadm starts them (seen on this machine's lab hosts at 91 % disk: the kubelet removed
images every 10 s), and with an air-gapped source there is nothing to pull them back from.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provision.artifacts.sources import Resolver
from roles.engine import fetch
from roles.engine.command import Command
from roles.engine.context import HostContext
from roles.engine.facts import Fact, FactValues
from roles.engine.step import Step
from roles.kubernetes_node.defaults import DEFAULTS as NODE
from roles.kubernetes_node.steps import IMAGES, ImagesStep

q = shlex.quote
PINNED = "io.cri-containerd.pinned=pinned"


def pinned_images(out: str) -> set[str]:
    """`ctr images ls` → the names whose labels include the pinned label. Pure."""
    found = set()
    for line in out.splitlines()[1:]:
        parts = line.split()
        if parts and any(PINNED in label.split(",") for label in parts[1:]):
            found.add(parts[0])
    return found


@dataclass
class PinnedImagesStep(Step):
    """Every image of the target's set present at its digest (ImagesStep: imported when one is missing) and pinned."""

    resolver: Resolver
    name: str = "upgrade | the target's images (imported, pinned)"

    def facts(self, ctx: HostContext) -> Sequence[Fact[Any]]:
        return (IMAGES,)

    def check(self, ctx: HostContext, facts: FactValues) -> list[Command]:
        commands = ImagesStep(self.resolver).check(ctx, facts)
        names = sorted(self.resolver.image_digests())
        unpinned = names if commands else sorted(set(names) - pinned_images(facts.get(IMAGES)[0]))
        if unpinned:
            labels = "; ".join(f"ctr -n k8s.io images label {q(n)} {PINNED} >/dev/null" for n in unpinned)
            commands.append(
                Command(f"set -e; {labels}", description=f"pin {len(unpinned)} image(s) against the kubelet's GC")
            )
        return commands


def stage_kubeadm(resolver: Resolver) -> fetch.FetchStep:
    """The target's kubeadm and kubectl (neither runs as a service: replacing them restarts nothing)."""
    names = ("kubeadm", "kubectl")

    def wanted() -> fetch.Wanted:
        return [fetch.FileInstall(f"{NODE.bin_dir}/{n}", resolver.binary(n)) for n in names], []

    return fetch.FetchStep(
        name="upgrade | the target's kubeadm and kubectl",
        wanted=wanted,
        paths=tuple(f"{NODE.bin_dir}/{n}" for n in names),
        markers=(),
        origin=resolver.origin,
        ca_file=resolver.ca_path,
    )
