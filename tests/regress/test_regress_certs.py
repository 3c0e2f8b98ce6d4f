"""A damaged certificate inside (decrypted) IKE is one CertificateDecodeError naming it, never a
ValueError from cryptography's lazy parsing in whichever check reads the field first (issue 14;
the fuzzer's case is ``found/ikev1-cert-damaged-extension.json``)."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ipsecdiag.crypto.x509 import CertificateDecodeError, certificates_from_payload
from ipsecdiag.wire.registry import CertEncoding

URI = b"http://ca.example/crl"


def _cert_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moon.example")])
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    crl = x509.DistributionPoint([x509.UniformResourceIdentifier(URI.decode())], None, None, None)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x1234)
        .not_valid_before(t0)
        .not_valid_after(t0 + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("moon.example")]), critical=False)
        .add_extension(x509.CRLDistributionPoints([crl]), critical=False)
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)


def test_a_sound_certificate_loads() -> None:
    certs = certificates_from_payload(CertEncoding.X509_CERT_SIGNATURE, _cert_der())
    assert len(certs) == 1


def test_a_damaged_extension_is_a_decode_error_naming_the_certificate() -> None:
    der = bytearray(_cert_der())
    at = der.index(URI)
    der[at] = 0x80  # not IA5: the URI GeneralName no longer parses
    # The outer structure still parses: only the lazily read extension is broken.
    x509.load_der_x509_certificate(bytes(der))
    with pytest.raises(CertificateDecodeError) as e:
        certificates_from_payload(CertEncoding.X509_CERT_SIGNATURE, bytes(der))
    msg = str(e.value)
    assert "certificate 1" in msg and "CN=moon.example" in msg and "serial 1234" in msg
