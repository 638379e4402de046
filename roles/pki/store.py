"""The etcd PKI of one cluster in its operator-side state dir: made once, reused, re-issued only when it no longer
fits the inventory. The CA is never regenerated silently: a missing or mismatched CA next to existing certificates
is an error with a hint, not a fresh CA that would cut every member off from its peers.

State layout (dirs 0700, files 0600, via `StateDir.write`):
    pki/etcd/ca.crt, ca.key
    pki/etcd/<host>/server.crt, server.key, peer.crt, peer.key      one pair each per etcd member
    pki/etcd/<client>.crt, <client>.key                             healthcheck-client, backup-client,
                                                                    apiserver-etcd-client
    pki/inventory.json                                              what was issued, for `cert_expiries`
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
from dataclasses import dataclass, field

from inventory.errors import KeelsonError
from inventory.model import Cluster
from roles.engine.nodes import NodeIPs
from roles.pki.certs import CertSpec, KeyPair, Usage, issue, key_matches, make_ca, reissue_reason
from roles.pki.defaults import DEFAULTS as PKI
from roles.state import StateDir

CA = "ca"
HEALTHCHECK_CLIENT = "healthcheck-client"
BACKUP_CLIENT = "backup-client"
APISERVER_ETCD_CLIENT = "apiserver-etcd-client"
SERVER = "server"
PEER = "peer"

_BOTH = frozenset({Usage.SERVER, Usage.CLIENT})
_CLIENT = frozenset({Usage.CLIENT})


class PKIError(KeelsonError):
    """The operator-side PKI is inconsistent (a lost or mismatched CA)."""


@dataclass(frozen=True)
class CertInfo:
    name: str
    host: str | None
    not_after: dt.datetime
    path: str = ""


@dataclass
class PKIReport:
    """What `ensure_etcd_pki` did: certificate ids ("m1/server", "backup-client") with the reason for each."""

    ca_created: bool = False
    issued: dict[str, str] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.ca_created or bool(self.issued)


def etcd_specs(cluster: Cluster, nodes: NodeIPs | None = None) -> list[CertSpec]:
    """Every leaf certificate the etcd cluster needs, from the inventory and the run's node IPs (the SANs)."""
    specs: list[CertSpec] = []
    loopback = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    node_ips = NodeIPs.of(cluster, nodes)
    for host in cluster.etcd_members:
        ip = node_ips.ip(host)
        names = (host.name, host.address) if isinstance(host.address, str) else (host.name,)
        specs.append(
            CertSpec(
                name=SERVER,
                host=host.name,
                common_name=host.name,
                usages=_BOTH,  # etcd 3.4's grpc-gateway dials itself with the server cert as a client cert
                dns_names=(*names, "localhost"),
                ip_addresses=(ip, *(lo for lo in loopback if lo != ip)),
            )
        )
        specs.append(
            CertSpec(name=PEER, host=host.name, common_name=host.name, usages=_BOTH, dns_names=names,
                     ip_addresses=(ip,))
        )  # fmt: skip
    specs.append(CertSpec(name=HEALTHCHECK_CLIENT, host=None, common_name="keelson-etcd-healthcheck", usages=_CLIENT))
    specs.append(CertSpec(name=BACKUP_CLIENT, host=None, common_name="keelson-backup", usages=_CLIENT))
    specs.append(
        CertSpec(
            name=APISERVER_ETCD_CLIENT,
            host=None,
            common_name="kube-apiserver-etcd-client",
            organization="system:masters",
            usages=_CLIENT,
        )
    )
    return specs


def cert_path(name: str, host: str | None) -> str:
    """State-relative path of a certificate (the key is the same with `.key`)."""
    return f"{PKI.etcd_state_dir}/{host}/{name}.crt" if host else f"{PKI.etcd_state_dir}/{name}.crt"


def key_path(name: str, host: str | None) -> str:
    return cert_path(name, host)[: -len(".crt")] + ".key"


def load_pair(state: StateDir, name: str, host: str | None = None) -> KeyPair | None:
    crt, key = cert_path(name, host), key_path(name, host)
    if not state.exists(crt) or not state.exists(key):
        return None
    return KeyPair(state.read(crt), state.read(key))


def _private_dirs(state: StateDir, relative_file: str) -> None:
    """Create each folder on the way to `relative_file` with 0700 (`StateDir.write` makes intermediate folders with
    the umask's mode, only the last one 0700)."""
    current = state.ensure()
    for part in relative_file.split("/")[:-1]:
        current = current / part
        current.mkdir(mode=0o700, exist_ok=True)
        current.chmod(0o700)


def _write(state: StateDir, relative_file: str, data: bytes) -> None:
    _private_dirs(state, relative_file)
    state.write(relative_file, data)


