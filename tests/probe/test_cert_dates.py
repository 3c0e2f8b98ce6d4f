"""Certificate validity in ``probe connect`` and ``ipsecdiag responder`` (RFC 5280 §4.1.2.5).

The probe is the I/O layer: it hands the engine the real time with every datagram, and the
engine's CertificateInvalid becomes cert-expired / cert-not-yet-valid before auth-failed.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from test_responder import _probe, _serve, needs_engine

from ipsecdiag.probe.options import Credentials

IKE = "aes256gcm16-prfsha256-ecp256"
_NOW = datetime.datetime.now(datetime.UTC)


def _pki() -> tuple[object, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Probe Test CA")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(_NOW - datetime.timedelta(days=30))
        .not_valid_after(_NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, cert.public_bytes(serialization.Encoding.DER)


_CA = _pki()


def _creds(fqdn: str, not_before: datetime.datetime, not_after: datetime.datetime) -> Credentials:
    """An end entity for ``fqdn`` valid from ``not_before`` to ``not_after``, signed by the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from ipsecdiag.engine.config import CertAuth

    ca_key, ca_der = _CA
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
        .issuer_name(x509.load_der_x509_certificate(ca_der).subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(fqdn)]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )  # fmt: skip
    return Credentials(CertAuth(key, (cert.public_bytes(serialization.Encoding.DER),)), ca_certs=(ca_der,))


_HOUR = datetime.timedelta(hours=1)
_VALID = (_NOW - 24 * _HOUR, _NOW + 24 * _HOUR)
_DATES = {
    "cert-not-yet-valid": (_NOW + 3 * _HOUR, _NOW + 48 * _HOUR),
    "cert-expired": (_NOW - 48 * _HOUR, _NOW - 3 * _HOUR),
}


@needs_engine
@pytest.mark.parametrize("fid", sorted(_DATES))
def test_the_gateway_certificate_outside_its_validity_is_named(tmp_path: Path, fid: str) -> None:
    r, t, out = _serve(IKE, creds=_creds("gw.test", *_DATES[fid]), timeout=4.0)
    res = _probe(r.local.port, IKE, tmp_path, creds=_creds("client.test", *_VALID))  # type: ignore[union-attr]
    t.join(timeout=10)
    assert not res.ok  # type: ignore[attr-defined]  # exit status 1
    ids = [f.id for f in res.findings]  # type: ignore[attr-defined]
    assert ids[0] == fid, ids  # the precise cause before the generic auth-failed
    f = res.findings[0]  # type: ignore[attr-defined]
    assert "CN=gw.test" in f.evidence[0]
    nb, na = _DATES[fid]
    date = (nb if fid == "cert-not-yet-valid" else na).strftime("%Y-%m-%dT%H:%M:%S")
    assert date in f.evidence[0], f.evidence
    assert f.data["end_entity"] is True


@needs_engine
def test_the_responder_names_a_client_certificate_that_expired(tmp_path: Path) -> None:
    r, t, out = _serve(IKE, creds=_creds("gw.test", *_VALID), timeout=4.0)
    res = _probe(r.local.port, IKE, tmp_path, creds=_creds("client.test", *_DATES["cert-expired"]))  # type: ignore[union-attr]
    t.join(timeout=10)
    assert not res.ok and "auth-failed" in [f.id for f in res.findings]  # type: ignore[attr-defined]
    ids = [f.id for f in out[0].findings]
    assert ids[0] == "cert-expired", ids
    assert "CN=client.test" in out[0].findings[0].evidence[0]


@needs_engine
def test_valid_certificates_bring_the_child_sa_up(tmp_path: Path) -> None:
    """The control: the same PKI within its dates passes, so the failures above are the dates."""
    r, t, out = _serve(IKE, creds=_creds("gw.test", *_VALID), once=True, linger=1.0, timeout=6.0)
    res = _probe(r.local.port, IKE, tmp_path, creds=_creds("client.test", *_VALID))  # type: ignore[union-attr]
    t.join(timeout=10)
    assert res.ok, [s.text for s in res.steps]  # type: ignore[attr-defined]
