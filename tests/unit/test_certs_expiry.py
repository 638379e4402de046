"""Certificate expiry (roles/pki/expiry.py, `keelson certs check`): the host command run by a local bash over a tree
of certificates we issue here (some short-lived, one expired), its output parsed; the state dir's certificates; the
verdict and exit codes, with hosts behind the test's fake connection pool."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from inventory.loader import parse_inventory
from roles.engine.errors import HostUnreachable
from roles.engine.transport import CommandResult
from roles.pki import kubernetes
from roles.pki.certs import CertSpec, KeyPair, Usage, issue, make_ca
from roles.pki.expiry import OPERATOR, HostCertificates, Source, check, expiring, state_certificates
from roles.pki.store import ensure_etcd_pki
from roles.state import StateDir
from tests.fake_pool import FakePool

ROOT = Path(__file__).parents[2]
LAB = (ROOT / "inventory" / "examples" / "lab.yaml").read_text()
NOW = dt.datetime.now(dt.UTC)
CA = make_ca("test-ca", NOW - dt.timedelta(days=400))


def leaf(name: str, days: int, start: dt.datetime = NOW) -> KeyPair:
    spec = CertSpec(name=name, host=None, common_name=name, usages=frozenset({Usage.CLIENT}), days=days)
    return issue(CA, spec, start)


def kubeconfig(pair: KeyPair) -> str:
    b64 = base64.b64encode
    return (
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: "
        f"{b64(CA.cert_pem).decode()}\n    server: https://10.0.0.100:8443\n  name: c\nusers:\n- name: admin\n  user:\n"
        f"    client-certificate-data: {b64(pair.cert_pem).decode()}\n"
        f"    client-key-data: {b64(pair.key_pem).decode()}\n"
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host's certificate files under a folder: etcd's, the backup agent's, kubeadm's tree, a kubeconfig, the
    kubelet's current client pem (certificate + key) and a rotated old one, and a damaged certificate."""
    root = tmp_path_factory.mktemp("host")
    node = leaf("node", 300)
    files: dict[str, bytes] = {
        "etc/etcd/pki/ca.crt": CA.cert_pem,
        "etc/etcd/pki/server.crt": leaf("server", 365).cert_pem,
        "etc/etcd/pki/server.key": leaf("server", 365).key_pem,
        "etc/etcd/pki/peer.crt": leaf("peer", 10).cert_pem,  # within the 30-day threshold
        "etc/keelson/backup/etcd-client.crt": leaf("backup", 3, NOW - dt.timedelta(days=5)).cert_pem,  # expired
        "etc/kubernetes/pki/apiserver.crt": leaf("kube-apiserver", 365).cert_pem,
        "etc/kubernetes/pki/etcd/ca.crt": CA.cert_pem + leaf("bundled", 40).cert_pem,  # a bundle: two
        "etc/kubernetes/pki/broken.crt": b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        "etc/kubernetes/admin.conf": kubeconfig(leaf("kubernetes-admin", 200)).encode(),
        "var/lib/kubelet/pki/kubelet-client-current.pem": node.cert_pem + node.key_pem,
        "var/lib/kubelet/pki/kubelet-client-2020-01-01-00-00-00.pem": leaf(
            "old", 1, NOW - dt.timedelta(days=90)
        ).cert_pem,
        "var/lib/kubelet/pki/kubelet.crt": leaf("kubelet-serving", 300).cert_pem,
    }
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def fact_for(root: Path, host: str = "m1") -> HostCertificates:
    return HostCertificates(
        host,
        files=(f"{root}/etc/etcd/pki/*.crt", f"{root}/etc/keelson/backup/*.crt", f"{root}/var/lib/kubelet/pki/*.crt",
               f"{root}/var/lib/kubelet/pki/*-current.pem"),
        trees=(f"{root}/etc/kubernetes/pki",),
        kubeconfigs=(f"{root}/etc/kubernetes/*.conf",),
    )  # fmt: skip


