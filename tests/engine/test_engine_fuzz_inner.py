"""Authenticated but nonsensical requests: random payload chains, encrypted with the peer's real
keys, for every exchange type, must end as an answer, a ProtocolError or a drop - never an
exception out of receive_datagram (the handlers see all of them)."""

from __future__ import annotations

from engine_net import I_ADDR, R_ADDR, pair, psk_configs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipsecdiag.engine import State
from ipsecdiag.engine.protect import encode, flags_for
from ipsecdiag.wire.ikev2_payloads import (
    AuthPayload,
    CfgAttribute,
    CpPayload,
    DeletePayload,
    EapPayload,
    IdPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
)
from ipsecdiag.wire.ikev2_sa import Proposal, SaPayload, Transform
from ipsecdiag.wire.ikev2_ts import TrafficSelector, TsPayload

small = st.binary(max_size=40)
proposals = st.builds(
    Proposal,
    st.integers(1, 3),
    st.sampled_from([1, 3, 4]),
    st.sampled_from([b"", b"\x01\x02\x03\x04", b"\x01" * 8]),
    st.lists(st.builds(Transform, st.integers(1, 6), st.integers(0, 40)), max_size=5).map(tuple),
)
selectors = st.builds(
    TrafficSelector,
    st.just(7),
    st.integers(0, 17),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=4, max_size=4),
)
payload = st.one_of(
    st.builds(SaPayload, st.lists(proposals, min_size=1, max_size=3).map(tuple)),
    st.builds(KePayload, st.sampled_from([0, 14, 19, 31, 36]), small),
    st.builds(NoncePayload, st.binary(min_size=0, max_size=64)),
    st.builds(NotifyPayload, st.integers(0, 3), st.sampled_from([b"", b"\x00\x00\x00\x01"]), st.sampled_from([7, 14, 17, 24, 16393, 16388, 16390, 16407, 16430, 16431, 40000]), small),
    st.builds(DeletePayload, st.sampled_from([1, 3]), st.just(4), st.lists(st.binary(min_size=4, max_size=4), max_size=3).map(tuple)),
    st.builds(TsPayload, st.sampled_from([44, 45]), st.lists(selectors, max_size=3).map(tuple)),
    st.builds(IdPayload, st.sampled_from([35, 36]), st.sampled_from([1, 2, 3, 9, 11]), small),
    st.builds(AuthPayload, st.sampled_from([1, 2, 14]), small),
    st.builds(CpPayload, st.integers(1, 4), st.lists(st.builds(CfgAttribute, st.integers(1, 30), small), max_size=3).map(tuple)),
    st.builds(EapPayload, small),
)

def _established():
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    net.run()
    assert net.r.state is State.ESTABLISHED
    return net


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([34, 35, 36, 37, 43]), st.lists(payload, max_size=6), st.booleans())
def test_random_authenticated_requests_never_raise(exchange: int, payloads: list, to_responder: bool) -> None:
    net = _established()
    sender, receiver = (net.i, net.r) if to_responder else (net.r, net.i)
    mid = receiver._peer_mid
    msgs = encode(
        spi_i=sender.spi_i,
        spi_r=sender.spi_r,
        exchange=exchange,
        message_id=mid,
        flags=flags_for(original_initiator=sender.is_initiator, response=False),
        payloads=payloads,
        ctx=sender._tx,
        rng=sender.rng,
    )
    src, dst = (I_ADDR, R_ADDR) if to_responder else (R_ADDR, I_ADDR)
    for m in msgs:
        receiver.receive_datagram(m, src, dst, net.now)
    assert receiver.state in (State.ESTABLISHED, State.CLOSED)
    # The safety net in receive_datagram must not be what caught it: handlers decide.
    assert not [k for k in receiver.drops if k.startswith("unprocessable")], receiver.drops
    receiver.datagrams_to_send(net.now)
    list(iter(receiver.next_event, None))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([35, 37, 43]), st.lists(payload, max_size=7))
def test_random_ike_auth_requests_to_a_waiting_responder(exchange: int, payloads: list) -> None:
    net = pair(*psk_configs())
    net.i.initiate(0.0)
    net.run(until=lambda: net.i.state is State.AUTH_SENT)
    net.i.datagrams_to_send(net.now)  # the real IKE_AUTH never leaves
    assert net.r.state is State.INIT_DONE
    msgs = encode(
        spi_i=net.i.spi_i,
        spi_r=net.i.spi_r,
        exchange=exchange,
        message_id=1,
        flags=flags_for(original_initiator=True, response=False),
        payloads=payloads,
        ctx=net.i._tx,
        rng=net.i.rng,
    )
    for m in msgs:
        net.r.receive_datagram(m, I_ADDR, R_ADDR, net.now)
    assert net.r.state in (State.INIT_DONE, State.ESTABLISHED, State.CLOSED)
    assert not [k for k in net.r.drops if k.startswith("unprocessable")], net.r.drops
