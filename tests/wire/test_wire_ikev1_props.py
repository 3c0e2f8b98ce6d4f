"""Property tests: any payload round-trips; no byte string makes the codec raise anything but
MalformedMessage, and whatever parses can be rendered and re-encoded."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipsecdiag.wire.errors import MalformedMessage
from ipsecdiag.wire.ikev1 import (
    FLAG_ENCRYPTION,
    AttrContext,
    IsakmpHeader,
    V1Attribute,
    V1AttrPayload,
    V1CertPayload,
    V1CertReqPayload,
    V1DeletePayload,
    V1FragPayload,
    V1HashPayload,
    V1IdPayload,
    V1KePayload,
    V1Message,
    V1NatDPayload,
    V1NatOaPayload,
    V1NoncePayload,
    V1NotifyPayload,
    V1Payload,
    V1Proposal,
    V1SaPayload,
    V1SigPayload,
    V1Transform,
    V1UnknownPayload,
    V1VendorIdPayload,
    context_for,
    parse_v1_message,
    parse_v1_payloads,
    serialize_v1_message,
    v1_notify_names,
    v1_payload_names,
    v1_phase1_params,
    v1_proposal_summary,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
blob = st.binary(max_size=48)

attribute = st.one_of(
    st.builds(V1Attribute, st.integers(0, 0x7FFF), u16, st.just(True)),
    st.builds(V1Attribute, st.integers(0, 0x7FFF), blob, st.just(False)),
)
attributes = st.lists(attribute, max_size=6).map(tuple)
transform = st.builds(V1Transform, u8, u8, attributes)
proposal = st.builds(V1Proposal, u8, u8, st.binary(max_size=16), st.lists(transform, max_size=3).map(tuple))
ipsec_sa = st.builds(
    V1SaPayload,
    st.just(1),
    u32.filter(lambda s: not s & 0x06),  # SECRECY/INTEGRITY need labeled-domain fields
    st.lists(proposal, max_size=3).map(tuple),
)
other_sa = st.builds(V1SaPayload, u32.filter(lambda d: d != 1), u32, st.just(()), blob)


@st.composite
def delete(draw: st.DrawFn) -> V1DeletePayload:
    size = draw(st.integers(0, 16))
    spis = draw(st.lists(st.binary(min_size=size, max_size=size), max_size=4))
    return V1DeletePayload(draw(u32), draw(u8), size, tuple(spis))


DECODED = {1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 20, 21, 130, 131, 132}
payload: st.SearchStrategy[V1Payload] = st.one_of(
    ipsec_sa,
    other_sa,
    st.builds(V1KePayload, blob),
    st.builds(V1IdPayload, u8, u8, u16, blob),
    st.builds(V1CertPayload, u8, blob),
    st.builds(V1CertReqPayload, u8, blob),
    st.builds(V1HashPayload, blob),
    st.builds(V1SigPayload, blob),
    st.builds(V1NoncePayload, blob),
    st.builds(V1NotifyPayload, u32, u8, st.binary(max_size=16), u16, blob),
    delete(),
    st.builds(V1VendorIdPayload, blob),
    st.builds(V1AttrPayload, u8, u16, attributes),
    st.builds(V1NatDPayload, blob, st.booleans()),
    st.builds(V1NatOaPayload, u8, blob, st.booleans()),
    st.builds(V1FragPayload, u16, u8, u8, blob),
    st.builds(V1UnknownPayload, st.integers(2, 255).filter(lambda t: t not in DECODED), blob),
)
header = st.builds(
    IsakmpHeader, st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8),
    st.just(0), st.integers(0, 15), st.integers(0, 15), u8, u8, u32, st.just(0),
)  # fmt: skip


def _render(msg: V1Message) -> None:
    """Every view of a parsed message must work on whatever the parser accepted."""
    v1_payload_names(msg.payloads)
    v1_notify_names(msg.payloads)
    for p in msg.payloads:
        if isinstance(p, V1SaPayload):
            for pr in p.proposals:
                v1_proposal_summary(pr)
                for t in pr.transforms:
                    v1_phase1_params(t)
                    for a in t.attributes:
                        a.type_name(context_for(pr))
                        a.value_text(context_for(pr))
        elif isinstance(p, V1IdPayload | V1NatOaPayload):
            V1IdPayload(p.id_type, 0, 0, p.data).display()
        elif isinstance(p, V1VendorIdPayload):
            _ = p.vendor
        elif isinstance(p, V1AttrPayload):
            for a in p.attributes:
                a.value_text(AttrContext.CFG)


@FAST
@given(header, st.lists(payload, max_size=6))
def test_plaintext_messages_round_trip(h: IsakmpHeader, payloads: list[V1Payload]) -> None:
    h = dataclasses.replace(h, flags=h.flags & ~FLAG_ENCRYPTION)
    wire = serialize_v1_message(V1Message(h, tuple(payloads)))
    parsed = parse_v1_message(wire)
    assert parsed.payloads == tuple(payloads)
    assert dataclasses.replace(parsed.header, length=0, next_payload=0) == h
    assert serialize_v1_message(parsed) == wire
    _render(parsed)


@FAST
@given(header, blob)
def test_encrypted_messages_round_trip(h: IsakmpHeader, body: bytes) -> None:
    h = dataclasses.replace(h, flags=h.flags | FLAG_ENCRYPTION, next_payload=8)
    wire = serialize_v1_message(V1Message(h, (), body))
    parsed = parse_v1_message(wire)
    assert (parsed.encrypted_body, parsed.payloads) == (body, ())
    assert serialize_v1_message(parsed) == wire


def _parse_or_malformed(data: bytes) -> None:
    try:
        msg = parse_v1_message(data)
    except MalformedMessage as e:
        assert 0 <= e.offset <= len(data) and e.field
        return
    _render(msg)
    again = parse_v1_message(serialize_v1_message(msg))
    assert again.payloads == msg.payloads


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_malformed(data: bytes) -> None:
    _parse_or_malformed(data)


@FAST
@given(st.binary(min_size=28, max_size=28), st.binary(max_size=160))
def test_random_bodies_after_a_valid_header(head: bytes, body: bytes) -> None:
    data = bytearray(head + body)
    data[19] &= ~FLAG_ENCRYPTION
    data[24:28] = len(data).to_bytes(4, "big")  # a consistent length reaches the payload parser
    _parse_or_malformed(bytes(data))


@FAST
@given(u8, st.binary(max_size=200))
def test_random_decrypted_bodies(first: int, data: bytes) -> None:
    try:
        parse_v1_payloads(first, data, 28)
    except MalformedMessage as e:
        assert 28 <= e.offset <= 28 + len(data)


@FAST
@given(
    header,
    st.lists(payload, min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 10_000), u8), min_size=1, max_size=4),
    st.integers(0, 10_000),
)
def test_mutated_and_truncated_messages(
    h: IsakmpHeader, payloads: list[V1Payload], flips: list[tuple[int, int]], cut: int
) -> None:
    h = dataclasses.replace(h, flags=h.flags & ~FLAG_ENCRYPTION)
    wire = bytearray(serialize_v1_message(V1Message(h, tuple(payloads))))
    for pos, value in flips:
        wire[pos % len(wire)] = value
    _parse_or_malformed(bytes(wire))
    _parse_or_malformed(bytes(wire[: cut % (len(wire) + 1)]))
