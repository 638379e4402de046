"""What a lab host needs beyond a plain systemd-nspawn container to run nested containers the way kubelet does.

kind's node entrypoint solves the same problem under Docker with small named fixes; these are the lab's. Each is one
named adjustment, and the only place that deviation lives: roles run unchanged on lab hosts and real machines.

On the machine, passed to systemd-nspawn by the launcher (`nspawn_options`):
- `own_cgroups`: the host's own folder in every cgroup v1 controller hierarchy (made by `cgroups.enter`, so nspawn
  and the host's cgroup namespace start there), bound into the host at /run/keelson-lab/cgroup/<c>. nspawn mounts
  /sys/fs/cgroup/<c> read-only and after its binds, so the host mounts them in place itself (`fix_cgroup` below).
- `all_capabilities`: `--capability=all`, what root has on a real machine: pods may ask for more than nspawn's
  default set (databases CAP_IPC_LOCK, eBPF CNIs CAP_BPF, …) and runc can only grant what the host has. Except the two
  whose only use is machine-wide state, which a real host owns and a lab host does not: CAP_SYS_MODULE (the kernel's
  modules: systemd's modprobe@ units and kube-proxy would load them into the machine's kernel) and CAP_SYS_TIME (the
  clock). The machine's own bounding set still applies (here it lacks CAP_SYS_RESOURCE).
- `syscall_filter`: nspawn's allow-list plus `@keyring` (runc puts each container in its own session keyring) and
  `bpf` (CNIs and runc's cgroup-v2 device filter).
- `plain_disk`: /var/lib/containerd and /var/lib/kubelet are plain folders of the machine (`hosts/<host>/disk/…`),
  not the host's overlay: containerd's overlayfs snapshots cannot have an overlayfs as their upper layer. They
  survive reboots and `lab kill`/`start` like a disk, and `lab down` removes them with the host.

In the host, early in its boot (`keelson-lab-node.service` runs /usr/local/sbin/keelson-lab-node, shipped in the
rootfs from `rootfs_files/`): `fix_cgroup` (those folders over /sys/fs/cgroup/<c>, writable), `fix_kmsg`
(/dev/kmsg → /dev/console, for kubelet's OOM watcher), `fix_mount` (`mount --make-rshared /`), and
`show_kubelet_kernel_settings` (kubelet's six kernel settings shown read-only where the machine's differ: the kernel
is shared, its settings are not the lab's to change).

Not needed here, unlike kind: `select_iptables` (each host has its own empty network namespace, Debian's default
nft backend stays), writable /proc/sys (`SYSTEMD_NSPAWN_API_VFS_WRITABLE`: it would let kubelet and kube-proxy
change the machine's kernel; `net.*` is the host's own and already writable), fake DMI ids (this machine has no DMI),
`fix_machine_id` (the rootfs has an empty machine-id: each boot makes its own).
"""

from __future__ import annotations

from pathlib import Path

from provision.lab import cgroups

STAGE = Path("/run/keelson-lab")
PLAIN_DIRS: tuple[str, ...] = ("/var/lib/containerd", "/var/lib/kubelet")
SYSCALLS: tuple[str, ...] = ("@keyring", "bpf")
# The two capabilities whose only use is machine-wide state: the kernel's modules and the clock.
MACHINE_WIDE_CAPABILITIES: tuple[str, ...] = ("CAP_SYS_MODULE", "CAP_SYS_TIME")


def disk_dir(host_dir: Path, path: str) -> Path:
    """The machine folder behind one of PLAIN_DIRS."""
    return host_dir / "disk" / path.lstrip("/")


def own_cgroups(cgroup_dirs: dict[str, Path]) -> list[str]:
    return [f"--bind={d}:{STAGE}/cgroup/{name}" for name, d in sorted(cgroup_dirs.items())]


def all_capabilities() -> list[str]:
    return ["--capability=all", f"--drop-capability={','.join(MACHINE_WIDE_CAPABILITIES)}"]


def syscall_filter() -> list[str]:
    return [f"--system-call-filter={' '.join(SYSCALLS)}"]


def plain_disk(host_dir: Path) -> list[str]:
    return [f"--bind={disk_dir(host_dir, p)}:{p}" for p in PLAIN_DIRS]


def nspawn_options(cgroup_dirs: dict[str, Path], host_dir: Path) -> list[str]:
    """Every machine-side adjustment, as systemd-nspawn options."""
    return [*own_cgroups(cgroup_dirs), *all_capabilities(), *syscall_filter(), *plain_disk(host_dir)]


def prepare(lab: str, host: str, host_dir: Path) -> list[str]:
    """Make the host's plain folders and return the nspawn options. The cgroup folders are made by `cgroups.enter`
    in the child that execs nspawn (same cgroups as the caller, so the same folders)."""
    for p in PLAIN_DIRS:
        d = disk_dir(host_dir, p)
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o711)  # as containerd makes its root: others may pass through, not list
    return nspawn_options(cgroups.nested_dirs(lab, host), host_dir)
