"""Certificate expiry: every certificate keelson or kubeadm put on a host, and those in the operator's state dir.

On each host ONE command (`HostCertificates`, a fact: a shell snippet plus a pure parser) prints the certificates
found — the etcd PKI (`/etc/etcd/pki`), the backup agent's (`/etc/keelson/backup`), and when Kubernetes is there
kubeadm's `/etc/kubernetes/pki/**.crt`, the client certificates embedded in `/etc/kubernetes/*.conf`
(`client-certificate-data`, decoded on the host) and the kubelet's current client and serving certificates. Only
`CERTIFICATE` PEM blocks ever leave the host: a kubelet `.pem` holds its private key too, and a kubeconfig its
`client-key-data`, and neither is printed. The operator side parses them with `cryptography`.

The result is a list of `CertRecord`s (where, what, until when) that `keelson certs check` shows and a later
`certs renew` can select from (by host, path, issuer) — the data is the same for both.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from inventory.errors import KeelsonError
from inventory.model import OS, Host
from roles.engine.facts import Fact, q
from roles.engine.parallel import on_hosts
from roles.pki import kubernetes
from roles.pki.defaults import DEFAULTS as PKI
from roles.pki.store import cert_expiries
from roles.state import StateDir

if TYPE_CHECKING:
    from roles.engine.transport import ConnectionPool

OPERATOR = "operator"  # the "host" of the state dir's certificates
CERT_MARK = "@@KEELSON-CERT"
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.S)


class Source(StrEnum):
    FILE = "file"  # a certificate file (possibly a bundle) on a host
    KUBECONFIG = "kubeconfig"  # a client certificate embedded in a kubeconfig on a host
    STATE = "state"  # a certificate in the operator-side state dir


@dataclass(frozen=True)
class CertRecord:
    host: str  # an inventory host, or OPERATOR for the state dir
    path: str  # on the host (or relative to the state dir)
    source: Source
    index: int  # position in the file (bundles, kubeconfigs with several users)
    subject: str
    issuer: str
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str  # of the DER: which certificate exactly (a renewal changes it)

    def days_left(self, now: dt.datetime) -> int:
        """Whole days until it expires; negative once expired."""
        return (self.not_after - now) // dt.timedelta(days=1)

    def expired(self, now: dt.datetime) -> bool:
        return self.not_after <= now

    def to_dict(self, now: dt.datetime) -> dict[str, object]:
        return {
            "host": self.host,
            "path": self.path,
            "source": self.source.value,
            "index": self.index,
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": f"{self.serial:x}",
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "days_left": self.days_left(now),
            "expired": self.expired(now),
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class Unreadable:
    """A block that looked like a certificate but did not parse: shown, and counted as a problem."""

    host: str
    path: str
    reason: str


@dataclass(frozen=True)
class Found:
    records: list[CertRecord] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


def record_of(cert: x509.Certificate, host: str, path: str, source: Source, index: int) -> CertRecord:
    return CertRecord(
        host=host,
        path=path,
        source=source,
        index=index,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def parse_pems(data: bytes, host: str, path: str, source: Source) -> Found:
    """Every CERTIFICATE block in `data`; a block that does not parse is Unreadable, anything else is ignored."""
    found = Found()
    for index, match in enumerate(PEM.finditer(data)):
        try:
            cert = x509.load_pem_x509_certificate(match.group(0))
            found.records.append(record_of(cert, host, path, source, index))
        except ValueError as exc:
            found.unreadable.append(Unreadable(host, path, f"certificate {index}: {exc}"))
    return found


# -- on the hosts ----------------------------------------------------------------------------------------------

CERT_BLOCKS = "sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p'"


@dataclass(frozen=True)
class HostCertificates(Fact[Found]):
    """Prints `@@KEELSON-CERT <kind> <path>` then the file's CERTIFICATE blocks (never a key), for every file the
    globs find; kubeconfigs: each `client-certificate-data`, decoded on the host. `host` labels the records."""

    host: str = ""
    files: Sequence[str] = (
        f"{PKI.etcd_ca_cert.rsplit('/', 1)[0]}/*.crt",
        f"{PKI.backup_dir}/*.crt",
        "/var/lib/kubelet/pki/*.crt",
        "/var/lib/kubelet/pki/*-current.pem",  # the kubelet keeps rotated ones beside them: only the current ones
    )
    trees: Sequence[str] = (PKI.kube_pki_dir,)  # every *.crt below
    kubeconfigs: Sequence[str] = ("/etc/kubernetes/*.conf",)

    @property
    def key(self) -> str:
        return "certificates"

    def command(self) -> str:
        files = " ".join(self.files)  # globs: unquoted on purpose (fixed paths of ours, no user input)
        trees = " ".join(q(t) for t in self.trees)
        confs = " ".join(self.kubeconfigs)
        return (
            f'for f in {files}; do [ -f "$f" ] || continue; printf "{CERT_MARK} file %s\\n" "$f"; '
            f'{CERT_BLOCKS} "$f"; done; '
            f"find {trees} -name '*.crt' -type f 2>/dev/null | sort | while IFS= read -r f; do "
            f'printf "{CERT_MARK} file %s\\n" "$f"; {CERT_BLOCKS} "$f"; done; '
            f'for f in {confs}; do [ -f "$f" ] || continue; printf "{CERT_MARK} kubeconfig %s\\n" "$f"; '
            "sed -n 's/^[[:space:]]*client-certificate-data:[[:space:]]*//p' \"$f\" | while IFS= read -r d; do "
            f"printf '%s' \"$d\" | base64 -d 2>/dev/null | {CERT_BLOCKS}; done; done; true"
        )

    def parse(self, stdout: str, rc: int) -> Found:
        found = Found()
        for chunk in stdout.split(f"{CERT_MARK} ")[1:]:
            head, _, body = chunk.partition("\n")
            kind, _, path = head.partition(" ")
            if kind not in (Source.FILE, Source.KUBECONFIG) or not path.startswith("/"):
                continue  # junk: not one of our markers
            part = parse_pems(body.encode(), self.host, path, Source(kind))
            found.records.extend(part.records)
            found.unreadable.extend(part.unreadable)
        return found


# -- the operator's state dir ----------------------------------------------------------------------------------


def state_certificates(state: StateDir) -> Found:
    """The etcd PKI the last apply recorded (`roles.pki.store.cert_expiries`) and the Kubernetes CAs."""
    found = Found()
    paths = [info.path for info in cert_expiries(state)]
    paths += [f"{name}.crt" for name in (kubernetes.CA, kubernetes.FRONT_PROXY_CA)]
    for path in dict.fromkeys(paths):
        if state.exists(path):
            part = parse_pems(state.read(path), OPERATOR, path, Source.STATE)
            found.records.extend(part.records)
            found.unreadable.extend(part.unreadable)
    return found


# -- the verdict -----------------------------------------------------------------------------------------------


def expiring(records: Sequence[CertRecord], warn_days: int, now: dt.datetime) -> list[CertRecord]:
    """The certificates that expire within `warn_days` (or already did), soonest first."""
    return sorted((r for r in records if r.days_left(now) < warn_days), key=lambda r: r.not_after)


@dataclass(frozen=True)
class Checked:
    """What `check` saw: records and unreadable blocks per host (and OPERATOR), hosts it could not read."""

    found: dict[str, Found]
    errors: dict[str, str]  # host -> why it could not be read (unreachable, host key refused, …)
    skipped: dict[str, str] = field(default_factory=dict)  # host -> why it is not checked (Windows)

    @property
    def records(self) -> list[CertRecord]:
        return [r for f in self.found.values() for r in f.records]

    @property
    def unreadable(self) -> list[Unreadable]:
        return [u for f in self.found.values() for u in f.unreadable]


def check(hosts: Sequence[Host], pool: ConnectionPool, state: StateDir | None, workers: int = 32) -> Checked:
    """Every host's certificates in one command each, all hosts at once; then the state dir's (when given)."""

    def read(host: Host) -> Found:
        fact = HostCertificates(host.name)
        result = pool.get(host).run(fact.command(), timeout=120)
        return fact.parse(result.stdout, result.rc)

    posix = [h for h in hosts if h.os is not OS.WINDOWS]
    skipped = {h.name: "a Windows host: keelson puts no certificates there yet" for h in hosts if h.os is OS.WINDOWS}
    errors: dict[str, str] = {}
    found: dict[str, Found] = {}
    for name, result in on_hosts(posix, read, workers=workers).items():
        if isinstance(result, KeelsonError):
            errors[name] = str(result)
        else:
            found[name] = result
    if state is not None:
        found[OPERATOR] = state_certificates(state)
    return Checked(found, errors, skipped)
