"""Error paths and hostile input: each produces the right Notify or a counted drop, never an
exception out of receive_datagram (RFC 7296 §2.3, §2.5, §2.21)."""

from __future__ import annotations

from dataclasses import replace

from engine_net import I_ADDR, R_ADDR, Wire, of, pair, psk_configs
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecdiag.engine import ChildConfig, State, events, selector_for
from ipsecdiag.protocol.proposal_strings import parse_proposals
from ipsecdiag.wire.ikev2 import build_message, parse_message, serialize_message
from ipsecdiag.wire.ikev2_payloads import NotifyPayload, UnknownPayload
from ipsecdiag.wire.registry import ExchangeType, NotifyType


def _up():
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    return net


def test_wrong_psk_authentication_failed_both_sides() -> None:
    net = pair(*psk_configs(psk_r=b"another"))
    net.i.initiate(0.0)
    net.run()
    e_r = of(net.events_r, events.ProtocolError)[0]
    assert (e_r.notify_name, e_r.fault, e_r.received, e_r.fatal) == ("AUTHENTICATION_FAILED", "peer", False, True)
    e_i = of(net.events_i, events.ProtocolError)[0]
    assert (e_i.notify_name, e_i.fault, e_i.received) == ("AUTHENTICATION_FAILED", "ours", True)
    assert net.i.state is State.CLOSED and net.r.state is State.CLOSED


def test_initiator_detects_responder_with_wrong_psk_and_sends_authentication_failed() -> None:
    ci, cr = psk_configs(psk_r=b"another")
    cr = replace(cr, psk_peer=ci.auth.psk)  # the responder accepts us but signs with another key
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    e_i = of(net.events_i, events.ProtocolError)[0]
    assert (e_i.notify_name, e_i.fault, e_i.received) == ("AUTHENTICATION_FAILED", "peer", False)
    # and the responder was told (INFORMATIONAL N(AUTHENTICATION_FAILED), §2.21.2)
    assert any(e.notify_name == "AUTHENTICATION_FAILED" and e.received for e in of(net.events_r, events.ProtocolError))
    assert net.r.state is State.CLOSED


def test_ts_unacceptable_keeps_the_ike_sa() -> None:
    net = pair(*psk_configs(r_child={"remote_ts": (selector_for("172.16.0.0/12"),)}))
    net.i.initiate(0.0)
    net.run()
    e_i = of(net.events_i, events.ProtocolError)[0]
    assert (e_i.notify_name, e_i.received, e_i.fatal) == ("TS_UNACCEPTABLE", True, False)
    assert of(net.events_r, events.ProtocolError)[0].notify_name == "TS_UNACCEPTABLE"
    assert net.i.state is State.ESTABLISHED and not net.i.child_sas


def test_child_no_proposal_chosen_keeps_the_ike_sa() -> None:
    net = pair(*psk_configs(esp="aes128-sha256", r_esp="aes256gcm16"))
    net.i.initiate(0.0)
    net.run()
    e_i = of(net.events_i, events.ProtocolError)[0]
    assert (e_i.notify_name, e_i.received, e_i.fault) == ("NO_PROPOSAL_CHOSEN", True, "ours")
    assert net.i.state is State.ESTABLISHED


def test_narrowing_and_virtual_ip_from_the_pool() -> None:
    ci, cr = psk_configs(
        i_kw={"request_virtual_ip": True},
        i_child={"local_ts": (), "remote_ts": (selector_for("0.0.0.0/0"),)},
        r_kw={"pool": "10.3.0.0/28"},
        r_child={"remote_ts": (selector_for("10.3.0.0/28"),)},
    )
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run()
    up = of(net.events_i, events.ChildSaUp)[0]
    assert up.virtual_ips == ("10.3.0.1",)
    assert [t.display() for t in up.ts_i] == ["10.3.0.1/32"]
    assert [t.display() for t in up.ts_r] == ["10.2.0.0/16"]  # 0.0.0.0/0 narrowed to the policy


def test_transport_mode_and_esn() -> None:
    net = pair(*psk_configs(esp="aes128-sha256-esn", i_child={"mode": "transport"}, r_child={"mode": "transport"}))
    net.i.initiate(0.0)
    net.run()
    up = of(net.events_i, events.ChildSaUp)[0]
    assert up.mode == "transport" and up.esn and up.keys_in.esn and up.keys_in.mode == "transport"


