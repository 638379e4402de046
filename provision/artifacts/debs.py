"""The userland some images need — iptables and ipset for kube-proxy, flannel and kube-router; busybox for shell
tools — taken from Debian packages through the machine's own apt (its configured mirror; nothing hard-coded),
unpacked into a part. Upstream images carry the same: kube-proxy's and flannel's images are Debian-based.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from provision.artifacts.gotool import BuildError
from provision.artifacts.parts import Part, produce

IPTABLES = (
    "iptables",
    "libxtables12",
    "libip4tc2",
    "libip6tc2",
    "libnftnl11",
    "libmnl0",
    "libnetfilter-conntrack3",
    "libnfnetlink0",
    "libc6",
    "netbase",
    "ipset",
    "libipset13",
)
BUSYBOX = ("busybox-static",)
SKIP = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/locale")


def _run(argv: list[str], cwd: Path) -> str:
    if shutil.which(argv[0]) is None:
        raise BuildError(f"{argv[0]} is not installed: the images take their userland from Debian packages")
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"`{' '.join(argv[:4])}…` failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    return proc.stdout


def deb_part(name: str, packages: tuple[str, ...]) -> Part:
    """`packages` downloaded with apt-get and unpacked (docs left out) into the part's `root/`."""
    digest = hashlib.sha256("\n".join(packages).encode()).hexdigest()[:16]

    def make(work: Path) -> dict[str, object]:
        debs, root = work / "debs", work / "root"
        debs.mkdir()
        root.mkdir()
        _run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *packages], cwd=debs)
        versions = {}
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(root)], cwd=work)
            package, version = deb.name.split("_")[:2]
            versions[package] = version.replace("%3a", ":")
        for sub in SKIP:
            shutil.rmtree(root / sub, ignore_errors=True)
        shutil.rmtree(debs)
        return {"packages": versions}

    return produce(name, digest, make)


def iptables_part() -> Part:
    return deb_part("debian-iptables", IPTABLES)


def busybox_part() -> Part:
    return deb_part("debian-busybox", BUSYBOX)
