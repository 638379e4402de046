"""Facts of a Kubernetes node that the engine's generic facts do not cover.

`CgroupVersion`: which cgroup hierarchy the host boots with. kubelet's cgroup driver settings and, from Kubernetes
1.35, `failCgroupV1: false` depend on it. Read off the file system type of /sys/fs/cgroup: `cgroup2fs` is the
unified hierarchy (v2); `tmpfs` holds v1 controller hierarchies (v1), "hybrid" when /sys/fs/cgroup/unified is a
cgroup2 mount beside them (systemd's hybrid layout, as on this project's lab machine).

`CapabilityBounds`: what root can hold on the host; without CAP_SYS_RESOURCE (container hosts, the lab here)
containerd's CRI needs `restrict_oom_score_adj = true` (`can_lower_oom_score`).
"""

from __future__ import annotations

from dataclasses import dataclass

from roles.engine.facts import Fact


@dataclass(frozen=True)
class CgroupInfo:
    version: int | None  # 1, 2, or None when the host shows neither layout
    hybrid: bool = False  # v1 controllers with a cgroup2 mount at /sys/fs/cgroup/unified

    @property
    def label(self) -> str:
        if self.version is None:
            return "unknown"
        return "v1 (hybrid)" if self.hybrid else f"v{self.version}"


@dataclass(frozen=True)
class CgroupVersion(Fact[CgroupInfo]):
    @property
    def key(self) -> str:
        return "cgroup-version"

    def command(self) -> str:
        # one line per path; a missing /sys/fs/cgroup/unified prints nothing for it
        return "stat -fc 'root %T' /sys/fs/cgroup; stat -fc 'unified %T' /sys/fs/cgroup/unified; true"

    def parse(self, stdout: str, rc: int) -> CgroupInfo:
        types = {}
        for line in stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("root", "unified"):
                types[parts[0]] = parts[1]
        root = types.get("root")
        if root == "cgroup2fs":
            return CgroupInfo(2)
        if root == "tmpfs":
            return CgroupInfo(1, hybrid=types.get("unified") == "cgroup2fs")
        return CgroupInfo(None)


CAP_SYS_RESOURCE = 24


@dataclass(frozen=True)
class CapabilityBounds(Fact[int | None]):
    """The capability bounding set of the host's init (PID 1): every capability a root process there can hold; None
    when unreadable. A real machine has them all; a container host may not. Without CAP_SYS_RESOURCE nothing on the
    host can lower an `oom_score_adj`: containerd's CRI must then run with `restrict_oom_score_adj = true`, or every
    pod sandbox (oom_score_adj -998) fails in runc with "can't get final child's PID from pipe: EOF" — seen on this
    project's lab hosts, whose machine has no CAP_SYS_RESOURCE to give them."""

    @property
    def key(self) -> str:
        return "capability-bounds"

    def command(self) -> str:
        return "grep -m1 '^CapBnd:' /proc/1/status"

    def parse(self, stdout: str, rc: int) -> int | None:
        parts = stdout.split()
        if rc != 0 or len(parts) != 2 or parts[0] != "CapBnd:":
            return None
        try:
            return int(parts[1], 16)
        except ValueError:
            return None


def can_lower_oom_score(bounds: int | None) -> bool:
    """Whether root on the host may lower oom_score_adj (unknown counts as yes: a real machine's default)."""
    return bounds is None or bool(bounds >> CAP_SYS_RESOURCE & 1)
