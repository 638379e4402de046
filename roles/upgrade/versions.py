"""Versions and the skew rules of a kubeadm upgrade, and what a node's host says about its own upgrade. Pure.

Skew (kubernetes.io/releases/version-skew-policy, kubeadm's upgrade rules): the control plane moves one minor at a
time, never down; kubelets may lag the control plane but never lead it, so masters go first, workers last.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from roles.control_plane.defaults import DEFAULTS as CP
from roles.engine.facts import Fact
from roles.kubernetes_node.defaults import DEFAULTS as NODE

q = shlex.quote
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """`v1.37.2`, `1.37.2`, `Kubernetes v1.37.2`, an image tag `…:v1.37.2` → Version; anything else → None."""
        found = _VERSION.search(text or "")
        return cls(*(int(g) for g in found.groups())) if found else None

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


def skew_problems(current: dict[str, Version], target: Version) -> list[str]:
    """What forbids upgrading nodes at `current` (node -> kubelet version) to `target`; empty when allowed."""
    problems = []
    newer = sorted(n for n, v in current.items() if v > target)
    if newer:
        problems.append(f"{', '.join(newer)} already run a newer version than {target}: keelson does not downgrade")
    for name, version in sorted(current.items()):
        if version.major != target.major or target.minor - version.minor > 1:
            problems.append(
                f"{name} runs {version}: one minor version at a time (to v{version.major}.{version.minor + 1}.x "
                f"first, then {target})"
            )
    return problems


@dataclass(frozen=True)
class NodeState:
    """One node's upgrade as its host tells it."""

    kubelet: Version | None = None  # the installed kubelet binary's version
    kubelet_stale: bool = True  # the running kubelet is not the installed binary (replaced since it started), or none
    manifests: dict[str, Version | None] = field(default_factory=dict)  # static pod -> image tag (masters)
    kubeadm: Version | None = None

    def control_plane_at(self, target: Version) -> bool:
        return all(self.manifests.get(c) == target for c in CONTROL_PLANE)

    def kubelet_at(self, target: Version) -> bool:
        return self.kubelet == target and not self.kubelet_stale

    def done(self, target: Version, master: bool) -> bool:
        return self.kubelet_at(target) and (not master or self.control_plane_at(target))

    def describe(self) -> str:
        parts = [f"kubelet {self.kubelet or 'not installed'}" + (" (not running it yet)" if self.kubelet_stale else "")]
        tags = {str(v) if v else "?" for v in self.manifests.values()}
        if tags:
            parts.append(f"control plane {', '.join(sorted(tags))}")
        return "; ".join(parts)


@dataclass(frozen=True)
class NodeUpgradeState(Fact[NodeState]):
    """The installed kubelet's version, whether the running kubelet is that binary (a replaced binary shows as
    `(deleted)` behind /proc/PID/exe), the image tags of the control-plane static pods, kubeadm's version."""

    @property
    def key(self) -> str:
        return "upgrade-node-state"

    def command(self) -> str:
        kubelet, kubeadm = f"{NODE.bin_dir}/kubelet", f"{NODE.bin_dir}/kubeadm"
        manifests = " ".join(f"{c}" for c in CONTROL_PLANE)
        return (
            f'echo "kubelet $({q(kubelet)} --version 2>/dev/null)"; '
            "pid=$(systemctl show -p MainPID --value kubelet 2>/dev/null); "
            'echo "running ${pid:-0} $( [ "${pid:-0}" != 0 ] && readlink /proc/$pid/exe 2>/dev/null)"; '
            f"for c in {manifests}; do f={q(CP.manifests_dir)}/$c.yaml; "
            '[ -f "$f" ] && echo "manifest $c $(sed -n \'s/^ *image: *//p\' "$f" | head -n1)"; done; '
            f'echo "kubeadm $({q(kubeadm)} version -o short 2>/dev/null)"; true'
        )

    def parse(self, stdout: str, rc: int) -> NodeState:
        return parse_node_state(stdout)


def parse_node_state(stdout: str) -> NodeState:
    kubelet = kubeadm = None
    stale = True
    manifests: dict[str, Version | None] = {}
    for line in stdout.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "kubelet":
            kubelet = Version.parse(rest)
        elif word == "kubeadm":
            kubeadm = Version.parse(rest)
        elif word == "running":
            pid, _, exe = rest.partition(" ")
            stale = pid in ("", "0") or not exe.strip() or exe.strip().endswith("(deleted)")
        elif word == "manifest":
            name, _, image = rest.partition(" ")
            tag = image.strip().rsplit(":", 1)[-1] if ":" in image else ""
            manifests[name] = Version.parse(tag) if tag else None
    return NodeState(kubelet=kubelet, kubelet_stale=stale, manifests=manifests, kubeadm=kubeadm)
