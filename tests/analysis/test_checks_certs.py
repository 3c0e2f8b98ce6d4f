"""Certificate diagnosis: X.509 helpers and the certificate check on synthetic IKE SAs."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from checks_builders import exchange, ike_sa, msg, notify, report, run
from checks_keyed import LAB, analyze, needs_decryption
from corpus import needs_corpus
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ipsecdiag.crypto import x509 as cx
from ipsecdiag.diagnosis.checks.auth import AuthCheck
from ipsecdiag.diagnosis.checks.certs import CertCheck
from ipsecdiag.reconstruction.model import Severity
from ipsecdiag.wire.ikev1_payloads import V1CertPayload, V1IdPayload
from ipsecdiag.wire.ikev2 import AuthPayload, CertPayload, CertReqPayload, IdPayload
from ipsecdiag.wire.registry import IdType

T0 = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
NOW = T0.timestamp()
_CA_KEY = ec.generate_private_key(ec.SECP256R1())
_OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def make_ca(key=_CA_KEY, cn="Lab CA") -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(T0 - dt.timedelta(days=100))
        .not_valid_after(T0 + dt.timedelta(days=1000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


CA = make_ca()
OTHER_CA = make_ca(_OTHER_KEY, "Other CA")


def make_cert(
    cn="gw.example",
    *,
    dns=("gw.example",),
    ips=(),
    emails=(),
    nb=dt.timedelta(days=-1),
    na=dt.timedelta(days=300),
    eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    ca_key=_CA_KEY,
    issuer="Lab CA",
    digital_signature=True,
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 + nb)
        .not_valid_after(T0 + na)
    )
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    sans += [x509.RFC822Name(e) for e in emails]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    b = b.add_extension(
        x509.KeyUsage(
            digital_signature, False, not digital_signature, False, False, False, False, False, False
        ),
        critical=True,
    )
    return b.sign(ca_key, hashes.SHA256())


def der(c: x509.Certificate) -> bytes:
    return c.public_bytes(serialization.Encoding.DER)


# -- helpers ------------------------------------------------------------------------------------


def test_cert_payload_encodings() -> None:
    c = make_cert()
    assert cx.certificates_from_payload(4, der(c)) == [c]
    bundle = pkcs7.serialize_certificates([c, CA], serialization.Encoding.DER)
    assert cx.certificates_from_payload(1, bundle) == [c, CA]
    assert cx.certificates_from_payload(12, b"http://example/cert") == []  # hash and URL
    with pytest.raises(cx.CertificateDecodeError):
        cx.certificates_from_payload(4, b"\x30\x03\x02\x01\x00")


def test_load_certificates_pem_and_der() -> None:
    pem = CA.public_bytes(serialization.Encoding.PEM) + OTHER_CA.public_bytes(serialization.Encoding.PEM)
    assert cx.load_certificates(pem) == [CA, OTHER_CA]
    assert cx.load_certificates(der(CA)) == [CA]
    with pytest.raises(cx.CertificateDecodeError):
        cx.load_certificates(b"not a certificate")


def test_validity_problem() -> None:
    c = make_cert(nb=dt.timedelta(hours=2), na=dt.timedelta(days=10))
    p = cx.validity_problem(c, NOW)
    assert (p.kind, p.seconds) == ("not-yet-valid", 7200)
    e = cx.validity_problem(make_cert(nb=dt.timedelta(days=-10), na=dt.timedelta(days=-3)), NOW)
    assert (e.kind, e.seconds) == ("expired", 3 * 86400)
    assert cx.validity_problem(make_cert(), NOW) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45 s"),
        (300, "5 min"),
        (7200, "2 h"),
        (3 * 3600 + 600, "3 h 10 min"),
        (3 * 86400, "3 d"),
        (90000 * 2, "2 d 2 h"),
    ],
)
def test_duration_text(seconds, text) -> None:
    assert cx.duration_text(seconds) == text


def test_identity_matching_rfc4945() -> None:
    c = make_cert(
        "gw.example", dns=("GW.example", "vpn.example"), ips=("192.0.2.1",), emails=("ops@example.org",)
    )
    assert cx.match_identity(IdType.ID_FQDN, b"gw.example", c).matched is True
    assert cx.match_identity(IdType.ID_FQDN, b"other.example", c).matched is False
    assert cx.match_identity(IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 1]), c).matched is True
    assert cx.match_identity(IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 2]), c).matched is False
    assert cx.match_identity(IdType.ID_RFC822_ADDR, b"OPS@example.org", c).matched is True
    dn = _name("gw.example").public_bytes()
    assert cx.match_identity(IdType.ID_DER_ASN1_DN, dn, c).matched is True
    assert cx.match_identity(IdType.ID_DER_ASN1_DN, _name("x").public_bytes(), c).matched is False
    assert cx.match_identity(IdType.ID_KEY_ID, b"\x01\x02", c).matched is None


def test_fqdn_in_cn_only_is_a_mismatch_with_a_note() -> None:
    m = cx.match_identity(IdType.ID_FQDN, b"gw.example", make_cert("gw.example", dns=()))
    assert m.matched is False and "subject CN only" in m.note


def test_issued_by_and_usages() -> None:
    c = make_cert()
    assert cx.issued_by(c, CA) and not cx.issued_by(c, OTHER_CA)
    assert cx.extended_key_usages(c) == ["serverAuth"]
    assert cx.extended_key_usages(make_cert(eku=None)) is None
    assert cx.key_usage_allows_signing(make_cert(digital_signature=False)) is False


@needs_corpus
def test_certreq_hash_is_the_sha1_of_the_ca_public_key() -> None:
    ca = cx.load_certificates((LAB / "ikev2-cert-ok" / "certs" / "ca.crt").read_bytes())[0]
    # the CERTREQ in frame 2 of lab/ikev2-cert-ok names this CA (RFC 7296 §3.7)
    assert cx.spki_sha1(ca).hex() == "205e20c6f0f730fd1d32b7e41b73ab5a60659256"


# -- the check ----------------------------------------------------------------------------------

IDI = IdPayload(35, IdType.ID_FQDN, b"client.example")
IDR = IdPayload(36, IdType.ID_FQDN, b"gw.example")
SIG = AuthPayload(14, b"\x00" * 64)


def _sa(resp_cert, *, rejected_by_initiator=False, req_extra=(), resp_id=IDR, state=None, resp_extra=()):
    auth = exchange(
        "IKE_AUTH",
        1,
        msg(
            inner=[
                IDI,
                CertPayload(4, der(make_cert("client.example", dns=("client.example",)))),
                *req_extra,
                SIG,
            ],
            frame=3,
            ts=NOW,
            natt=True,
        ),
        msg(
            from_initiator=False,
            response=True,
            inner=[resp_id, *resp_cert, SIG, *resp_extra],
            frame=4,
            ts=NOW + 0.01,
            natt=True,
        ),
    )
    exs = [auth]
    if rejected_by_initiator:
        exs.append(
            exchange(
                "INFORMATIONAL",
                2,
                msg(inner=[notify("AUTHENTICATION_FAILED")], frame=5, ts=NOW + 0.02, natt=True),
            )
        )
    return ike_sa(*exs, state=state or ("failed" if rejected_by_initiator else "established"))


def test_not_yet_valid_causes_the_auth_failure() -> None:
    sa = _sa([CertPayload(4, der(make_cert(nb=dt.timedelta(hours=3))))], rejected_by_initiator=True)
    r = report(sa)
    found = run(CertCheck(), r) + run(AuthCheck(), r)
    from ipsecdiag.pipeline import rank_findings

    ranked = rank_findings(found)
    assert [f.id for f in ranked] == ["cert-not-yet-valid", "auth-failed"]
    f = ranked[0]
    assert f.severity == Severity.ERROR and f.explains == ["auth-failed"]
    assert f.data["skew_seconds"] == pytest.approx(3 * 3600 - 0.01, abs=0.001)
    assert f.data["verifier"] == "initiator" and f.data["verdict"] == "rejected"
    assert "3 h" in f.explanation and "AUTHENTICATION_FAILED in frame 5" in f.explanation
    assert f.frames == [4, 5]


def test_expired_but_accepted_is_a_warning() -> None:
    sa = _sa([CertPayload(4, der(make_cert(nb=dt.timedelta(days=-400), na=dt.timedelta(days=-2))))])
    [f] = run(CertCheck(), report(sa))
    assert (f.id, f.severity) == ("cert-expired", Severity.WARNING)
    assert f.explains == [] and "accepted it anyway" in f.explanation
    assert f.data["expired_seconds"] == pytest.approx(2 * 86400 + 0.01, abs=0.001)


def test_not_yet_valid_but_accepted_is_info() -> None:
    sa = _sa([CertPayload(4, der(make_cert(nb=dt.timedelta(minutes=2))))])
    [f] = run(CertCheck(), report(sa))
    assert (f.id, f.severity) == ("cert-not-yet-valid", Severity.INFO)


def test_unknown_outcome_keeps_the_catalogue_severity() -> None:
    sa = _sa(
        [CertPayload(4, der(make_cert(nb=dt.timedelta(days=-9), na=dt.timedelta(days=-1))))],
        state="incomplete",
    )
    [f] = run(CertCheck(), report(sa))
    assert (f.id, f.severity, f.data["verdict"]) == ("cert-expired", Severity.ERROR, "unknown")


def test_expired_intermediate_in_the_chain() -> None:
    sa = _sa(
        [
            CertPayload(4, der(make_cert())),
            CertPayload(
                4, der(make_cert("Sub CA", dns=(), na=dt.timedelta(days=-1), nb=dt.timedelta(days=-30)))
            ),
        ],
        rejected_by_initiator=True,
    )
    [f] = run(CertCheck(), report(sa))
    assert f.id == "cert-expired" and f.data["certificate"]["subject"] == "O=Lab, CN=Sub CA"
    assert len(f.data["chain"]) == 2


def test_identity_not_in_certificate() -> None:
    sa = _sa([CertPayload(4, der(make_cert("gw.example", dns=())))], rejected_by_initiator=True)
    [f] = run(CertCheck(), report(sa))
    assert (f.id, f.severity, f.explains) == ("cert-id-mismatch", Severity.ERROR, ["auth-failed"])
    assert "identity sent: IDr gw.example (ID_FQDN)" in f.evidence
    assert any("subject CN only" in e for e in f.evidence)
    assert f.data["compared_with"] == "subjectAltName dNSName"


def test_ip_identity_in_san_matches() -> None:
    ip_id = IdPayload(36, IdType.ID_IPV4_ADDR, bytes([198, 51, 100, 2]))
    sa = _sa([CertPayload(4, der(make_cert(ips=("198.51.100.2",))))], resp_id=ip_id)
    assert run(CertCheck(), report(sa)) == []


def test_healthy_certificates_yield_nothing() -> None:
    sa = _sa([CertPayload(4, der(make_cert()))])
    assert run(CertCheck(), report(sa)) == []


def test_untrusted_issuer_named_with_ca_files(tmp_path) -> None:
    other = make_cert(ca_key=_OTHER_KEY, issuer="Other CA")
    certreq = CertReqPayload(4, cx.spki_sha1(CA))
    sa = _sa([CertPayload(4, der(other))], rejected_by_initiator=True, req_extra=[certreq])
    ca_file = tmp_path / "cas.pem"
    ca_file.write_bytes(
        CA.public_bytes(serialization.Encoding.PEM) + OTHER_CA.public_bytes(serialization.Encoding.PEM)
    )
    [f] = run(CertCheck(), report(sa), ca_files=[str(ca_file)])
    assert (f.id, f.explains) == ("cert-untrusted", ["auth-failed"])
    assert "the initiator requested certificates from: O=Lab, CN=Lab CA (from cas.pem)" in f.evidence
    assert f.data["anchor"] == "O=Lab, CN=Other CA"
    assert "issue the responder's certificate from O=Lab, CN=Lab CA" in f.remediation
    # without the CA files the issuing CA is unknown: nothing to compare the hashes with
    assert run(CertCheck(), report(sa)) == []
    # a chain from the requested CA is fine
    good = _sa([CertPayload(4, der(make_cert()))], rejected_by_initiator=True, req_extra=[certreq])
    assert run(CertCheck(), report(good), ca_files=[str(ca_file)]) == []


def test_gateway_certificate_without_server_eku_is_info() -> None:
    sa = _sa([CertPayload(4, der(make_cert(eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))))])
    [f] = run(CertCheck(), report(sa))
    assert (f.id, f.severity) == ("cert-key-usage", Severity.INFO)
    assert "serverAuth" in f.explanation and f.data["extended_key_usage"] == ["clientAuth"]


def test_pkcs7_wrapped_chain() -> None:
    bundle = pkcs7.serialize_certificates(
        [make_cert(nb=dt.timedelta(hours=1)), CA], serialization.Encoding.DER
    )
    sa = _sa([CertPayload(1, bundle)], rejected_by_initiator=True)
    [f] = run(CertCheck(), report(sa))
    assert f.id == "cert-not-yet-valid" and len(f.data["chain"]) == 2


def test_ikev1_main_mode_certificate() -> None:
    cert = make_cert(nb=dt.timedelta(days=-20), na=dt.timedelta(days=-5))
    mm5 = msg(
        inner=[V1IdPayload(2, 17, 500, b"gw.example"), V1CertPayload(4, der(cert))],
        from_initiator=False,
        frame=6,
        ts=NOW,
        version=1,
    )
    sa = ike_sa(
        exchange("MAIN_MODE", 0, None, messages=[mm5], by_initiator=True), version=1, state="incomplete"
    )
    [f] = run(CertCheck(), report(sa))
    assert f.id == "cert-expired" and f.data["sender"] == "responder"


@needs_corpus
@needs_decryption
def test_lab_cert_ok_has_no_certificate_finding() -> None:
    lab = LAB / "ikev2-cert-ok"
    r = analyze(lab / "capture.pcap", lab / "charon-initiator.log", ca_files=[str(lab / "certs" / "ca.crt")])
    assert not [f for f in r.findings if f.id.startswith("cert-")]


@needs_corpus
def test_certificate_subject_and_identity_print_alike() -> None:
    # The NCP client's certificate has an emailAddress in its subject and the same DN as its
    # ID_DER_ASN1_DN identity: one formatter (wire.dn) prints both, with E=, never an OID.
    from checks_keyed import EXTERNAL

    d = EXTERNAL / "wireshark-wiki" / "ipsec_ikev2_esp_natt"
    r = analyze(d / "capture.pcapng", d / "ikev2_decryption_table", d / "esp_sa")
    text = [e for f in r.findings if f.check == "certs" for e in f.evidence]
    assert any("E=client1@demo.ncp-e.com" in e for e in text)
    assert not any("1.2.840.113549.1.9.1" in e for e in text)
    subj = cx.dn_text(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moon"), x509.NameAttribute(NameOID.EMAIL_ADDRESS, "x@y")])
    )
    assert subj == "CN=moon, E=x@y"
