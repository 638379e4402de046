"""`keelson certs check` on real lab hosts: certificates we issue here (one valid a year, one for 10 days, one
already expired, a kubeconfig's embedded client certificate and a kubelet pem holding its key) placed where keelson
and kubeadm put theirs; one command per host; the threshold decides the exit code; no private key leaves the host."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from provision.lab import Lab, faults
from roles.pki.certs import CertSpec, KeyPair, Usage, issue, make_ca
from roles.pki.expiry import HostCertificates

pytestmark = pytest.mark.lab
KEELSON = str(Path(sys.executable).parent / "keelson")
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def clab(lab_factory) -> Lab:
    lab: Lab = lab_factory("ops3", masters=3, workers=0)
    return lab


def leaf(ca: KeyPair, name: str, days: int, start: dt.datetime = NOW) -> KeyPair:
    return issue(
        ca, CertSpec(name=name, host=None, common_name=name, usages=frozenset({Usage.CLIENT}), days=days), start
    )


def place(lab: Lab, host: str, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        b64 = base64.b64encode(data).decode()
        lab.run(host, f"mkdir -p $(dirname {path}) && echo {b64} | base64 -d > {path}")


def certs_check(lab: Lab, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [KEELSON, "certs", "check", "-i", str(lab.inventory_path), "--state-dir", str(tmp / "state"), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def test_certs_check_on_a_host(clab: Lab, tmp_path: Path) -> None:
    ca = make_ca("lab-test-ca", NOW)
    admin, node = leaf(ca, "kubernetes-admin", 365), leaf(ca, "system:node:m2", 200)
    kubeconfig = (
        "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n"
        f"    client-certificate-data: {base64.b64encode(admin.cert_pem).decode()}\n"
        f"    client-key-data: {base64.b64encode(admin.key_pem).decode()}\n"
    )
    short = "/etc/etcd/pki/short-lived.crt"
    gone = "/etc/kubernetes/pki/etcd/expired.crt"
    files = {
        "/etc/etcd/pki/year.crt": leaf(ca, "a-year", 365).cert_pem,
        "/etc/etcd/pki/year.key": leaf(ca, "a-year", 365).key_pem,
        short: leaf(ca, "ten-days", 10).cert_pem,
        gone: leaf(ca, "expired", 2, NOW - dt.timedelta(days=3)).cert_pem,
        "/etc/kubernetes/admin.conf": kubeconfig.encode(),
        "/var/lib/kubelet/pki/kubelet-client-current.pem": node.cert_pem + node.key_pem,
    }
    place(clab, "m2", files)
    try:
        raw = clab.run("m2", HostCertificates("m2").command()).stdout
        assert "PRIVATE KEY" not in raw and raw.count("BEGIN CERTIFICATE") == 5

        proc = certs_check(clab, tmp_path, "--hosts", "m2", "--json")
        assert proc.returncode == 1, proc.stderr
        doc = json.loads(proc.stdout)
        days = {c["path"]: c["days_left"] for c in doc["certificates"]}
        assert days == {
            "/etc/etcd/pki/year.crt": 364,
            short: 9,
            gone: -2,
            "/etc/kubernetes/admin.conf": 364,
            "/var/lib/kubelet/pki/kubelet-client-current.pem": 199,
        }
        assert [(e["path"], e["days_left"]) for e in doc["expiring"]] == [(gone, -2), (short, 9)]
        assert certs_check(clab, tmp_path, "--hosts", "m2", "--warn-days", "5").returncode == 1  # the expired one

        clab.run("m2", f"rm -f {gone}")
        assert certs_check(clab, tmp_path, "--hosts", "m2", "--warn-days", "5").returncode == 0
        table = certs_check(clab, tmp_path, "--hosts", "m2", "--warn-days", "30")
        assert table.returncode == 1
        assert (
            "5 certificates" not in table.stdout and "4 certificates (1 hosts): 1 expire within 30 days" in table.stdout
        )
    finally:
        clab.run("m2", "rm -f " + " ".join(files))


def test_an_unreachable_host_fails_the_check(clab: Lab, tmp_path: Path) -> None:
    faults.power_off(clab, "m3")
    try:
        proc = certs_check(clab, tmp_path, "--json")
        assert proc.returncode == 1
        doc = json.loads(proc.stdout)
        assert set(doc["errors"]) == {"m3"} and "cannot connect" in doc["errors"]["m3"]
        assert doc["expiring"] == [] and doc["unreadable"] == []
    finally:
        faults.power_on(clab, "m3")