def test_retransmission_schedule_and_timeout() -> None:
    net = pair(*psk_configs())
    net.mangle = lambda w, n: [] if w.to_responder else [w.d.payload]  # the responder hears nothing
    net.i.initiate(0.0)
    net.run()
    sent = of(net.events_i, events.Sent)
    assert [s.retransmission for s in sent] == [0, 1, 2, 3, 4, 5]
    times = [w for w in net.log if w.to_responder]
    assert len(times) == 6
    t = of(net.events_i, events.Timeout)[0]
    assert (t.exchange, t.retransmissions) == ("IKE_SA_INIT", 5)
    # 4 s * 1.8^n: 4 + 7.2 + 12.96 + 23.328 + 41.99 + 75.58 = 165.06 s until we give up
    assert abs(net.now - sum(4 * 1.8**n for n in range(6))) < 1e-6
    assert net.i.state is State.CLOSED


def test_lost_response_is_resent_from_cache_not_recomputed() -> None:
    drops = {"n": 0}

    def lose_first_auth_response(w: Wire, n: int) -> list[bytes]:
        if not w.to_responder and w.d.payload[:4] == b"\0\0\0\0" or (not w.to_responder and w.d.payload[18] == 35):
            if drops["n"] == 0:
                drops["n"] += 1
                return []
        return [w.d.payload]

    net = pair(*psk_configs())
    net.mangle = lose_first_auth_response
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    resent = [s for s in of(net.events_r, events.Sent) if s.is_response and s.retransmission]
    assert resent and resent[0].exchange == "IKE_AUTH"
    answers = [w.d.payload for w in net.log if not w.to_responder and w.d.payload[18] == 35]
    assert len(answers) == 2 and answers[0] == answers[1]  # byte-identical
    assert len(of(net.events_r, events.ChildSaUp)) == 1


def test_duplicates_and_reordering() -> None:
    net = pair(*psk_configs())
    net.mangle = lambda w, n: [w.d.payload, w.d.payload]
    net.reorder = True
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    assert len(of(net.events_i, events.ChildSaUp)) == 1
    assert net.i.drops  # the duplicate responses were counted, not processed


def test_hostile_datagrams_are_drops() -> None:
    net = _up()
    for junk in (b"", b"\x00", b"\xff" * 27, bytes(28), net.log[0].d.payload[:40], b"\x00" * 4 + b"\x01" * 40):
        net.i.receive_datagram(junk, R_ADDR, I_ADDR, net.now)
        net.r.receive_datagram(junk, I_ADDR, R_ADDR, net.now)
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    assert sum(net.i.drops.values()) >= 5


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.integers(0, 65535))
def test_fuzz_never_raises(data: bytes, length: int) -> None:
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    first = net.i.datagrams_to_send(0.0)[0].payload
    forged = first[:24] + length.to_bytes(4, "big") + data
    for d in (data, forged, first[:28] + data):
        net.r.receive_datagram(d, I_ADDR, R_ADDR, 0.0)
        net.i.receive_datagram(d[:8] + first[:8][8:] + d[8:], R_ADDR, I_ADDR, 0.0)


def test_tampered_protected_message_is_dropped_silently() -> None:
    net = _up()
    net.i.send_liveness(net.now)
    d = net.i.datagrams_to_send(net.now)[0]
    bad = d.payload[:-1] + bytes([d.payload[-1] ^ 1])
    net.r.receive_datagram(bad, I_ADDR, R_ADDR, net.now)
    assert net.r.datagrams_to_send(net.now) == []
    assert net.r.drops["integrity check failed"] == 1


def test_unexpected_message_id_is_dropped_silently() -> None:
    net = _up()
    net.i.send_liveness(net.now)
    d = net.i.datagrams_to_send(net.now)[0].payload
    skewed = d[:20] + (7).to_bytes(4, "big") + d[24:]  # AEAD: also fails the tag; still a drop
    net.r.receive_datagram(skewed, I_ADDR, R_ADDR, net.now)
    assert net.r.datagrams_to_send(net.now) == []
    assert any("INVALID_MESSAGE_ID" in k for k in net.r.drops)


def test_unknown_spi_gets_invalid_ike_spi() -> None:
    net = _up()
    msg = build_message(b"\x11" * 8, b"\x22" * 8, ExchangeType.INFORMATIONAL, 5, [], flags=0x08)
    net.r.receive_datagram(serialize_message(msg), I_ADDR, R_ADDR, net.now)
    out = net.r.datagrams_to_send(net.now)
    assert len(out) == 1
    reply = parse_message(out[0].payload)
    assert reply.header.is_response and reply.notifies[0].notify_type == NotifyType.INVALID_IKE_SPI
    assert of([*iter(net.r.next_event, None)], events.ProtocolError)[0].notify_name == "INVALID_IKE_SPI"