def _store(state: StateDir, name: str, host: str | None, pair: KeyPair) -> None:
    _write(state, key_path(name, host), pair.key_pem)
    _write(state, cert_path(name, host), pair.cert_pem)


def _ca(cluster: Cluster, state: StateDir, now: dt.datetime, report: PKIReport, write: bool) -> KeyPair:
    crt, key = cert_path(CA, None), key_path(CA, None)
    has_crt, has_key = state.exists(crt), state.exists(key)
    where = state.file(PKI.etcd_state_dir)
    if has_crt and has_key:
        pair = KeyPair(state.read(crt), state.read(key))
        try:
            ok = key_matches(pair)
        except (ValueError, TypeError) as exc:
            raise PKIError(f"the etcd CA in {where} is unreadable", hint="restore ca.crt/ca.key from a backup") from exc
        if not ok:
            raise PKIError(
                f"the etcd CA key in {where} does not match ca.crt",
                hint="restore the matching ca.crt/ca.key pair from a backup; keelson never replaces a CA by itself",
            )
        return pair
    if has_crt or has_key:
        raise PKIError(
            f"half of the etcd CA is missing in {where} ({'ca.key' if has_crt else 'ca.crt'})",
            hint="restore it from a backup; keelson never replaces a CA by itself",
        )
    leftovers = [p for p in where.rglob("*.crt")] if where.is_dir() else []
    if leftovers:
        raise PKIError(
            f"the etcd CA is missing in {where} but {len(leftovers)} certificates it signed are still there",
            hint="restore ca.crt/ca.key from a backup; to start a new cluster from scratch, move the folder away",
        )
    pair = make_ca(f"keelson-etcd-ca-{cluster.name}", now)
    if write:
        _write(state, key, pair.key_pem)
        _write(state, crt, pair.cert_pem)
    report.ca_created = True
    return pair


def ensure_etcd_pki(
    cluster: Cluster, state: StateDir, now: dt.datetime | None = None, nodes: NodeIPs | None = None
) -> PKIReport:
    """Make the CA once, (re-)issue each leaf that is missing or no longer fits, record `pki/inventory.json`."""
    return _etcd_pki(cluster, state, now or dt.datetime.now(dt.UTC), write=True, nodes=nodes)


def plan_etcd_pki(
    cluster: Cluster, state: StateDir, now: dt.datetime | None = None, nodes: NodeIPs | None = None
) -> PKIReport:
    """What `ensure_etcd_pki` would do, writing nothing (the dry run). Raises the same PKIError."""
    return _etcd_pki(cluster, state, now or dt.datetime.now(dt.UTC), write=False, nodes=nodes)


def _etcd_pki(cluster: Cluster, state: StateDir, now: dt.datetime, write: bool, nodes: NodeIPs | None) -> PKIReport:
    report = PKIReport()
    ca = _ca(cluster, state, now, report, write)
    specs = etcd_specs(cluster, nodes)
    for spec in specs:
        ident = f"{spec.host}/{spec.name}" if spec.host else spec.name
        pair = load_pair(state, spec.name, spec.host)
        reason = "new" if pair is None else reissue_reason(pair, ca, spec, now)
        if reason is None:
            report.kept.append(ident)
            continue
        if write:
            _store(state, spec.name, spec.host, issue(ca, spec, now))
        report.issued[ident] = reason
    if write:
        _record(cluster, state, specs)
    return report


def _record(cluster: Cluster, state: StateDir, specs: list[CertSpec]) -> None:
    entries = []
    for name, host in [(CA, None)] + [(s.name, s.host) for s in specs]:
        pem = state.read(cert_path(name, host))
        cert = KeyPair(pem, b"").cert
        entries.append(
            {
                "name": name,
                "host": host,
                "path": cert_path(name, host),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "sha256": hashlib.sha256(pem).hexdigest(),
            }
        )
    data = json.dumps({"cluster": cluster.name, "certificates": entries}, indent=2).encode() + b"\n"
    if not state.exists(PKI.inventory) or state.read(PKI.inventory) != data:
        _write(state, PKI.inventory, data)


def cert_expiries(state: StateDir) -> list[CertInfo]:
    """Every certificate the last apply recorded, with `not_after` read from the certificate file itself."""
    if not state.exists(PKI.inventory):
        return []
    recorded = json.loads(state.read(PKI.inventory))
    out: list[CertInfo] = []
    for entry in recorded["certificates"]:
        path = entry["path"]
        if not state.exists(path):
            continue
        cert = KeyPair(state.read(path), b"").cert
        out.append(CertInfo(entry["name"], entry["host"], cert.not_valid_after_utc, path))
    return out