def captured(root: Path) -> str:
    proc = subprocess.run(["bash", "-c", fact_for(root).command()], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_host_command_prints_certificates_and_never_a_key(tree: Path) -> None:
    out = captured(tree)
    assert "PRIVATE KEY" not in out and "client-key-data" not in out
    assert "kubelet-client-2020" not in out  # rotated kubelet certificates are not the kubelet's any more


def test_parsed_records(tree: Path) -> None:
    found = fact_for(tree).parse(captured(tree), 0)
    days = {(r.path.removeprefix(str(tree)), r.index): r.days_left(NOW) for r in found.records}
    assert days == {
        ("/etc/etcd/pki/ca.crt", 0): 3250 - 1,  # made 400 days ago for 3650 days
        ("/etc/etcd/pki/server.crt", 0): 364,
        ("/etc/etcd/pki/peer.crt", 0): 9,
        ("/etc/keelson/backup/etcd-client.crt", 0): -3,
        ("/etc/kubernetes/pki/apiserver.crt", 0): 364,
        ("/etc/kubernetes/pki/etcd/ca.crt", 0): 3249,
        ("/etc/kubernetes/pki/etcd/ca.crt", 1): 39,
        ("/etc/kubernetes/admin.conf", 0): 199,
        ("/var/lib/kubelet/pki/kubelet-client-current.pem", 0): 299,
        ("/var/lib/kubelet/pki/kubelet.crt", 0): 299,
    }
    by_path = {r.path.removeprefix(str(tree)): r for r in found.records if r.index == 0}
    admin = by_path["/etc/kubernetes/admin.conf"]
    assert admin.source is Source.KUBECONFIG and admin.subject == "CN=kubernetes-admin" and admin.issuer == "CN=test-ca"
    assert by_path["/etc/keelson/backup/etcd-client.crt"].expired(NOW)
    assert all(r.host == "m1" for r in found.records)
    [broken] = found.unreadable
    assert broken.path == f"{tree}/etc/kubernetes/pki/broken.crt"
    soon = expiring(found.records, 30, NOW)
    assert [r.subject for r in soon] == ["CN=backup", "CN=peer"]  # soonest first, the expired one included
    assert [r.subject for r in expiring(found.records, 0, NOW)] == ["CN=backup"]


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "garbage\n@@KEELSON-CERT\n",
        "@@KEELSON-CERT file relative/path\n-----BEGIN CERTIFICATE-----\n",
        "@@KEELSON-CERT other /etc/x.crt\n",
        "@@KEELSON-CERT file /etc/x.crt\n-----BEGIN CERTIFICATE-----\nAAAA",  # cut off: no END, not a block
    ],
)
def test_junk_output_parses_to_nothing(junk: str) -> None:
    found = HostCertificates("m1").parse(junk, 0)
    assert found.records == [] and found.unreadable == []


def test_state_dir_certificates(tmp_path: Path) -> None:
    cluster = parse_inventory(LAB)
    state = StateDir(tmp_path / "state")
    assert state_certificates(state).records == []
    ensure_etcd_pki(cluster, state)
    kubernetes.ensure(state)
    found = state_certificates(state)
    paths = sorted(r.path for r in found.records)
    assert paths == sorted(
        ["pki/etcd/ca.crt", "pki/kubernetes/ca.crt", "pki/kubernetes/front-proxy-ca.crt"]
        + [f"pki/etcd/{h}/{k}.crt" for h in ("m1", "m2", "m3") for k in ("server", "peer")]
        + [f"pki/etcd/{c}.crt" for c in ("healthcheck-client", "backup-client", "apiserver-etcd-client")]
    )
    assert {r.host for r in found.records} == {OPERATOR} and {r.source for r in found.records} == {Source.STATE}
    assert all(363 <= r.days_left(NOW) <= 3650 for r in found.records)


# -- checking hosts, and the CLI -------------------------------------------------------------------------------


