"""Per-host cgroups: nspawn (not our launcher) goes into `keelson-lab/<lab>/<host>` in every hierarchy we can use.

That gives each host its own cgroup.kill (hard power-off), its own memory numbers, and no payload cgroups shared
between hosts (LAB.md pitfall 2). Works on the hybrid layout of this machine and on pure cgroup v2.

On cgroup v1 every controller hierarchy (cpu, cpuacct, cpuset, memory, devices, freezer, blkio, pids, and hugetlb,
net_cls, net_prio, perf_event … where the machine mounts them as v1) gets the host's own folder too, nested under the
caller's own cgroup of that hierarchy. nspawn starts in it, so the host's cgroup namespace is rooted there; the
launcher binds these folders into the host and `keelson-lab-node` mounts them writable over /sys/fs/cgroup/<c>
(provision/lab/node.py): containerd, runc and kubelet make their cgroups below, never above. On pure cgroup v2 the
controllers are enabled in the lab's own folders (`cgroup.subtree_control`), and nspawn delegates them to the host.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from provision.lab.errors import LabError
from provision.lab.paths import DEFAULT_LAB_ROOT, lab_root

CG = Path("/sys/fs/cgroup")
DEFAULT_TOP = "keelson-lab"
# cgroup v2 controllers a lab host gets delegated on a pure v2 machine (those the machine's root offers).
V2_DELEGATED = ("cpu", "cpuset", "io", "memory", "pids", "hugetlb")
# The CPU weight of the lab's own folders in a v1 `cpu` hierarchy. A cgroup weighs like ONE process (1024) against
# the processes at the machine's root, and this machine's processes are not grouped (PID 1 is not systemd): a
# 5-host lab booting beside a parallel build at load 25 took 7-11 s instead of 2-4 s to answer SSH. As 16 busy
# processes it boots as fast as when its processes were at the root, and a busy lab still gets no more than then.
LAB_CPU_SHARES = 16 * 1024


def top() -> str:
    """The cgroup folder of every lab under this lab root. Labs under another KEELSON_LAB_ROOT (a second checkout's
    tests) may reuse lab names, so their folder carries a digest of their root."""
    root = lab_root()
    if root == DEFAULT_LAB_ROOT:
        return DEFAULT_TOP
    return f"{DEFAULT_TOP}-{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]}"


# -- pure parsers ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hierarchy:
    """One cgroup v1 controller hierarchy: its name as /proc/self/cgroup spells it (`cpu`, `cpu,cpuacct`), where the
    machine mounts it, and the caller's own cgroup in it."""

    name: str
    mountpoint: Path
    own: str

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset(self.name.split(","))


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """`/proc/PID/cgroup` → {hierarchy name: path}; the v2 line (`0::/path`) is keyed ``""``. Junk lines are skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[2].startswith("/"):
            out[parts[1]] = parts[2]
    return out


def parse_v1_mounts(mountinfo: str) -> list[tuple[frozenset[str], Path]]:
    """`/proc/self/mountinfo` → (super options, mount point) of every cgroup v1 mount, in order."""
    out = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, extra = head.split(), tail.split()
        if sep and len(fields) >= 5 and len(extra) >= 3 and extra[0] == "cgroup":
            out.append((frozenset(extra[2].split(",")), Path(fields[4].replace("\\040", " "))))
    return out


def v1_hierarchies(proc_cgroup: str, mountinfo: str) -> list[Hierarchy]:
    """Every v1 controller hierarchy the caller is in and the machine mounts, sorted by name. A controller belongs to
    one hierarchy only, so its first mount whose options name all its controllers is where it is mounted (named
    hierarchies such as `name=systemd` are left out: nspawn already gives each host its own)."""
    mounts = parse_v1_mounts(mountinfo)
    out = []
    for name, own in parse_proc_cgroup(proc_cgroup).items():
        if not name or "=" in name:
            continue
        controllers = frozenset(name.split(","))
        mountpoint = next((m for options, m in mounts if controllers <= options), None)
        if mountpoint is not None:
            out.append(Hierarchy(name, mountpoint, own))
    return sorted(out, key=lambda h: h.name)


# -- this machine ----------------------------------------------------------------------------------------------------


def is_v2_only() -> bool:
    return (CG / "cgroup.controllers").exists()


def hierarchies() -> list[Hierarchy]:
    """The machine's v1 controller hierarchies as seen by this process (none on a pure cgroup v2 machine)."""
    if is_v2_only():
        return []
    return v1_hierarchies(Path("/proc/self/cgroup").read_text(), Path("/proc/self/mountinfo").read_text())


def _rel(lab: str, host: str) -> Path:
    return Path(top()) / lab / host


def nested_dirs(lab: str, host: str) -> dict[str, Path]:
    """{hierarchy name: the host's folder in it}: what the host gets writable at /sys/fs/cgroup/<name> (v1 only)."""
    rel = _rel(lab, host)
    return {h.name: h.mountpoint / h.own.lstrip("/") / rel for h in hierarchies()}


