"""Property tests: random valid IKEv2 messages round-trip; random bytes fail cleanly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecdiag.wire.errors import MalformedMessage, UnsupportedVersion
from ipsecdiag.wire.ikev2 import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CfgAttribute,
    CpPayload,
    DeletePayload,
    EapPayload,
    IdPayload,
    IkeMessage,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    SkfPayload,
    SkPayload,
    TrafficSelector,
    Transform,
    TransformAttribute,
    TsPayload,
    UnknownPayload,
    VendorIdPayload,
    build_message,
    notify_names,
    parse_header_and_chain,
    parse_message,
    parse_payloads,
    payload_names,
    proposal_summary,
    serialize_message,
    serialize_payloads,
)
from ipsecdiag.wire.registry import PayloadType, TsType

SETTINGS = settings(max_examples=200, deadline=None)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
blob = st.binary(max_size=40)
crit = st.booleans()

attribute = st.one_of(
    st.builds(TransformAttribute, st.integers(0, 0x7FFF), u16, st.just(True)),
    st.builds(TransformAttribute, st.integers(0, 0x7FFF), blob, st.just(False)),
)
transform = st.builds(Transform, u8, u16, st.lists(attribute, max_size=3).map(tuple))
proposal = st.builds(Proposal, u8, u8, st.binary(max_size=8), st.lists(transform, max_size=5).map(tuple))
sa = st.builds(SaPayload, st.lists(proposal, min_size=1, max_size=3).map(tuple), crit)


@st.composite
def selector(draw: st.DrawFn) -> TrafficSelector:
    ts_type = draw(
        st.sampled_from([TsType.TS_IPV4_ADDR_RANGE, TsType.TS_IPV6_ADDR_RANGE, TsType.TS_SECLABEL, 200])
    )
    if ts_type in (TsType.TS_IPV4_ADDR_RANGE, TsType.TS_IPV6_ADDR_RANGE):
        n = 4 if ts_type == TsType.TS_IPV4_ADDR_RANGE else 16
        addr = st.binary(min_size=n, max_size=n)
        return TrafficSelector(ts_type, draw(u8), draw(u16), draw(u16), draw(addr), draw(addr))
    return TrafficSelector(ts_type, draw(u8), data=draw(blob))


@st.composite
def delete(draw: st.DrawFn) -> DeletePayload:
    size = draw(st.sampled_from([0, 4, 8]))
    spis = draw(st.lists(st.binary(min_size=size, max_size=size), max_size=4 if size else 0))
    return DeletePayload(draw(u8), size, tuple(spis), draw(crit))


plain_payload: st.SearchStrategy[Payload] = st.one_of(
    sa,
    st.builds(KePayload, u16, blob, crit),
    st.builds(IdPayload, st.sampled_from([PayloadType.IDi, PayloadType.IDr]), u8, blob, crit),
    st.builds(CertPayload, u8, blob, crit),
    st.builds(CertReqPayload, u8, blob, crit),
    st.builds(AuthPayload, u8, blob, crit),
    st.builds(NoncePayload, blob, crit),
    st.builds(NotifyPayload, u8, st.binary(max_size=8), u16, blob, crit),
    delete(),
    st.builds(VendorIdPayload, blob, crit),
    st.builds(
        TsPayload,
        st.sampled_from([PayloadType.TSi, PayloadType.TSr]),
        st.lists(selector(), max_size=3).map(tuple),
        crit,
    ),
    st.builds(
        CpPayload,
        u8,
        st.lists(st.builds(CfgAttribute, st.integers(0, 0x7FFF), blob), max_size=3).map(tuple),
        crit,
    ),
    st.builds(EapPayload, blob, crit),
    # Types without a codec: GSPM, IDg, GSA, KD, PS and unassigned numbers.
    st.builds(UnknownPayload, st.sampled_from([1, 49, 50, 51, 52, 54, 128, 255]), crit, blob),
)
encrypted = st.one_of(
    st.builds(SkPayload, u8, blob, crit),
    st.builds(SkfPayload, u8, u16, u16, blob, crit),
)


@st.composite
def messages(draw: st.DrawFn) -> IkeMessage:
    payloads = draw(st.lists(plain_payload, max_size=6))
    if draw(st.booleans()):
        payloads.append(draw(encrypted))
    return build_message(
        draw(st.binary(min_size=8, max_size=8)),
        draw(st.binary(min_size=8, max_size=8)),
        draw(u8),
        draw(st.integers(0, 0xFFFFFFFF)),
        payloads,
        flags=draw(u8),
        minor=draw(st.integers(0, 15)),
    )


@SETTINGS
@given(messages())
def test_message_round_trip(m: IkeMessage) -> None:
    data = serialize_message(m)
    assert len(data) == m.header.length
    back = parse_message(data)
    assert back == m and back.slack == b"" and back.extra == b""
    if m.encrypted is not None:
        assert data[m.encrypted_data_offset :] == m.encrypted.data
    assert serialize_message(back) == data
    chain = parse_header_and_chain(data)
    assert chain.errors == () and chain.parsed == m.payloads
    assert len(payload_names(m.payloads)) == len(m.payloads)


@SETTINGS
@given(st.lists(plain_payload, max_size=6), st.integers(0, 1000))
def test_inner_chain_round_trip(payloads: list[Payload], base: int) -> None:
    first, body = serialize_payloads(payloads)
    assert parse_payloads(first, body, base_offset=base) == tuple(payloads)


def _exercise(data: bytes) -> None:
    try:
        m = parse_message(data)
    except (MalformedMessage, UnsupportedVersion):
        pass
    else:
        payload_names(m.payloads)
        notify_names(m.payloads)
        for p in m.payloads:
            if isinstance(p, SaPayload):
                for prop in p.proposals:
                    proposal_summary(prop)
            elif isinstance(p, IdPayload | TsPayload):
                p.display()
            elif isinstance(p, NotifyPayload):
                p.redirect()
                p.requested_group()
                p.signature_hash_algorithms()
    try:
        parse_header_and_chain(data)
    except (MalformedMessage, UnsupportedVersion):
        pass


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_fail_cleanly(data: bytes) -> None:
    _exercise(data)


@SETTINGS
@given(u8, st.binary(max_size=300))
def test_random_chains_behind_a_valid_header_fail_cleanly(first: int, chain: bytes) -> None:
    # A well-formed header gets the parser into the payload chain with random bytes.
    header = bytes(16) + bytes([first, 0x20, 34, 0x08]) + bytes(4) + (28 + len(chain)).to_bytes(4, "big")
    _exercise(header + chain)


@SETTINGS
@given(st.sampled_from([33, 34, 35, 37, 38, 39, 41, 42, 44, 47, 53]), st.binary(max_size=120))
def test_random_bodies_of_known_types_fail_cleanly(ptype: int, body: bytes) -> None:
    chain = bytes([0, 0]) + (4 + len(body)).to_bytes(2, "big") + body
    header = bytes(16) + bytes([ptype, 0x20, 35, 0x08]) + bytes(4) + (28 + len(chain)).to_bytes(4, "big")
    _exercise(header + chain)


_DN = bytes.fromhex(
    "3030310b3009060355040613024348310d300b06035504030c046d6f6f6e3112301006092a864886f70d0109011603614062"
)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(_DN) - 1), u8), min_size=1, max_size=4))
def test_mutated_dn_display_never_raises(edits: list[tuple[int, int]]) -> None:
    der = bytearray(_DN)
    for pos, value in edits:
        der[pos] = value
    assert isinstance(IdPayload(PayloadType.IDi, 9, bytes(der)).display(), str)
