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
