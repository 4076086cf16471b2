"""Certificate authorities, serving and client certificates, and service-account keys.

Pure functions over PEM bytes: nothing here reads or writes files or talks to a cluster.
Keys are ECDSA P-256 (fast to make, accepted by kube-apiserver, etcd and Python's ssl).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_CA_DAYS = 3650
DEFAULT_LEAF_DAYS = 365
# Backdate certificates a little so a clock a few minutes behind still accepts them.
_CLOCK_SKEW = datetime.timedelta(minutes=5)


class CertError(ValueError):
    """A certificate or key could not be made or read; the message says which and why."""


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return load_cert(self.cert_pem)

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CertError(f"expected an EC private key, got {type(key).__name__}")
        return key


def load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertError(f"not a PEM certificate: {exc}") from exc


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    if not common_name:
        raise CertError("a certificate needs a non-empty common name")
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_ca(common_name: str, days: int = DEFAULT_CA_DAYS) -> KeyPair:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = _new_key()
    name = _name(common_name)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _leaf(
    ca: KeyPair,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
    days: int,
) -> KeyPair:
    ca_cert = ca.cert
    ca_key = ca.private_key()
    key = _new_key()
    now = _now()
    not_after = min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def new_serving_cert(
    ca: KeyPair,
    common_name: str,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    days: int = DEFAULT_LEAF_DAYS,
) -> KeyPair:
    """A TLS server certificate. Clients check the SANs, never the CN, so at least one is required."""
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    for ip in ip_addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError as exc:
            raise CertError(f"serving certificate {common_name!r}: {exc}") from exc
    if not sans:
        raise CertError(f"serving certificate {common_name!r} needs at least one DNS name or IP address")
    return _leaf(ca, _name(common_name), ExtendedKeyUsageOID.SERVER_AUTH, sans, days)


def new_client_cert(
    ca: KeyPair,
    common_name: str,
    organizations: Sequence[str] = (),
    days: int = DEFAULT_LEAF_DAYS,
) -> KeyPair:
    """A TLS client certificate. Kubernetes reads the user from CN and the groups from O."""
    return _leaf(ca, _name(common_name, organizations), ExtendedKeyUsageOID.CLIENT_AUTH, [], days)


def new_signing_keypair() -> tuple[bytes, bytes]:
    """A (private, public) PEM key pair, as kube-apiserver uses to sign service-account tokens."""
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _key_pem(key), public


def remaining(cert_pem: bytes, now: datetime.datetime | None = None) -> datetime.timedelta:
    """How long the certificate stays valid from ``now``; negative once it has expired."""
    return load_cert(cert_pem).not_valid_after_utc - (now or _now())


def needs_rotation(cert_pem: bytes, now: datetime.datetime | None = None, *, fraction: float = 1 / 3) -> bool:
    """True once less than ``fraction`` of the certificate's lifetime is left (or it does not parse)."""
    try:
        cert = load_cert(cert_pem)
    except CertError:
        return True
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return remaining(cert_pem, now) < lifetime * fraction


def issued_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """True when ``ca_pem`` signed ``cert_pem`` (signature and issuer name both match)."""
    cert, ca_cert = load_cert(cert_pem), load_cert(ca_pem)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
