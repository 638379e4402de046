"""The lab's base root filesystem: one debootstrap, cached by the hash of its recipe, shared read-only by all hosts.

Every package a later role installs is already here, so the roles' package steps find them installed: lab hosts
have no network beyond the lab bridge.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import subprocess
import time
from pathlib import Path

from provision.lab.errors import LabError
from provision.lab.paths import cache_root

log = logging.getLogger(__name__)

SUITE = "bookworm"
PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "openssh-client",
    "sudo",
    "procps",
    "less",
    "kmod",
    "iproute2",
    "iputils-ping",
    "iptables",
    "conntrack",
    "socat",
    "ebtables",
    "ethtool",
    "curl",
    "ca-certificates",
    "openssl",
    "haproxy",
    "keepalived",
    "nginx",
    "libnginx-mod-stream",
    "etcd-server",
    "etcd-client",
    "containerd",
    "python3",
    "python3-boto3",
    "python3-yaml",
    "cron",
    "gzip",
    "zstd",
    "systemd-timesyncd",
)
# Services roles start themselves; the base keeps them off so a fresh host is really fresh.
DISABLED_UNITS: tuple[str, ...] = (
    "etcd.service",
    "haproxy.service",
    "keepalived.service",
    "nginx.service",
    "containerd.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-timesyncd.service",
)
RECIPE_VERSION = "4"  # bump when the tweaks below change

HOSTKEY_UNIT = """\
[Unit]
Description=Generate the ed25519 SSH host key on first boot (keelson lab)
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
"""
SSH_DROPIN = "[Unit]\nRequires=ssh-hostkey-ed25519.service\nAfter=ssh-hostkey-ed25519.service\n"
SSHD_CONFIG = "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n"
# Files shipped into the rootfs as they are (path in the tree = path in the rootfs): the lab-only node adjustments.
ROOTFS_FILES = Path(__file__).with_name("rootfs_files")
ENABLED_UNITS: tuple[str, ...] = ("systemd-networkd.service", "keelson-lab-node.service")


def rootfs_files() -> list[Path]:
    return sorted(p for p in ROOTFS_FILES.rglob("*") if p.is_file())


def recipe_hash() -> str:
    text = "\n".join([SUITE, RECIPE_VERSION, *PACKAGES, *DISABLED_UNITS, *ENABLED_UNITS, HOSTKEY_UNIT, SSH_DROPIN])
    digest = hashlib.sha256((text + SSHD_CONFIG).encode())
    for f in rootfs_files():
        digest.update(f"\n{f.relative_to(ROOTFS_FILES)} {f.stat().st_mode & 0o777:o}\n".encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def base_dir() -> Path:
    return cache_root() / f"base-{recipe_hash()}"


def mirror_from_sources(deb822: list[str], one_line: list[str]) -> str | None:
    """The Debian mirror apt already uses: the first non-security `URIs:` of deb822 files, else a `deb` line."""
    for text in deb822:
        for line in text.splitlines():
            if line.strip().lower().startswith("uris:"):
                for uri in line.split(":", 1)[1].split():
                    if "security" not in uri:
                        return uri
    for text in one_line:
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb":
                found = next((p for p in parts[1:] if "://" in p), None)
                if found and "security" not in found:
                    return found
    return None


def machine_mirror(apt: Path = Path("/etc/apt")) -> str:
    deb822 = [p.read_text() for p in sorted((apt / "sources.list.d").glob("*.sources"))]
    lists = [
        p.read_text() for p in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))] if p.exists()
    ]
    mirror = mirror_from_sources(deb822, lists)
    if not mirror:
        raise LabError(f"no Debian mirror found in {apt}/sources.list{{,.d}}", hint="configure apt, then retry")
    return mirror


def ensure_base(user: Path | None = None) -> Path:
    """The cached base for the current recipe, built if missing (under a lock: concurrent `lab up`s build once).

    `user` (a lab's state file) is recorded as using the base before the lock is released: a build of another
    recipe removes only bases no live lab records (labs under other KEELSON_LAB_ROOTs share this cache)."""
    target = base_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        if (target / ".keelson-complete").exists():
            _record_user(target, user)
            return target
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".keelson-complete").exists():
            _build(target)
            _remove_stale(target)
        _record_user(target, user)
    return target


def _users() -> Path:
    return cache_root() / "users"


def _record_user(base: Path, user: Path | None) -> None:
    if user is None:
        return
    _users().mkdir(exist_ok=True)
    name = hashlib.sha256(str(user.resolve()).encode()).hexdigest()[:16]
    (_users() / name).write_text(json.dumps({"base": str(base.resolve()), "lab": str(user.resolve())}))


def forget_user(user: Path) -> None:
    """A lab that went down no longer holds its base."""
    name = hashlib.sha256(str(user.resolve()).encode()).hexdigest()[:16]
    (_users() / name).unlink(missing_ok=True)


def _held(base: Path) -> bool:
    """Some lab whose state still exists recorded this base (a stopped lab's hosts boot from it again)."""
    for entry in _users().glob("*") if _users().is_dir() else []:
        try:
            data = json.loads(entry.read_text())
        except (OSError, ValueError):
            continue
        if data.get("base") == str(base.resolve()) and Path(str(data.get("lab"))).exists():
            return True
    return False


def _build(target: Path) -> None:
    work = target.with_name(target.name + ".partial")
    if work.exists():
        shutil.rmtree(work)
    mirror = machine_mirror()
    log.info("building the lab rootfs %s from %s (once; about a minute)", target.name, mirror)
    started = time.monotonic()
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(work), mirror]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise LabError(
            f"debootstrap failed (exit {proc.returncode}):\n{tail}", hint="check the apt mirror is reachable"
        )
    _tweak(work)
    (work / ".keelson-complete").write_text(recipe_hash() + "\n")
    work.rename(target)
    log.info("rootfs built in %.0f s", time.monotonic() - started)


def _tweak(base: Path) -> None:
    """LAB.md's tweaks: every host gets its own machine-id and host key on first boot; no DNS; networkd on; the
    lab-only node adjustments (provision/lab/node.py) shipped and enabled."""
    (base / "etc" / "hostname").unlink(missing_ok=True)
    for key in (base / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (base / "etc" / "machine-id").write_text("")
    dbus_id = base / "var" / "lib" / "dbus" / "machine-id"
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    system = base / "etc" / "systemd" / "system"
    (system / "ssh-hostkey-ed25519.service").write_text(HOSTKEY_UNIT)
    (system / "ssh.service.d").mkdir(parents=True, exist_ok=True)
    (system / "ssh.service.d" / "lab.conf").write_text(SSH_DROPIN)
    (base / "etc" / "ssh" / "sshd_config.d" / "lab.conf").write_text(SSHD_CONFIG)
    (base / "etc" / "resolv.conf").unlink(missing_ok=True)
    (base / "etc" / "resolv.conf").write_text("# keelson lab: no DNS, names are in /etc/hosts\n")
    (base / "etc" / "default" / "locale").touch()
    root_ssh = base / "root" / ".ssh"
    root_ssh.mkdir(mode=0o700, exist_ok=True)
    for f in rootfs_files():
        target = base / f.relative_to(ROOTFS_FILES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        target.chmod(f.stat().st_mode & 0o777)
    subprocess.run(["systemctl", f"--root={base}", "enable", *ENABLED_UNITS], check=True, capture_output=True)
    subprocess.run(
        ["systemctl", f"--root={base}", "disable", *DISABLED_UNITS], check=False, capture_output=True
    )  # some units may not exist: that is fine


def _remove_stale(keep: Path) -> None:
    for old in keep.parent.glob("base-*"):
        if old != keep and old.is_dir() and not _in_use(old) and not _held(old):
            log.info("removing stale rootfs %s", old.name)
            shutil.rmtree(old, ignore_errors=True)


def _in_use(base: Path) -> bool:
    """An overlay mounted on this base, by any path to it: labs under other KEELSON_LAB_ROOTs reach the shared cache
    through their own `cache` symlink, so the mount table names it by another path."""
    real = base.resolve()
    for line in Path("/proc/self/mounts").read_text().splitlines():
        for option in line.split()[3].split(",") if len(line.split()) > 3 else []:
            lower = option.removeprefix("lowerdir=").split(":") if option.startswith("lowerdir=") else []
            if any(Path(d).resolve() == real for d in lower):
                return True
    return False