class Canned:
    def __init__(self, host: str, stdout: str) -> None:
        self.host, self.stdout, self.commands_run = host, stdout, 0

    def run(self, script: str, **kw: Any) -> CommandResult:
        self.commands_run += 1
        assert "@@KEELSON-CERT" in script
        return CommandResult(0, self.stdout.replace("@@HOST@@", self.host), "")

    def close(self) -> None:
        return None


def hosts(tree: Path, bad: bool = True) -> dict[str, Any]:
    out = captured(tree)
    good = "@@KEELSON-CERT ".join(
        chunk for chunk in out.split("@@KEELSON-CERT ") if "etcd-client" not in chunk and "peer" not in chunk
        and "broken" not in chunk
    )  # fmt: skip
    fleet: dict[str, Any] = {"m1": Canned("m1", out if bad else good), "m2": Canned("m2", good)}
    fleet["m3"] = (
        HostUnreachable("m3", "cannot connect to 198.18.0.13:22: [Errno 113] No route to host")
        if bad
        else Canned("m3", good)
    )
    fleet["w1"] = Canned("w1", good)
    fleet["w2"] = Canned("w2", "")
    return fleet


def test_check_reads_every_host_once_and_reports_who_could_not_be_read(tree: Path) -> None:
    cluster = parse_inventory(LAB)
    pool = FakePool(cluster)
    pool.transports = hosts(tree)  # type: ignore[misc]
    checked = check(cluster.hosts, pool, None)  # type: ignore[arg-type]
    assert set(checked.found) == {"m1", "m2", "w1", "w2"} and set(checked.errors) == {"m3"}
    assert "No route to host" in checked.errors["m3"]
    assert {n: t.commands_run for n, t in pool.transports.items() if isinstance(t, Canned)} == dict.fromkeys(
        ["m1", "m2", "w1", "w2"], 1
    )
    assert checked.found["w2"].records == [] and len(checked.unreadable) == 1


def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fleet: dict[str, Any], *args: str) -> Any:
    from keelson.cli import app
    from roles.engine import transport

    inventory = tmp_path / "lab.yaml"
    inventory.write_text(LAB)
    monkeypatch.setattr(FakePool, "transports", fleet)
    monkeypatch.setattr(transport, "ConnectionPool", FakePool)
    argv = ["certs", "check", "-i", str(inventory), "--state-dir", str(tmp_path / "state"), *args]
    return CliRunner().invoke(app, argv, catch_exceptions=False, env={"COLUMNS": "250"})


def test_cli_exit_codes_table_and_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tree: Path) -> None:
    ensure_etcd_pki(parse_inventory(LAB), StateDir(tmp_path / "state"))
    healthy = cli(monkeypatch, tmp_path, hosts(tree, bad=False), "--warn-days", "30")
    assert healthy.exit_code == 0, healthy.output
    assert "server.crt" in healthy.output and "pki/etcd/m1/peer.crt" in healthy.output  # hosts and the state dir
    assert "0 expire within 30 days or already did, 0 unreadable, 0 hosts could not be read" in healthy.output
    assert cli(monkeypatch, tmp_path, hosts(tree, bad=False), "--warn-days", "41").exit_code == 1  # the bundle's 2nd

    bad = cli(monkeypatch, tmp_path, hosts(tree), "--json", "--hosts", "m1,m2,m3")
    assert bad.exit_code == 1
    doc = json.loads(bad.output)
    assert doc["ok"] is False and set(doc["errors"]) == {"m3"}
    assert sorted((e["host"], e["path"].rsplit("/", 1)[-1], e["days_left"]) for e in doc["expiring"]) == [
        ("m1", "etcd-client.crt", -3),
        ("m1", "peer.crt", 9),
    ]
    assert len(doc["unreadable"]) == 1 and doc["unreadable"][0]["path"].endswith("broken.crt")
    expired = next(c for c in doc["certificates"] if c["path"].endswith("etcd-client.crt"))
    assert expired["expired"] is True and expired["subject"] == "CN=backup" and expired["source"] == "file"
    assert {c["host"] for c in doc["certificates"]} == {"m1", "m2", OPERATOR}