def host_dirs(lab: str, host: str) -> list[Path]:
    """Every cgroup dir that holds host `host` of lab `lab`."""
    rel = _rel(lab, host)
    if is_v2_only():
        return [CG / rel]
    dirs = [CG / h / rel for h in ("unified", "systemd") if (CG / h).is_dir()]
    return dirs + list(nested_dirs(lab, host).values())


def v2_dir(lab: str, host: str) -> Path | None:
    """The cgroup-v2 dir of a host (it has cgroup.kill and cgroup.freeze)."""
    return next((d for d in host_dirs(lab, host) if (d / "cgroup.kill").exists() or "unified" in d.parts), None)


MACHINE_LOCK = Path("/run/lock/keelson-lab-cgroups.lock")


def make_host_dirs(lab: str, host: str) -> None:
    """Make the host's cgroup folders (in the launcher, before nspawn starts), under a machine-wide lock: labs
    booting at once share `keelson-lab/`, and a host folder made under a cpuset folder another launcher had made
    but not yet given CPUs stayed empty — moving nspawn into it failed (CI saw "Exception occurred in preexec_fn"
    when two labs booted together)."""
    import fcntl

    v2_only = is_v2_only()
    MACHINE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(MACHINE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for d in host_dirs(lab, host):
            _make(d, v2_only)


def enter(lab: str, host: str) -> None:
    """Move the calling process into the host's cgroups, made by `make_host_dirs` (run in the child right before it
    execs nspawn)."""
    pid = str(os.getpid())
    for d in host_dirs(lab, host):
        (d / "cgroup.procs").write_text(pid)


def _make(d: Path, v2_only: bool) -> None:
    """Create `d` and the lab folders above it. A new cpuset folder has no CPUs or memory nodes: it gets its
    parent's, as kind does for its kubelet cgroups; the lab's folders get LAB_CPU_SHARES. On pure v2 the lab's
    folders pass the controllers down."""
    missing = []
    p = d
    while not p.exists():
        missing.append(p)
        p = p.parent
    lab_folders = (d.parent, d.parent.parent)
    for new in reversed(missing):
        if v2_only:
            _delegate_v2(new.parent)
            new.mkdir(exist_ok=True)
            continue  # an empty v2 cpuset means "the parent's"
        new.mkdir(exist_ok=True)
        if new in lab_folders and (new / "cpu.shares").exists():
            (new / "cpu.shares").write_text(str(LAB_CPU_SHARES))
    if not v2_only:  # also folders made earlier by a launcher that died before giving them CPUs
        for folder in (d.parent.parent, d.parent, d):
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if (folder / knob).exists() and not (folder / knob).read_text().strip():
                    (folder / knob).write_text((folder.parent / knob).read_text())


def _delegate_v2(folder: Path) -> None:
    """Enable in `folder` (one of the lab's own folders, or the machine's root as it already is) what it offers."""
    if folder == CG or not (folder / "cgroup.subtree_control").exists():
        return  # the machine's root stays as the machine has it
    offered = set((folder / "cgroup.controllers").read_text().split())
    enabled = set((folder / "cgroup.subtree_control").read_text().split())
    want = [c for c in V2_DELEGATED if c in offered and c not in enabled]
    if want:
        (folder / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in want))


def populated(lab: str, host: str) -> bool:
    d = v2_dir(lab, host)
    if d is None or not (d / "cgroup.events").exists():
        return False
    return "populated 1" in (d / "cgroup.events").read_text()


def can_kill(lab: str, host: str) -> bool:
    d = v2_dir(lab, host)
    return d is not None and (d / "cgroup.kill").exists()


def kill(lab: str, host: str) -> None:
    """SIGKILL every process of the host at once (SIGKILL on nspawn alone would orphan the container)."""
    d = v2_dir(lab, host)
    if d is None or not can_kill(lab, host):
        raise LabError(f"{host}: no cgroup.kill on this kernel", hint="cgroup v2 with cgroup.kill (Linux ≥ 5.14)")
    if populated(lab, host):
        (d / "cgroup.kill").write_text("1")


def memory_bytes_in(dirs: list[Path]) -> int | None:
    """Working set of the host: memcg usage minus inactive page cache (what `docker stats` reports)."""
    for d in dirs:
        usage = d / "memory.usage_in_bytes"
        if usage.exists():
            stat = dict(line.split() for line in (d / "memory.stat").read_text().splitlines())
            return max(0, int(usage.read_text()) - int(stat.get("total_inactive_file", 0)))
        current = d / "memory.current"
        if current.exists():
            stat = dict(line.split() for line in (d / "memory.stat").read_text().splitlines())
            return max(0, int(current.read_text()) - int(stat.get("inactive_file", 0)))
    return None


def memory_bytes(lab: str, host: str) -> int | None:
    return memory_bytes_in(host_dirs(lab, host))


def remove_dirs(dirs: list[Path]) -> None:
    """Remove the host's (empty) cgroup trees depth-first — with what nested containers made below them —, then the
    lab's and the top folder if they became empty."""
    for d in dirs:
        if not d.exists():
            continue
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir(sub)
        _rmdir(d)
        _rmdir(d.parent)
        _rmdir(d.parent.parent)


def remove(lab: str, host: str) -> None:
    remove_dirs(host_dirs(lab, host))


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (another host or lab) or already gone
        path.rmdir()
