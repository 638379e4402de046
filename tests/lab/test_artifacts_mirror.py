"""Artifact delivery from a mirror, for real: keelson's mirror server (`provision/artifacts/serve.py`, the same code as
`keelson artifacts serve`) serves a built set over HTTPS on the lab bridge with a certificate from a test CA; lab
hosts download kubeadm, kubelet, kubectl, crictl, the CNI plugins and etcd from it, each checked against the
mirror's published sha256, and import the images. A tampered binary (its .sha256 left as published) is refused
with the expected and actual digests, and nothing is installed."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import shutil
from pathlib import Path

import pytest
import yaml

from provision.artifacts import layout
from provision.artifacts.catalog import Release, release
from provision.artifacts.serve import MirrorServer
from provision.lab import Lab
from roles.pki.certs import CertSpec, Usage, issue, make_ca
from tests.conftest import LabFactory
from tests.kube_helpers import artifact_set, keelson, run_finished

pytestmark = [pytest.mark.lab, pytest.mark.artifacts]


def set_release() -> Release:
    return release(artifact_set().manifest.kubernetes)


NODE_PHASES = ["--only", "prepare", "--only", "container", "--only", "kubernetes"]


@pytest.fixture(scope="module")
def two(lab_factory: LabFactory) -> Lab:
    artifact_set()
    return lab_factory("t-mirror", masters=1, workers=1)


def tls(tmp: Path, address: str) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca = make_ca("keelson test mirror CA", now)
    spec = CertSpec("mirror", None, address, frozenset({Usage.SERVER}), ip_addresses=(ipaddress.ip_address(address),))
    pair = issue(ca, spec, now)
    paths = tmp / "ca.crt", tmp / "tls.crt", tmp / "tls.key"
    for path, data in zip(paths, (ca.cert_pem, pair.cert_pem, pair.key_pem), strict=True):
        path.write_bytes(data)
    return paths


def mirror_inventory(lab: Lab, tmp: Path, url: str, ca: Path, name: str) -> Path:
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["kubernetes"] = {
        "version": artifact_set().manifest.kubernetes,
        "artifacts": {"source": "mirror", "mirror": url, "ca_file": str(ca)},
    }
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_hosts_install_from_an_https_mirror_and_refuse_a_tampered_binary(two: Lab, tmp_path: Path) -> None:
    ca, cert, key = tls(tmp_path, two.gateway)
    good = artifact_set().path
    with MirrorServer(good, two.gateway, cert=cert, key=key) as server:
        inventory = mirror_inventory(two, tmp_path, server.url, ca, "mirror.yaml")
        run = run_finished(
            keelson(
                "apply", "-i", str(inventory), "--json", "--hosts", "m1", *NODE_PHASES, state=tmp_path / "s1"
            ).stdout
        )
        assert run["ok"], run
        kubeadm = two.run("m1", "sha256sum /usr/local/bin/kubeadm && kubeadm version -o short").stdout.split()
        assert kubeadm[0] == artifact_set().manifest.file(layout.kube_binary(set_release(), "kubeadm").path).sha256
        again = run_finished(
            keelson(
                "apply", "-i", str(inventory), "--json", "--hosts", "m1", *NODE_PHASES, state=tmp_path / "s1"
            ).stdout
        )
        assert again["hosts"]["m1"]["changed"] == 0  # installed digests match: nothing downloaded again

    tampered = tmp_path / "tampered"
    shutil.copytree(good, tampered, copy_function=shutil.copy)
    crictl = tampered / layout.crictl_archive(set_release()).path  # a payload of its own (kube binaries share one)
    crictl.write_bytes(crictl.read_bytes() + b"\x00tampered")
    expected = (crictl.parent / (crictl.name + ".sha256")).read_text().split()[0]
    actual = hashlib.sha256(crictl.read_bytes()).hexdigest()
    with MirrorServer(tampered, two.gateway, cert=cert, key=key) as server:
        inventory = mirror_inventory(two, tmp_path, server.url, ca, "tampered.yaml")
        failed = keelson(
            "apply", "-i", str(inventory), "--hosts", "w1", *NODE_PHASES, state=tmp_path / "s2", check=False
        )
    assert failed.returncode != 0
    message = " ".join((failed.stdout + failed.stderr).split())
    assert f"expected {expected}, got {actual}" in message and "nothing installed" in message
    left = two.run(
        "w1", "ls /usr/local/bin/kubeadm /usr/local/bin/kubelet /usr/local/bin/crictl /opt/cni/bin/bridge", check=False
    )
    assert left.returncode != 0 and "No such file" in left.stderr  # not even the files that checked out
