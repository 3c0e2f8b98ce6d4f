"""IKE_AUTH with EAP-MSCHAPv2 (RFC 7296 §2.16) between two engines."""

from __future__ import annotations

from dataclasses import replace

from engine_certs import ca, end_entity
from engine_net import of, pair, psk_configs

from ipsecdiag.engine import CertAuth, EapAuth, Identity, State, events
from ipsecdiag.keys.model import SecretBytes
from ipsecdiag.wire.registry import NotifyType


def _configs(password: str = "clientPass", *, server_cert: bool = True):
    ci, cr = psk_configs()
    users = (("carol@example.org", SecretBytes(b"clientPass")),)
    ci = replace(ci, auth=EapAuth("carol@example.org", SecretBytes(password.encode())), local_id=Identity.parse("carol@example.org"))
    if server_cert:
        k, d = end_entity("gw.example.org", "ecdsa")
        ci = replace(ci, ca_certs=(ca()[1],))
        cr = replace(cr, auth=CertAuth(k, (d,)), eap_users=users)
    else:
        ci = replace(ci, psk_peer=cr.auth.psk)
        cr = replace(cr, eap_users=users)
    return ci, cr


def test_eap_mschapv2_with_a_certificate_gateway() -> None:
    net = pair(*_configs())
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    auth_rounds = [s for s in of(net.events_i, events.Sent) if s.exchange == "IKE_AUTH" and not s.retransmission]
    assert [s.message_id for s in auth_rounds] == [1, 2, 3, 4]  # IDi, challenge answer, success ack, AUTH
    up_i, up_r = of(net.events_i, events.ChildSaUp)[0], of(net.events_r, events.ChildSaUp)[0]
    assert up_i.spi_in == up_r.spi_out and up_i.keys_in.encr_key == up_r.keys_out.encr_key
    assert of(net.events_r, events.Authenticated)[0].peer_id_text == "carol@example.org"


def test_eap_with_a_psk_gateway() -> None:
    net = pair(*_configs(server_cert=False))
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED


def test_wrong_eap_password_fails_both_sides() -> None:
    net = pair(*_configs("wrong"))
    net.i.initiate(0.0)
    net.run()
    e_i = of(net.events_i, events.ProtocolError)[0]
    assert (e_i.notify, e_i.fault, e_i.fatal) == (NotifyType.AUTHENTICATION_FAILED, "ours", True)
    assert "MS-CHAPv2" in e_i.detail
    e_r = of(net.events_r, events.ProtocolError)[0]
    assert e_r.notify == NotifyType.AUTHENTICATION_FAILED and "wrong password" in e_r.detail
    assert net.i.state is State.CLOSED and net.r.state is State.CLOSED


def test_eap_rounds_survive_loss() -> None:
    import random

    rnd = random.Random(3)
    net = pair(*_configs())
    net.mangle = lambda w, n: [] if rnd.random() < 0.25 else [w.d.payload]
    net.i.initiate(0.0)
    net.run(max_steps=2000, max_time=10_000)
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
