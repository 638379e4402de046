"""X.509 with `cryptography`, on the operator side: a CA, leaf certificates it signs, and the checks that decide
whether a stored certificate still fits what the inventory asks for. Pure: no files, no clock (pass `now`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from roles.pki.defaults import DEFAULTS as PKI

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Usage(StrEnum):
    SERVER = "server"
    CLIENT = "client"


_EKU = {Usage.SERVER: ExtendedKeyUsageOID.SERVER_AUTH, Usage.CLIENT: ExtendedKeyUsageOID.CLIENT_AUTH}


@dataclass(frozen=True)
class CertSpec:
    """What one leaf certificate must say. `host` is None for a cluster-wide client certificate."""

    name: str
    host: str | None
    common_name: str
    usages: frozenset[Usage]
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()
    organization: str | None = None
    days: int = PKI.leaf_days

    @property
    def sans(self) -> frozenset[str]:
        """Comparable form of the SANs: `DNS:name` and `IP:addr`."""
        return frozenset([f"DNS:{d}" for d in self.dns_names] + [f"IP:{ip}" for ip in self.ip_addresses])


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError("keelson keys are ECDSA P-256")
        return key


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Signatures only; a CA also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(common_name: str, now: dt.datetime, days: int = PKI.ca_days) -> KeyPair:
    key = _new_key()
    subject = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - PKI.backdate)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue(ca: KeyPair, spec: CertSpec, now: dt.datetime) -> KeyPair:
    """A new key and a certificate for `spec`, signed by `ca`, never outliving the CA."""
    key = _new_key()
    ca_cert = ca.cert
    not_after = min(now + dt.timedelta(days=spec.days), ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(spec.common_name, spec.organization))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - PKI.backdate)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([_EKU[u] for u in sorted(spec.usages)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if spec.sans:
        general: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns_names]
        general += [x509.IPAddress(ip) for ip in spec.ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


# -- inspection ---------------------------------------------------------------------------------------------------


def sans_of(cert: x509.Certificate) -> frozenset[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    dns = [f"DNS:{d}" for d in ext.get_values_for_type(x509.DNSName)]
    ips = [f"IP:{ip}" for ip in ext.get_values_for_type(x509.IPAddress)]
    return frozenset(dns + ips)


def usages_of(cert: x509.Certificate) -> frozenset[Usage]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(u for u, oid in _EKU.items() if oid in ext)


def common_name_of(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def key_matches(pair: KeyPair) -> bool:
    pub = pair.cert.public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == (
        pair.key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def reissue_reason(pair: KeyPair, ca: KeyPair, spec: CertSpec, now: dt.datetime) -> str | None:
    """Why the stored `pair` no longer fits `spec` (None: keep it). Never mentions key material."""
    try:
        cert = pair.cert
        if not key_matches(pair):
            return "key does not match the certificate"
    except (ValueError, TypeError) as exc:
        return f"unreadable ({type(exc).__name__})"
    if not signed_by(cert, ca.cert):
        return "not signed by the current CA"
    if common_name_of(cert) != spec.common_name:
        return f"common name {common_name_of(cert)!r} != {spec.common_name!r}"
    if sans_of(cert) != spec.sans:
        missing = sorted(spec.sans - sans_of(cert))
        extra = sorted(sans_of(cert) - spec.sans)
        return f"SANs changed (missing {missing}, extra {extra})"
    if usages_of(cert) != spec.usages:
        return f"usages {sorted(usages_of(cert))} != {sorted(spec.usages)}"
    if cert.not_valid_after_utc - now < PKI.renew_before:
        return f"expires {cert.not_valid_after_utc:%Y-%m-%d} (renewed {PKI.renew_before.days} days ahead)"
    return None
