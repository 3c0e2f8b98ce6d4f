"""IKE_AUTH with certificates: RSA and ECDSA, classic methods and RFC 7427, CERT/CERTREQ, IDs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from engine_certs import ca, end_entity
from engine_net import of, pair, psk_configs

from ipsecdiag.engine import CertAuth, Identity, State, events
from ipsecdiag.wire.registry import AuthMethod, NotifyType


def _cert_configs(kind_i: str, kind_r: str, *, rfc7427: bool = True, ca_kind: str = "ecdsa", i_id: str = "client@example.org", r_id: str = "gw.example.org"):
    ci, cr = psk_configs()
    ki, di = end_entity(i_id, kind_i, ca_kind)
    kr, dr = end_entity(r_id, kind_r, ca_kind)
    anchors = (ca(ca_kind)[1],)
    ci = replace(ci, auth=CertAuth(ki, (di,), rfc7427=rfc7427), ca_certs=anchors, local_id=Identity.parse(i_id), remote_id=Identity.parse(r_id))
    cr = replace(cr, auth=CertAuth(kr, (dr,), rfc7427=rfc7427), ca_certs=anchors, local_id=Identity.parse(r_id))
    return ci, cr


@pytest.mark.parametrize(
    ("kind_i", "kind_r", "rfc7427", "method"),
    [
        ("rsa", "rsa", False, AuthMethod.RSA_DIGITAL_SIGNATURE),
        ("ecdsa", "ecdsa", False, AuthMethod.ECDSA_SHA256_P256),
        ("ecdsa384", "ecdsa384", False, AuthMethod.ECDSA_SHA384_P384),
        ("rsa", "ecdsa", True, AuthMethod.DIGITAL_SIGNATURE),
        ("ecdsa", "rsa", True, AuthMethod.DIGITAL_SIGNATURE),
    ],
)
def test_certificate_handshake(kind_i: str, kind_r: str, rfc7427: bool, method: int) -> None:
    net = pair(*_cert_configs(kind_i, kind_r, rfc7427=rfc7427))
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    a_i, a_r = of(net.events_i, events.Authenticated)[0], of(net.events_r, events.Authenticated)[0]
    assert a_i.auth_method == method and a_r.auth_method == method
    assert len(a_i.peer_certs) == 1 and a_r.peer_id_text == "client@example.org"
    assert of(net.events_i, events.ChildSaUp) and of(net.events_r, events.ChildSaUp)


def test_identity_types_ipv4_and_dn_and_keyid_with_psk() -> None:
    for ident in ("192.0.2.2", "C=CH, O=ipsecdiag, CN=client", "keyid:0102030405", "2001:db8::2"):
        ci, cr = psk_configs()
        ci = replace(ci, local_id=Identity.parse(ident))
        cr = replace(cr, remote_id=Identity.parse(ident))
        net = pair(ci, cr)
        net.i.initiate(0.0)
        net.run()
        assert net.r.state is State.ESTABLISHED, ident
        assert net.r.peer_id == Identity.parse(ident)


def test_certificate_from_an_unknown_ca_fails_with_authentication_failed() -> None:
    ci, cr = _cert_configs("ecdsa", "ecdsa")
    cr = replace(cr, ca_certs=(ca("rsa")[1],))  # the responder trusts another CA
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    err_r = of(net.events_r, events.ProtocolError)[0]
    assert err_r.notify == NotifyType.AUTHENTICATION_FAILED and err_r.fault == "peer" and err_r.fatal
    assert "does not chain" in err_r.detail
    err_i = of(net.events_i, events.ProtocolError)[0]
    assert err_i.notify == NotifyType.AUTHENTICATION_FAILED and err_i.received and err_i.fault == "ours"
    assert net.i.state is State.CLOSED and net.r.state is State.CLOSED


def test_identity_not_in_certificate_fails() -> None:
    ci, cr = _cert_configs("ecdsa", "ecdsa")
    ci = replace(ci, local_id=Identity.parse("other@example.org"))  # cert says client@example.org
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    err = of(net.events_r, events.ProtocolError)[0]
    assert err.notify == NotifyType.AUTHENTICATION_FAILED and "not in the certificate" in err.detail


def test_initiator_rejects_responder_with_wrong_identity_and_says_so() -> None:
    ci, cr = _cert_configs("ecdsa", "ecdsa")
    ci = replace(ci, remote_id=None)
    k, d = end_entity("evil.example.org", "ecdsa")
    cr = replace(cr, auth=CertAuth(k, (d,)), local_id=Identity.parse("evil.example.org"))
    ci = replace(ci, remote_id=Identity.parse("gw.example.org"))
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    # The responder refuses the IDr the initiator asked for.
    err = of(net.events_r, events.ProtocolError)[0]
    assert err.notify == NotifyType.AUTHENTICATION_FAILED
    assert net.i.state is State.CLOSED


# -- validity period at the caller's wall time (RFC 5280 §4.1.2.5) ------------------------------
# engine_certs issues end-entity certificates valid 2026-01-01 .. 2027-01-01 (CA: 10 years).


def _dated_run(wall_r: object = None, wall_i: object = None):  # type: ignore[no-untyped-def]
    from engine_net import I_ADDR, R_ADDR

    net = pair(*_cert_configs("ecdsa", "ecdsa"))
    # The wall time comes in with a datagram (here an empty one, dropped) or as sa.wall_time.
    if wall_r is not None:
        net.r.receive_datagram(b"", I_ADDR, R_ADDR, 0.0, wall_time=wall_r)
    if wall_i is not None:
        net.i.receive_datagram(b"", R_ADDR, I_ADDR, 0.0, wall_time=wall_i)
    net.i.initiate(0.0)
    net.run()
    return net


def test_expired_peer_certificate_fails_naming_the_date() -> None:
    import datetime

    net = _dated_run(wall_r=datetime.datetime(2027, 6, 1, tzinfo=datetime.UTC))
    assert net.r.state is State.CLOSED and net.i.state is State.CLOSED
    bad = of(net.events_r, events.CertificateInvalid)
    assert len(bad) == 1 and bad[0].problem == "expired" and bad[0].end_entity
    assert bad[0].not_after == "2027-01-01T00:00:00Z" and bad[0].wall_time == "2027-06-01T00:00:00Z"
    err = [e for e in of(net.events_r, events.ProtocolError) if e.notify == NotifyType.AUTHENTICATION_FAILED]
    assert err and "expired on 2027-01-01T00:00:00Z" in err[0].detail and err[0].fault == "peer"
    got = [e for e in of(net.events_i, events.ProtocolError) if e.notify == NotifyType.AUTHENTICATION_FAILED]
    assert got and got[0].received


def test_not_yet_valid_responder_certificate_with_epoch_seconds() -> None:
    import datetime

    wall = datetime.datetime(2025, 12, 1, tzinfo=datetime.UTC).timestamp()  # POSIX seconds
    net = _dated_run(wall_i=wall)
    bad = of(net.events_i, events.CertificateInvalid)
    assert len(bad) == 1 and bad[0].problem == "not-yet-valid" and bad[0].not_before == "2026-01-01T00:00:00Z"
    err = [e for e in of(net.events_i, events.ProtocolError) if e.notify == NotifyType.AUTHENTICATION_FAILED]
    assert err and "not valid before 2026-01-01T00:00:00Z" in err[0].detail
    assert net.i.state is State.CLOSED


def test_certificates_within_their_validity_and_without_wall_time_pass() -> None:
    import datetime

    inside = datetime.datetime(2026, 12, 3, 12, 0)  # naive = UTC
    for net in (_dated_run(wall_r=inside, wall_i=inside), _dated_run()):
        assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
        assert not of(net.events_i + net.events_r, events.CertificateInvalid)


def test_expired_intermediate_certificate_fails() -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    ca_key, ca_der = ca("ecdsa")
    ca_cert = x509.load_der_x509_certificate(ca_der)
    int_key = ec.generate_private_key(ec.SECP256R1())
    inter = (
        x509.CertificateBuilder().subject_name(name("Test Intermediate")).issuer_name(ca_cert.subject)
        .public_key(int_key.public_key()).serial_number(77)
        .not_valid_before(t0).not_valid_after(t0 + datetime.timedelta(days=150))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    gw_key = ec.generate_private_key(ec.SECP256R1())
    gw = (
        x509.CertificateBuilder().subject_name(name("gw.example.org")).issuer_name(inter.subject)
        .public_key(gw_key.public_key()).serial_number(78)
        .not_valid_before(t0).not_valid_after(t0 + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("gw.example.org")]), critical=False)
        .sign(int_key, hashes.SHA256())
    )
    der = serialization.Encoding.DER
    ci, cr = _cert_configs("ecdsa", "ecdsa")
    cr = replace(cr, auth=CertAuth(gw_key, (gw.public_bytes(der), inter.public_bytes(der))))
    for wall, ok in ((datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC), True), (datetime.datetime(2026, 9, 1, tzinfo=datetime.UTC), False)):
        net = pair(ci, cr)
        net.i.wall_time = wall  # the attribute form of the same input
        net.i.initiate(0.0)
        net.run()
        assert (net.i.state is State.ESTABLISHED) is ok
        bad = of(net.events_i, events.CertificateInvalid)
        if not ok:
            assert len(bad) == 1 and not bad[0].end_entity and bad[0].subject == "CN=Test Intermediate"
            assert bad[0].problem == "expired" and bad[0].not_after == "2026-05-31T00:00:00Z"
