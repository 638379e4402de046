"""The etcd PKI on the operator side: SANs, key usages, expiry, reuse, re-issue on SAN change, the CA kept."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from inventory.model import Cluster
from roles.pki.certs import KeyPair, common_name_of, sans_of, signed_by
from roles.pki.store import PKIError, cert_expiries, cert_path, ensure_etcd_pki, key_path, load_pair
from roles.state import StateDir

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def make_cluster(n: int = 3, *, base: int = 11, placement: str = "masters") -> Cluster:
    hosts = [{"name": f"m{i + 1}", "address": f"10.0.0.{base + i}", "roles": ["master"]} for i in range(n)]
    if placement == "dedicated":
        hosts += [{"name": f"e{i + 1}", "address": f"10.0.0.{50 + i}", "roles": ["etcd"]} for i in range(3)]
    return Cluster.model_validate(
        {
            "name": "pki-test",
            "hosts": hosts,
            "control_plane": {"vip": "10.0.0.100/24"},
            "etcd": {"placement": placement},
        }
    )


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir.for_cluster("pki-test", root=tmp_path)


def cert(state: StateDir, name: str, host: str | None = None) -> x509.Certificate:
    pair = load_pair(state, name, host)
    assert pair is not None
    return pair.cert


def eku(c: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_server_cert_has_name_address_and_loopback(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    c = cert(state, "server", "m2")
    assert sans_of(c) == {"DNS:m2", "DNS:localhost", "IP:10.0.0.12", "IP:127.0.0.1", "IP:::1"}
    assert common_name_of(c) == "m2"
    assert eku(c) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_peer_cert_has_no_loopback_and_both_usages(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    c = cert(state, "peer", "m3")
    assert sans_of(c) == {"DNS:m3", "IP:10.0.0.13"}
    assert eku(c) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_client_certs_are_client_only_and_not_ca(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    for name, cn in [
        ("backup-client", "keelson-backup"),
        ("healthcheck-client", "keelson-etcd-healthcheck"),
        ("apiserver-etcd-client", "kube-apiserver-etcd-client"),
    ]:
        c = cert(state, name)
        assert common_name_of(c) == cn
        assert eku(c) == {ExtendedKeyUsageOID.CLIENT_AUTH}
        assert c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        assert sans_of(c) == frozenset()


def test_ca_is_a_ca_and_signs_every_leaf(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    ca = cert(state, "ca")
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is True
    assert bc.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign
    assert ku.crl_sign
    for host in ("m1", "m2", "m3"):
        for name in ("server", "peer"):
            assert signed_by(cert(state, name, host), ca)
    assert signed_by(cert(state, "backup-client"), ca)


def test_leaf_key_usage_is_signature_only(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    ku = cert(state, "server", "m1").extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature
    assert not ku.key_cert_sign


def test_expiry_one_year_for_leaves_ten_for_ca(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    assert cert(state, "server", "m1").not_valid_after_utc == NOW + dt.timedelta(days=365)
    assert cert(state, "ca").not_valid_after_utc == NOW + dt.timedelta(days=3650)
    assert cert(state, "server", "m1").not_valid_before_utc < NOW  # backdated for clock skew


def test_dedicated_etcd_hosts_get_the_member_certs(state):
    ensure_etcd_pki(make_cluster(placement="dedicated"), state, NOW)
    assert load_pair(state, "server", "e1") is not None
    assert load_pair(state, "server", "m1") is None


def test_rerun_reuses_everything_byte_for_byte(state):
    cluster = make_cluster()
    first = ensure_etcd_pki(cluster, state, NOW)
    assert first.ca_created
    assert "m1/server" in first.issued
    before = {p: p.read_bytes() for p in state.path.rglob("*") if p.is_file()}
    again = ensure_etcd_pki(cluster, state, NOW + dt.timedelta(days=10))
    assert not again.changed
    assert {p: p.read_bytes() for p in state.path.rglob("*") if p.is_file()} == before


def test_changed_address_reissues_only_that_hosts_certs(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    old_ca = state.read(cert_path("ca", None))
    old_m1 = state.read(cert_path("server", "m1"))
    moved = Cluster.model_validate(
        make_cluster().model_dump(mode="json")
        | {
            "hosts": [
                {"name": "m1", "address": "10.0.0.11", "roles": ["master"]},
                {"name": "m2", "address": "10.0.0.22", "roles": ["master"]},
                {"name": "m3", "address": "10.0.0.13", "roles": ["master"]},
            ]
        }
    )
    report = ensure_etcd_pki(moved, state, NOW)
    assert set(report.issued) == {"m2/server", "m2/peer"}
    assert "SANs changed" in report.issued["m2/server"]
    assert "IP:10.0.0.22" in sans_of(cert(state, "server", "m2"))
    assert state.read(cert_path("ca", None)) == old_ca
    assert state.read(cert_path("server", "m1")) == old_m1


def test_added_host_gets_certs_and_others_are_kept(state):
    ensure_etcd_pki(make_cluster(3), state, NOW)
    report = ensure_etcd_pki(make_cluster(5), state, NOW)
    assert set(report.issued) == {"m4/server", "m4/peer", "m5/server", "m5/peer"}
    assert not report.ca_created


def test_cert_close_to_expiry_is_renewed(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    report = ensure_etcd_pki(make_cluster(), state, NOW + dt.timedelta(days=340))
    assert "m1/server" in report.issued
    assert "expires" in report.issued["m1/server"]
    assert not report.ca_created


def test_cert_from_another_ca_is_reissued(state, tmp_path):
    other = StateDir.for_cluster("other", root=tmp_path)
    ensure_etcd_pki(make_cluster(), other, NOW)
    ensure_etcd_pki(make_cluster(), state, NOW)
    state.write(cert_path("peer", "m1"), other.read(cert_path("peer", "m1")))
    state.write(key_path("peer", "m1"), other.read(key_path("peer", "m1")))
    report = ensure_etcd_pki(make_cluster(), state, NOW)
    assert report.issued == {"m1/peer": "not signed by the current CA"}


def test_key_not_matching_cert_is_reissued(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    state.write(key_path("server", "m1"), state.read(key_path("server", "m2")))
    report = ensure_etcd_pki(make_cluster(), state, NOW)
    assert report.issued == {"m1/server": "key does not match the certificate"}


def test_lost_ca_is_an_error_not_a_new_ca(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    leaf = state.read(cert_path("server", "m1"))
    state.file(cert_path("ca", None)).unlink()
    state.file(key_path("ca", None)).unlink()
    with pytest.raises(PKIError) as err:
        ensure_etcd_pki(make_cluster(), state, NOW)
    assert err.value.hint
    assert "never" in err.value.hint or "restore" in err.value.hint
    assert not state.exists(cert_path("ca", None))
    assert state.read(cert_path("server", "m1")) == leaf


def test_half_a_ca_is_an_error(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    state.file(key_path("ca", None)).unlink()
    with pytest.raises(PKIError, match=r"ca\.key"):
        ensure_etcd_pki(make_cluster(), state, NOW)


def test_ca_key_swapped_is_an_error(state, tmp_path):
    other = StateDir.for_cluster("other", root=tmp_path)
    ensure_etcd_pki(make_cluster(), other, NOW)
    ensure_etcd_pki(make_cluster(), state, NOW)
    state.write(key_path("ca", None), other.read(key_path("ca", None)))
    with pytest.raises(PKIError, match="does not match"):
        ensure_etcd_pki(make_cluster(), state, NOW)


def test_files_are_private(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    for p in state.path.rglob("*"):
        mode = stat.S_IMODE(os.stat(p).st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), p


def test_keys_are_pkcs8_ecdsa(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    pair = load_pair(state, "peer", "m1")
    assert pair is not None
    assert pair.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert "key_pem" not in repr(pair)


def test_cert_expiries_lists_every_recorded_certificate(state):
    ensure_etcd_pki(make_cluster(), state, NOW)
    infos = cert_expiries(state)
    ids = {(i.name, i.host) for i in infos}
    assert ("ca", None) in ids
    assert ("server", "m3") in ids
    assert ("apiserver-etcd-client", None) in ids
    assert len(infos) == 1 + 2 * 3 + 3
    by = {(i.name, i.host): i for i in infos}
    assert by[("peer", "m1")].not_after == NOW + dt.timedelta(days=365)
    recorded = json.loads(state.read("pki/inventory.json"))
    assert all("BEGIN" not in json.dumps(e) for e in recorded["certificates"])


def test_cert_expiries_empty_without_pki(state):
    assert cert_expiries(state) == []


def test_ipv6_member_address_in_sans(state):
    cluster = Cluster.model_validate(
        {
            "name": "v6",
            "hosts": [{"name": f"m{i}", "address": f"fd00::{i}", "roles": ["master"]} for i in (1, 2, 3)],
            "control_plane": {"vip": "10.0.0.100/24"},
            "non_ha": False,
        }
    )
    ensure_etcd_pki(cluster, state, NOW)
    assert f"IP:{ipaddress.ip_address('fd00::2')}" in sans_of(cert(state, "peer", "m2"))


def test_keypair_roundtrip_properties():
    from roles.pki.certs import make_ca

    ca = make_ca("x", NOW)
    again = KeyPair(ca.cert_pem, ca.key_pem)
    assert again.cert.subject == ca.cert.subject


def test_plan_writes_nothing_and_agrees_with_ensure(state):
    from roles.pki.store import plan_etcd_pki

    planned = plan_etcd_pki(make_cluster(), state, NOW)
    assert planned.ca_created
    assert not state.path.exists()
    done = ensure_etcd_pki(make_cluster(), state, NOW)
    assert set(done.issued) == set(planned.issued)
    assert not plan_etcd_pki(make_cluster(), state, NOW).changed