def test_unsupported_critical_payload_in_ike_sa_init() -> None:
    ci, cr = psk_configs()
    net = pair(ci, cr)
    net.i.initiate(0.0)
    first = parse_message(net.i.datagrams_to_send(0.0)[0].payload)
    evil = build_message(
        first.header.spi_i, bytes(8), ExchangeType.IKE_SA_INIT, 0, [*first.payloads, UnknownPayload(200, True, b"x")], flags=0x08
    )
    net.r.receive_datagram(serialize_message(evil), I_ADDR, R_ADDR, 0.0)
    reply = parse_message(net.r.datagrams_to_send(0.0)[0].payload)
    n = reply.notifies[0]
    assert n.notify_type == NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD and n.data == bytes([200])
    # a non-critical unknown payload is ignored (§2.5)
    net2 = pair(ci, cr)
    net2.i.initiate(0.0)
    first = parse_message(net2.i.datagrams_to_send(0.0)[0].payload)
    ok = build_message(first.header.spi_i, bytes(8), ExchangeType.IKE_SA_INIT, 0, [*first.payloads, UnknownPayload(200, False, b"x")], flags=0x08)
    net2.r.receive_datagram(serialize_message(ok), I_ADDR, R_ADDR, 0.0)
    assert net2.r.state is State.INIT_DONE


def test_malformed_inner_payloads_get_invalid_syntax() -> None:
    net = _up()
    r = net.r
    # A protected request whose inner chain is broken: encrypt garbage with the initiator's keys.
    from ipsecdiag.engine.protect import flags_for, header_bytes

    hdr = header_bytes(net.i.spi_i, net.i.spi_r, ExchangeType.INFORMATIONAL, net.i._next_mid, flags_for(original_initiator=True, response=False))
    msg = net.i._tx.protect(ike_header=hdr, first_inner_type=41, plaintext=b"\x00\x00\x00\x02", iv=bytes(8))
    r.receive_datagram(msg, I_ADDR, R_ADDR, net.now)
    out = r.datagrams_to_send(net.now)
    assert len(out) == 1
    net.i.receive_datagram(out[0].payload, R_ADDR, I_ADDR, net.now)  # no request of ours: dropped
    err = [e for e in iter(r.next_event, None) if isinstance(e, events.ProtocolError)]
    assert err and err[0].notify_name == "INVALID_SYNTAX" and err[0].fault == "peer"


def test_request_out_of_state_is_invalid_syntax() -> None:
    ci, cr = psk_configs()
    cr = replace(cr, child=ChildConfig(parse_proposals("aes128gcm16", protocol="esp")))
    net = pair(ci, cr)
    net.i.initiate(0.0)
    net.run(until=lambda: net.i.state is State.AUTH_SENT)  # IKE_SA_INIT only
    net.i.datagrams_to_send(net.now)
    assert net.r.state is State.INIT_DONE
    # The initiator's INFORMATIONAL at id 1 would be fine; a CREATE_CHILD_SA is not.
    from ipsecdiag.engine.protect import encode, flags_for

    msgs = encode(spi_i=net.i.spi_i, spi_r=net.i.spi_r, exchange=ExchangeType.CREATE_CHILD_SA, message_id=1, flags=flags_for(original_initiator=True, response=False), payloads=[NotifyPayload(0, b"", NotifyType.INITIAL_CONTACT)], ctx=net.i._tx, rng=net.i.rng)
    net.r.receive_datagram(msgs[0], I_ADDR, R_ADDR, net.now)
    err = [e for e in iter(net.r.next_event, None) if isinstance(e, events.ProtocolError)]
    assert err[-1].notify_name == "INVALID_SYNTAX"


def test_higher_major_version_gets_invalid_major_version() -> None:
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    first = bytearray(net.i.datagrams_to_send(0.0)[0].payload)
    first[17] = 0x30  # IKE version 3.0
    net.r.receive_datagram(bytes(first), I_ADDR, R_ADDR, 0.0)
    out = net.r.datagrams_to_send(0.0)
    assert len(out) == 1
    reply = parse_message(out[0].payload)
    assert (reply.header.major, reply.header.is_response) == (2, True)
    assert reply.notifies[0].notify_type == NotifyType.INVALID_MAJOR_VERSION
    assert net.r.drops["unsupported version"] == 1 and net.r.state is State.INITIAL
