"""Artifact delivery (provision/artifacts/sources.py, roles/engine/fetch.py): digests resolved from a local set and
from a mirror (HTTP and HTTPS with our CA, on loopback), the install script all-or-nothing against a tampered file,
the installed-state fact and parsers."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inventory.kubernetes import Artifacts
from provision.artifacts import layout, manifest
from provision.artifacts.catalog import release
from provision.artifacts.serve import MirrorServer
from provision.artifacts.sources import ArtifactSourceError, Resolver
from roles.engine import fetch as install
from roles.engine.command import Command
from roles.engine.fetch import ArchiveInstall, FileInstall, Installed, Payload
from roles.engine.fetch import archive_ok as _archive_ok
from roles.kubernetes_node.steps import parse_images
from roles.pki.certs import CertSpec, Usage, issue, make_ca

REL = release("v1.37.2")


def fake_set(root: Path) -> Path:
    """A set folder with one binary, one archive and a manifest, in the mirror layout."""
    root.mkdir(parents=True, exist_ok=True)
    kubeadm = layout.kube_binary(REL, "kubeadm").path
    (root / kubeadm).parent.mkdir(parents=True)
    (root / kubeadm).write_bytes(b"#!/bin/sh\necho kubeadm\n")
    man = manifest.Manifest(kubernetes=REL.kubernetes, key="test", go="go-test", versions={})
    man.files.append(manifest.record(root, kubeadm, "binary"))
    manifest.write(root, man)
    return root


def test_local_source_digest_comes_from_the_manifest(tmp_path: Path) -> None:
    root = fake_set(tmp_path / "set")
    resolver = Resolver(Artifacts(source="local", local=str(root)), REL)
    payload = resolver.binary("kubeadm")
    assert payload.sha256 == hashlib.sha256(b"#!/bin/sh\necho kubeadm\n").hexdigest()
    assert payload.path == root / layout.kube_binary(REL, "kubeadm").path and payload.url is None


def test_local_source_without_the_file_is_a_clear_error(tmp_path: Path) -> None:
    root = fake_set(tmp_path / "set")
    resolver = Resolver(Artifacts(source="local", local=str(root)), REL)
    with pytest.raises(Exception, match=r"has no release/v1\.37\.2/bin/linux/amd64/kubelet"):
        resolver.binary("kubelet")


def test_mirror_digest_is_read_from_the_published_sha256_file(tmp_path: Path) -> None:
    root = fake_set(tmp_path / "set")
    with MirrorServer(root, "127.0.0.1") as server:
        resolver = Resolver(Artifacts(source="mirror", mirror=server.url + "/"), REL)
        payload = resolver.binary("kubeadm")
        assert payload.url == f"{server.url}/{layout.kube_binary(REL, 'kubeadm').path}"
        assert payload.sha256 == manifest.Manifest.load(root).files[0].sha256
        with pytest.raises(ArtifactSourceError, match=r"cannot read .*kubelet\.sha256"):
            resolver.binary("kubelet")


def test_mirror_over_https_needs_its_ca(tmp_path: Path) -> None:
    root = fake_set(tmp_path / "set")
    now = dt.datetime.now(dt.UTC)
    ca = make_ca("test mirror CA", now)
    spec = CertSpec(
        "mirror", None, "127.0.0.1", frozenset({Usage.SERVER}), ip_addresses=(ipaddress.ip_address("127.0.0.1"),)
    )
    pair = issue(ca, spec, now)
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    (tmp_path / "tls.crt").write_bytes(pair.cert_pem)
    (tmp_path / "tls.key").write_bytes(pair.key_pem)
    with MirrorServer(root, "127.0.0.1", cert=tmp_path / "tls.crt", key=tmp_path / "tls.key") as server:
        assert server.url.startswith("https://")
        trusted = Resolver(Artifacts(source="mirror", mirror=server.url, ca_file=str(tmp_path / "ca.crt")), REL)
        assert len(trusted.binary("kubeadm").sha256) == 64
        untrusted = Resolver(Artifacts(source="mirror", mirror=server.url), REL)
        with pytest.raises(ArtifactSourceError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusted.binary("kubeadm")


def _run_install(tmp_path: Path, files: list[FileInstall]) -> subprocess.CompletedProcess[str]:
    script = install.script(files, [], None).replace(install.DOWNLOAD_DIR, str(tmp_path / "dl"))
    script = script.replace(install.MARKER_DIR, str(tmp_path / "markers"))  # the digest cache too: never this machine's
    (tmp_path / "dl").mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", "-c", script],
        check=False,
        capture_output=True,
        text=True,
        env={"KEELSON_UPLOADS": str(tmp_path / "up"), "PATH": "/usr/bin:/bin"},
    )


def _upload(tmp_path: Path, name: str, data: bytes) -> Path:
    up = tmp_path / "up"
    up.mkdir(exist_ok=True)
    (up / name).write_bytes(data)
    return up / name


def test_install_is_all_or_nothing_when_one_file_is_tampered(tmp_path: Path) -> None:
    good, bad = b"good binary\n", b"expected content\n"
    good_sha, bad_sha = hashlib.sha256(good).hexdigest(), hashlib.sha256(bad).hexdigest()
    _upload(tmp_path, good_sha, good)
    tampered = b"tampered!\n"
    _upload(tmp_path, bad_sha, tampered)  # arrives under the digest it should have
    dest = tmp_path / "bin"
    files = [
        FileInstall(str(dest / "kubeadm"), Payload("release/x/kubeadm", good_sha, path=Path("unused"))),
        FileInstall(str(dest / "kubelet"), Payload("release/x/kubelet", bad_sha, path=Path("unused"))),
    ]
    proc = _run_install(tmp_path, files)
    assert proc.returncode == install.MISMATCH_RC
    assert f"expected {bad_sha}, got {hashlib.sha256(tampered).hexdigest()}" in proc.stderr
    assert "nothing installed" in proc.stderr
    assert not dest.exists()  # not even the good one


def test_install_puts_every_file_in_place_when_all_check_out(tmp_path: Path) -> None:
    data = b"multi-call binary\n"
    sha = hashlib.sha256(data).hexdigest()
    _upload(tmp_path, sha, data)
    dest = tmp_path / "bin"
    payload = Payload("release/x/kube", sha, path=Path("unused"))
    files = [FileInstall(str(dest / n), payload) for n in ("kubeadm", "kubelet", "kubectl")]
    proc = _run_install(tmp_path, files)
    assert proc.returncode == 0, proc.stderr
    for name in ("kubeadm", "kubelet", "kubectl"):
        assert (dest / name).read_bytes() == data and (dest / name).stat().st_mode & 0o777 == 0o755
    # the same content is one file on disk, linked under the three names
    assert len({(dest / n).stat().st_ino for n in ("kubeadm", "kubelet", "kubectl")}) == 1
    assert (dest / "kubelet").stat().st_nlink == 3
    assert sorted(p.name for p in dest.iterdir()) == ["kubeadm", "kubectl", "kubelet"]  # no temp file left


def test_installed_fact_parses_digests_and_markers() -> None:
    fact = Installed(("/usr/local/bin/kubeadm",), ("/var/lib/keelson/artifacts/cni.tgz.installed",))
    out = (
        f"{'a' * 64}  /usr/local/bin/kubeadm\n"
        "junk line\n"
        "@@marker /var/lib/keelson/artifacts/cni.tgz.installed\n"
        f"{'b' * 64}\n{'c' * 64}  /opt/cni/bin/bridge\n"
    )
    digests, markers = fact.parse(out, 0)
    assert digests == {"/usr/local/bin/kubeadm": "a" * 64}
    archive = ArchiveInstall(Payload("cni-plugins/v/cni.tgz", "b" * 64), (("bridge", "/opt/cni/bin/bridge"),))
    marker = markers["/var/lib/keelson/artifacts/cni.tgz.installed"]
    assert _archive_ok(archive, {"/opt/cni/bin/bridge": "c" * 64}, marker)
    assert not _archive_ok(archive, {"/opt/cni/bin/bridge": "d" * 64}, marker)  # a member changed since
    assert not _archive_ok(archive, {"/opt/cni/bin/bridge": "c" * 64}, None)


def _past_ctime_of(path: Path) -> None:
    """Wait until the kernel's (coarse) ctime clock has moved past `path`'s ctime: a write now changes it."""
    probe, deadline = path.with_name(".probe"), time.monotonic() + 5
    while time.monotonic() < deadline:
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns > path.stat().st_ctime_ns:
            return
    raise AssertionError("the ctime clock did not move in 5 s")


def _gather(fact: Installed) -> dict[str, str]:
    proc = subprocess.run(["bash", "-c", fact.command()], capture_output=True, text=True, check=True)
    return fact.parse(proc.stdout, proc.returncode)[0]


def test_installed_fact_reads_a_digest_from_its_cache_only_while_the_file_is_unchanged(tmp_path: Path) -> None:
    """A no-op must not hash every binary (kubelet is 170 MB) on every run; a changed file is hashed again."""
    binary, other = tmp_path / "kubelet", tmp_path / "missing"
    binary.write_bytes(b"v1" * 1000)
    fact = Installed((str(binary), str(other)), (), cache_dir=str(tmp_path / "cache"), settle_s=0)
    real = hashlib.sha256(b"v1" * 1000).hexdigest()
    assert _gather(fact) == {str(binary): real}  # hashed, and the digest recorded with the file's signature
    entry = tmp_path / "cache" / str(binary).replace("/", "%")
    signature, digest = entry.read_text().split()
    assert digest == real and (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    entry.write_text(f"{signature} {'f' * 64}\n")  # proves the next answer comes from the cache, not sha256sum
    assert _gather(fact) == {str(binary): "f" * 64}

    _past_ctime_of(binary)
    with binary.open("r+b") as handle:  # changed in place, same size and inode: the ctime tells
        handle.write(b"v2")
    assert _gather(fact) == {str(binary): hashlib.sha256(b"v2" + b"v1" * 999).hexdigest()}
    binary.unlink()
    binary.write_bytes(b"v3" * 1000)  # replaced
    assert _gather(fact) == {str(binary): hashlib.sha256(b"v3" * 1000).hexdigest()}


def test_the_install_records_each_file_s_digest_for_the_next_run(tmp_path: Path) -> None:
    """The first no-op after an install must not hash what the install just verified (14 s on a fresh 3+2 lab)."""
    data = b"multi-call binary\n"
    sha = hashlib.sha256(data).hexdigest()
    _upload(tmp_path, sha, data)
    dest = tmp_path / "bin"
    files = [FileInstall(str(dest / n), Payload(f"k/{n}", sha, path=Path("/x"))) for n in ("kubeadm", "kubelet")]
    proc = _run_install(tmp_path, files)
    assert proc.returncode == 0, proc.stderr
    cache = tmp_path / "markers" / "digests"
    assert cache.stat().st_mode & 0o777 == 0o700
    fact = Installed(tuple(f.dest for f in files), (), cache_dir=str(cache), settle_s=3600)  # the fact writes nothing
    for f in files:
        entry = cache / f.dest.replace("/", "%")
        signature, digest = entry.read_text().split()
        assert digest == sha
        entry.write_text(f"{signature} {'e' * 64}\n")  # the next answer comes from here, not from sha256sum
    assert _gather(fact) == {f.dest: "e" * 64 for f in files}


def test_installed_fact_does_not_cache_a_file_changed_just_now(tmp_path: Path) -> None:
    binary = tmp_path / "kubeadm"
    binary.write_bytes(b"fresh")
    fact = Installed((str(binary),), (), cache_dir=str(tmp_path / "cache"), settle_s=3600)
    assert _gather(fact) == {str(binary): hashlib.sha256(b"fresh").hexdigest()}
    assert not (tmp_path / "cache").exists()


def test_ctr_image_listing() -> None:
    out = (
        "REF                          TYPE                                       DIGEST     SIZE    PLATFORMS\n"
        "registry.k8s.io/pause:3.10.2 application/vnd.oci.image.manifest.v1+json sha256:abc 300 KiB linux/amd64\n"
    )
    assert parse_images(out) == {"registry.k8s.io/pause:3.10.2": "sha256:abc"}
    assert parse_images("") == {}


def test_a_failed_install_stops_its_script_as_the_runner_runs_it(tmp_path: Path) -> None:
    """Run as the runner runs it (runner.host_script): a folder in the way of the kubelet's temp file fails its `mv`,
    and the script stops there. It went on, on 2026-12-03, to record the old file's signature with the new digest and
    exit 0 (the upgrade drill's m2: its kubelet never replaced, every later run told it was), when the runner's
    `( script ) || …` made bash ignore `set -e`. Each line now stops the script itself; the runner honours set -e."""
    from roles.engine.runner import host_script

    old, new = b"v1.36.3 kubelet\n", b"v1.37.2 kubelet\n"
    sha = hashlib.sha256(new).hexdigest()
    _upload(tmp_path, sha, new)
    dest = tmp_path / "bin"
    dest.mkdir()
    (dest / "kubelet").write_bytes(old)
    (dest / ".kubelet.keelson").mkdir()  # in the way of the install's temp file
    files = [FileInstall(str(dest / "kubelet"), Payload("release/x/kubelet", sha, path=Path("unused")))]
    command = Command(install.script(files, [], None), description="install kubelet")
    script = host_script([command], "n0nce").replace(install.DOWNLOAD_DIR, str(tmp_path / "dl"))
    script = script.replace(install.MARKER_DIR, str(tmp_path / "markers"))
    (tmp_path / "dl").mkdir()
    proc = subprocess.run(
        ["bash", "-c", script],
        check=False,
        capture_output=True,
        text=True,
        env={"KEELSON_UPLOADS": str(tmp_path / "up"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0 and "cannot overwrite" in proc.stdout + proc.stderr
    assert (dest / "kubelet").read_bytes() == old
    assert not (tmp_path / "markers" / "digests").exists(), "no digest recorded for a file that was not replaced"


def test_installed_fact_stats_every_file_at_once(tmp_path: Path) -> None:
    """One stat for all the files (a fork and exec each was host CPU on every no-op); a name with a newline is
    asked alone."""
    names = ["kubeadm", "kubelet", "new\nline", "back\\slash"]
    paths = []
    for name in names:
        (tmp_path / name).write_bytes(name.encode())
        paths.append(str(tmp_path / name))
    bin_dir, log = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "stat").write_text(f'#!/bin/bash\necho stat >> {log}\nexec {shutil.which("stat")} "$@"\n')
    (bin_dir / "stat").chmod(0o755)
    fact = Installed((*paths, str(tmp_path / "missing")), (), cache_dir=str(tmp_path / "cache"), settle_s=0)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    for _ in range(2):  # hashed and recorded, then read from the cache
        proc = subprocess.run(["bash", "-c", fact.command()], capture_output=True, text=True, check=True, env=env)
        digests = fact.parse(proc.stdout, proc.returncode)[0]
        assert {p: digests.get(p) for p in paths if "\n" not in p} == {
            p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths if "\n" not in p
        }
    assert log.read_text().split() == ["stat"] * 4  # per run: one for all, and one alone for the name with a newline


CTR_LISTING = (
    "REF                          TYPE                                       DIGEST     SIZE    PLATFORMS LABELS\n"
    "registry.k8s.io/pause:3.10.2 application/vnd.oci.image.manifest.v1+json sha256:abc 300 KiB linux/amd64 -\n"
)


def test_images_listing_is_asked_again_only_when_containerd_s_database_changed(tmp_path: Path) -> None:
    """`ctr images ls` once, then its kept output while containerd's metadata database keeps its signature: the same
    bytes and status; asked again after any write to the database, when containerd is not listening, and not kept
    when ctr failed or the database was written just now."""
    import socket

    from roles.kubernetes_node.steps import images_listing

    db, seen, calls = tmp_path / "meta.db", tmp_path / "keelson" / "containerd-images", tmp_path / "calls"
    db.write_bytes(b"bolt")
    _past_ctime_of(db)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "containerd.sock"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    listing_file, rc_file = tmp_path / "listing", tmp_path / "rc"
    (bin_dir / "ctr").write_text(f"#!/bin/bash\necho ctr >> {calls}\ncat {listing_file}\nexit $(cat {rc_file})\n")
    (bin_dir / "ctr").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def listing(settle_s: int = 0, sock_path: Path = tmp_path / "containerd.sock") -> tuple[str, int, int]:
        fact = images_listing(str(db), str(sock_path), str(seen), settle_s)
        proc = subprocess.run(["bash", "-c", fact.command()], capture_output=True, text=True, check=False, env=env)
        asked = len(calls.read_text().split()) if calls.exists() else 0
        return proc.stdout, proc.returncode, asked

    (tmp_path / "listing").write_text(CTR_LISTING)
    (tmp_path / "rc").write_text("0")
    assert listing(settle_s=3600) == (CTR_LISTING, 0, 1)  # the database was written just now: not kept
    assert not seen.exists()
    assert listing() == (CTR_LISTING, 0, 2)
    assert listing() == (CTR_LISTING, 0, 2)  # kept: ctr not run
    assert listing(sock_path=tmp_path / "no.sock") == (CTR_LISTING, 0, 3)  # containerd not listening
    (tmp_path / "listing").write_text(CTR_LISTING.replace("sha256:abc", "sha256:def"))
    with db.open("r+b") as handle:  # an image changed: the database is written (same size, same inode)
        handle.write(b"BOLT")
    _past_ctime_of(db)
    assert listing() == (CTR_LISTING.replace("sha256:abc", "sha256:def"), 0, 4)
    assert listing() == (CTR_LISTING.replace("sha256:abc", "sha256:def"), 0, 4)
    (tmp_path / "listing").write_text("")
    (tmp_path / "rc").write_text("1")
    db.write_bytes(b"bolt, rewritten")
    _past_ctime_of(db)
    assert listing() == ("", 1, 5)  # ctr failed: its status, nothing kept
    assert listing() == ("", 1, 6)
    sock.close()


def test_finding_the_local_set_imports_no_builder() -> None:
    """An apply with source local looks its set up (provision/artifacts/sets.py) without the builder's modules; the
    builder still answers for it."""
    from provision.artifacts import build, sets

    assert build.find is sets.find and build.ArtifactSet is sets.ArtifactSet
    code = "import sys\nfrom provision.artifacts.sets import find\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert not {"provision.artifacts.build", "provision.artifacts.images", "provision.artifacts.oci"} & set(out.split())
