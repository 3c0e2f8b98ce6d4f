"""Test PKI made on the fly with cryptography: a CA, and RSA / ECDSA end entities with SANs."""

from __future__ import annotations

import datetime
import ipaddress
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ipsecdiag test"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ca(kind: str = "ecdsa") -> tuple[object, bytes]:
    """(private key, DER certificate) of the test CA of this key type (one per type, however
    the argument is spelled: a cache keyed on the call would make two CAs)."""
    return _ca(kind)


@cache
def _ca(kind: str) -> tuple[object, bytes]:
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"Test CA {kind}"))
        .issuer_name(_name(f"Test CA {kind}"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(_T0)
        .not_valid_after(_T0 + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.DER)


def end_entity(name: str, kind: str, ca_kind: str = "ecdsa", *, bits: int = 2048) -> tuple[object, bytes]:
    """(private key, DER certificate) for ``name`` (an FQDN or e-mail SAN) signed by the CA."""
    return _end_entity(name, kind, ca_kind, bits)


@cache
def _end_entity(name: str, kind: str, ca_kind: str, bits: int) -> tuple[object, bytes]:
    ca_key, ca_der = ca(ca_kind)
    ca_cert = x509.load_der_x509_certificate(ca_der)
    if kind == "rsa":
        key = rsa.generate_private_key(65537, bits)
    elif kind == "ecdsa384":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    if "@" in name:
        san: x509.GeneralName = x509.RFC822Name(name)
    else:
        try:
            san = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            san = x509.DNSName(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(abs(hash((name, kind))) % (1 << 60) + 2)
        .not_valid_before(_T0)
        .not_valid_after(_T0 + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return key, cert.public_bytes(serialization.Encoding.DER)
