"""IKEv2 codec: hand-assembled RFC 7296 layouts, edge cases, display helpers."""

from __future__ import annotations

import warnings

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ipsecdiag.wire.buffer import Buffer, Writer
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
    IkeHeader,
    IkeMessage,
    KePayload,
    NoncePayload,
    NotifyPayload,
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
    peek_header,
    proposal_summary,
    pull_header,
    push_header,
    serialize_message,
    serialize_payloads,
    transform_iana_name,
    transform_label,
)
from ipsecdiag.wire.registry import (
    AuthMethod,
    CertEncoding,
    CfgAttr,
    CfgType,
    EncrId,
    ExchangeType,
    IdType,
    IntegId,
    KeGroup,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
    TsType,
)

SPI_I = bytes.fromhex("0011223344556677")
SPI_R = bytes.fromhex("8899aabbccddeeff")


def header(
    next_payload: int, length: int, *, version: int = 0x20, exchange: int = 34, flags: int = 0x08
) -> bytes:
    """RFC 7296 §3.1 IKE header."""
    return (
        SPI_I
        + SPI_R
        + bytes([next_payload, version, exchange, flags])
        + (0).to_bytes(4, "big")
        + length.to_bytes(4, "big")
    )


def generic(next_payload: int, body: bytes, *, critical: bool = False) -> bytes:
    """RFC 7296 §3.2 generic payload header + body."""
    return bytes([next_payload, 0x80 if critical else 0]) + (4 + len(body)).to_bytes(2, "big") + body


def message(first: int, chain: bytes) -> bytes:
    return header(first, 28 + len(chain)) + chain


def aes_cbc_128_proposal() -> bytes:
    # RFC 7296 §3.3.1/§3.3.2/§3.3.5: proposal 1, IKE, no SPI, 4 transforms; Key Length is TV (AF=1).
    t1 = bytes([3, 0, 0, 12, 1, 0, 0, 12]) + bytes([0x80, 14, 0, 128])  # ENCR_AES_CBC, KL 128
    t2 = bytes([3, 0, 0, 8, 2, 0, 0, 5])  # PRF_HMAC_SHA2_256
    t3 = bytes([3, 0, 0, 8, 3, 0, 0, 12])  # AUTH_HMAC_SHA2_256_128
    t4 = bytes([0, 0, 0, 8, 4, 0, 0, 14])  # MODP_2048
    body = bytes([1, 1, 0, 4]) + t1 + t2 + t3 + t4
    return bytes([0, 0]) + (4 + len(body)).to_bytes(2, "big") + body


def ike_sa_init_request() -> bytes:
    sa = generic(34, aes_cbc_128_proposal())
    ke = generic(40, (14).to_bytes(2, "big") + b"\x00\x00" + b"\x5a" * 256)
    nonce = generic(41, bytes(range(32)))
    nat = generic(0, bytes([0, 0]) + (16388).to_bytes(2, "big") + b"\x01" * 20)
    return message(33, sa + ke + nonce + nat)


# -- header --------------------------------------------------------------------------------


def test_header_fields_and_flags() -> None:
    data = header(33, 28, flags=0x28)
    h = peek_header(data)
    assert (h.spi_i, h.spi_r, h.next_payload, h.major, h.minor) == (SPI_I, SPI_R, 33, 2, 0)
    assert (h.exchange_type, h.exchange_name, h.message_id, h.length) == (34, "IKE_SA_INIT", 0, 28)
    assert h.is_response and h.is_initiator and not h.version_flag
    w = Writer()
    push_header(w, h)
    assert w.getvalue() == data
    assert pull_header(Buffer(data)) == h


def test_peek_header_needs_28_bytes() -> None:
    with pytest.raises(MalformedMessage) as exc:
        peek_header(header(0, 28)[:27])
    assert exc.value.field == "header.length"


def test_ikev1_header_is_not_ikev2() -> None:
    with pytest.raises(UnsupportedVersion):
        parse_message(header(0, 28, version=0x10))


@pytest.mark.parametrize("length", [0, 27])
def test_header_length_below_28(length: int) -> None:
    with pytest.raises(MalformedMessage) as exc:
        parse_message(header(0, length))
    assert (exc.value.offset, exc.value.field) == (24, "header.length")


def test_header_length_beyond_datagram() -> None:
    with pytest.raises(MalformedMessage) as exc:
        parse_message(header(0, 40))
    assert (exc.value.offset, exc.value.field) == (24, "header.length")
    chain = parse_header_and_chain(header(0, 40))
    assert chain.types == [] and chain.error is not None and chain.error.field == "header.length"


def test_datagram_longer_than_header() -> None:
    m = parse_message(header(0, 28) + b"junk")
    assert m.payloads == () and m.extra == b"junk" and m.slack == b""
    assert serialize_message(m) == header(0, 28)


# -- a complete IKE_SA_INIT, byte for byte -------------------------------------------------


def test_ike_sa_init_known_answer() -> None:
    data = ike_sa_init_request()
    m = parse_message(data)
    assert payload_names(m.payloads) == ["SA", "KE", "Nonce", "N"]
    sa, ke, nonce, nat = m.payloads
    assert sa == SaPayload(
        (
            Proposal(
                1,
                ProtocolId.IKE,
                b"",
                (
                    Transform(TransformType.ENCR, EncrId.ENCR_AES_CBC, (TransformAttribute(14, 128, True),)),
                    Transform(TransformType.PRF, PrfId.PRF_HMAC_SHA2_256),
                    Transform(TransformType.INTEG, IntegId.AUTH_HMAC_SHA2_256_128),
                    Transform(TransformType.KE, KeGroup.MODP_2048),
                ),
            ),
        )
    )
    assert ke == KePayload(KeGroup.MODP_2048, b"\x5a" * 256)
    assert nonce == NoncePayload(bytes(range(32)))
    assert nat == NotifyPayload(0, b"", NotifyType.NAT_DETECTION_SOURCE_IP, b"\x01" * 20)
    assert notify_names(m.payloads) == ["NAT_DETECTION_SOURCE_IP"]
    assert serialize_message(m) == data
    assert (
        proposal_summary(sa.proposals[0]) == "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
    )


# -- every payload type round-trips --------------------------------------------------------

ALL_PAYLOADS = [
    SaPayload(
        (
            Proposal(
                1,
                ProtocolId.ESP,
                b"\xc0\x01\x02\x03",
                (
                    Transform(1, 20, (TransformAttribute(14, 256),)),
                    Transform(5, 0),
                    Transform(6, 36),
                    Transform(99, 1, (TransformAttribute(200, b"opaque", tv=False),)),
                ),
            ),
            Proposal(2, ProtocolId.AH, b"\x00\x00\x00\x01", ()),
        )
    ),
    KePayload(KeGroup.CURVE25519, b"k" * 32),
    IdPayload(PayloadType.IDi, IdType.ID_FQDN, b"moon.strongswan.org"),
    IdPayload(PayloadType.IDr, IdType.ID_IPV4_ADDR, b"\x0a\x00\x00\x01"),
    CertPayload(CertEncoding.X509_CERT_SIGNATURE, b"\x30\x82cert"),
    CertReqPayload(CertEncoding.X509_CERT_SIGNATURE, b"h" * 40),
    AuthPayload(AuthMethod.SHARED_KEY_MIC, b"a" * 32),
    NoncePayload(b"n" * 32),
    NotifyPayload(ProtocolId.ESP, b"\x01\x02\x03\x04", NotifyType.REKEY_SA),
    NotifyPayload(0, b"", NotifyType.USE_TRANSPORT_MODE, critical=True),
    DeletePayload(ProtocolId.ESP, 4, (b"\x01\x02\x03\x04", b"\x05\x06\x07\x08")),
    DeletePayload(ProtocolId.IKE, 0, ()),
    VendorIdPayload(b"strongSwan"),
    TsPayload(
        PayloadType.TSi,
        (
            TrafficSelector(TsType.TS_IPV4_ADDR_RANGE, 0, 0, 65535, b"\x0a\x63\x0a\x00", b"\x0a\x63\x0a\xff"),
            TrafficSelector(TsType.TS_IPV6_ADDR_RANGE, 6, 80, 80, bytes(16), b"\xff" * 16),
            TrafficSelector(TsType.TS_SECLABEL, 0, data=b"system_u:object_r:ipsec_spd_t:s0\x00"),
        ),
    ),
    TsPayload(PayloadType.TSr, ()),
    CpPayload(
        CfgType.CFG_REQUEST,
        (CfgAttribute(CfgAttr.INTERNAL_IP4_ADDRESS), CfgAttribute(3, b"\x08\x08\x08\x08")),
    ),
    EapPayload(bytes([1, 7, 0, 10, 1]) + b"hello"),
    UnknownPayload(PayloadType.GSPM, False, b"gspm"),
    UnknownPayload(200, True, b""),
]


@pytest.mark.parametrize("payload", ALL_PAYLOADS, ids=lambda p: type(p).__name__)
def test_payload_round_trip(payload: object) -> None:
    for tail in ([], [SkPayload(PayloadType.IDi, b"iv-ct-icv")]):
        m = build_message(SPI_I, SPI_R, ExchangeType.IKE_AUTH, 1, [payload, *tail], flags=0x08)  # type: ignore[list-item]
        assert parse_message(serialize_message(m)) == m
    first, body = serialize_payloads([payload])  # type: ignore[list-item]
    assert parse_payloads(first, body, base_offset=60) == (payload,)


def test_all_payloads_in_one_chain() -> None:
    chain = [*ALL_PAYLOADS, SkfPayload(PayloadType.IDi, 1, 3, b"frag")]
    m = build_message(SPI_I, SPI_R, ExchangeType.IKE_AUTH, 7, chain)  # type: ignore[arg-type]
    data = serialize_message(m)
    assert (m.header.next_payload, m.header.length) == (PayloadType.SA, len(data))
    assert parse_message(data) == m
    assert [r.offset for r in parse_header_and_chain(data).raw][0] == 28


# -- chain edge cases ----------------------------------------------------------------------


def test_zero_payload_length_is_malformed_not_a_loop() -> None:
    data = message(41, bytes([41, 0, 0, 0]) + b"\x00" * 8)
    with pytest.raises(MalformedMessage) as exc:
        parse_message(data)
    assert (exc.value.offset, exc.value.field) == (30, "N.payload length")


def test_payload_length_overrun() -> None:
    data = message(40, bytes([0, 0, 0, 40]) + b"n" * 8)
    with pytest.raises(MalformedMessage) as exc:
        parse_message(data)
    assert (exc.value.offset, exc.value.field) == (30, "Nonce.payload length")
    assert "overruns" in exc.value.reason


def test_truncated_generic_header() -> None:
    with pytest.raises(MalformedMessage) as exc:
        parse_message(message(40, b"\x00\x00"))
    assert (exc.value.offset, exc.value.field) == (28, "Nonce.generic header")


def test_chain_announces_payload_after_end() -> None:
    data = message(40, generic(41, b"n" * 16))
    with pytest.raises(MalformedMessage) as exc:
        parse_message(data)
    assert (exc.value.offset, exc.value.field) == (48, "N.generic header")
    chain = parse_header_and_chain(data)
    assert payload_names(chain.raw) == ["Nonce"] and isinstance(chain.parsed[0], NoncePayload)


def test_unknown_critical_payload_is_kept() -> None:
    # RFC 7296 §2.5: the responder rejects it with UNSUPPORTED_CRITICAL_PAYLOAD; the codec keeps it.
    data = message(150, generic(40, b"private", critical=True) + generic(0, b"n" * 16))
    m = parse_message(data)
    assert m.payloads[0] == UnknownPayload(150, True, b"private")
    assert payload_names(m.payloads) == ["PAYLOAD_150", "Nonce"]
    assert serialize_message(m) == data


def test_critical_bit_on_known_payload_round_trips() -> None:
    data = message(40, generic(0, b"n" * 16, critical=True))
    m = parse_message(data)
    assert m.payloads == (NoncePayload(b"n" * 16, critical=True),)
    assert serialize_message(m) == data


def test_sk_must_be_last() -> None:
    data = message(46, generic(35, b"ciphertext") + generic(0, b"n" * 16))
    with pytest.raises(MalformedMessage) as exc:
        parse_message(data)
    assert (exc.value.offset, exc.value.field) == (42, "SK")
    with pytest.raises(ValueError):
        serialize_payloads([SkPayload(35, b"x"), NoncePayload(b"n")])


def test_sk_next_payload_is_the_first_inner_type() -> None:
    data = message(41, generic(46, bytes([0, 0, 0x40, 0x06])) + generic(35, b"iv|ct|icv"))
    m = parse_message(data)
    sk = m.payloads[1]
    assert isinstance(sk, SkPayload) and sk.first_inner_type == PayloadType.IDi and sk.data == b"iv|ct|icv"
    assert m.encrypted is sk and serialize_message(m) == data
    assert data[m.encrypted_data_offset :] == b"iv|ct|icv"  # type: ignore[misc]


def test_skf_fields() -> None:
    # RFC 7383 §2.5: Fragment Number, Total Fragments, then the encrypted data.
    data = message(53, generic(0, bytes([0, 2, 0, 3]) + b"iv|ct|icv"))
    m = parse_message(data)
    assert m.payloads == (SkfPayload(0, 2, 3, b"iv|ct|icv"),)
    assert m.encrypted_data_offset == 28 + 8  # AAD: header, generic header, fragment fields
    with pytest.raises(MalformedMessage) as exc:
        parse_message(message(53, generic(35, bytes([0, 1]))))
    assert exc.value.field == "SKF.total fragments"


def test_slack_after_the_last_payload() -> None:
    chain = generic(0, b"n" * 16) + b"\x00\x00"
    m = parse_message(message(40, chain))
    assert m.slack == b"\x00\x00" and m.payloads == (NoncePayload(b"n" * 16),)
    assert parse_header_and_chain(message(40, chain)).slack == b"\x00\x00"


def test_inner_chain_must_fill_the_plaintext() -> None:
    with pytest.raises(MalformedMessage) as exc:
        parse_payloads(40, generic(0, b"n" * 16) + b"\x00", base_offset=100)
    assert (exc.value.offset, exc.value.field) == (120, "payload chain")


def test_inner_error_offsets_are_absolute() -> None:
    bad_ke = generic(0, b"\x00")  # KE needs group + reserved
    with pytest.raises(MalformedMessage) as exc:
        parse_payloads(34, bad_ke, base_offset=36)
    assert (exc.value.offset, exc.value.field) == (40, "KE.group")


def test_chain_view_keeps_going_past_a_bad_body() -> None:
    data = message(
        34, generic(40, b"\x00") + generic(41, b"n" * 16) + generic(0, bytes([0, 0, 0, 14, 0, 14]))
    )
    with pytest.raises(MalformedMessage):
        parse_message(data)
    chain = parse_header_and_chain(data)
    assert payload_names(chain.raw) == ["KE", "Nonce", "N"]
    assert chain.parsed[0] is None and isinstance(chain.parsed[1], NoncePayload)
    assert notify_names(chain.parsed) == ["NO_PROPOSAL_CHOSEN"]
    assert [e.field for e in chain.errors] == ["KE.group"]
    assert [(r.offset, r.length) for r in chain.raw] == [(28, 5), (33, 20), (53, 10)]


# -- SA body errors ------------------------------------------------------------------------


def sa_message(sa_body: bytes) -> bytes:
    return message(33, generic(0, sa_body))


def test_proposal_length_overrun() -> None:
    body = bytearray(aes_cbc_128_proposal())
    body[2:4] = (len(body) + 8).to_bytes(2, "big")
    with pytest.raises(MalformedMessage) as exc:
        parse_message(sa_message(bytes(body)))
    assert (exc.value.offset, exc.value.field) == (36, "SA.proposal[1].length")


def test_transform_attribute_length_overrun() -> None:
    tlv = bytes([0x00, 0x90, 0x00, 0x10, 0xAA])  # TLV attribute claiming 16 bytes, 1 present
    t1 = bytes([3, 0, 0, 8, 2, 0, 0, 5])
    t2 = bytes([0, 0, 0, 8 + len(tlv), 1, 0, 0, 12]) + tlv
    prop = bytes([1, 1, 0, 2]) + t1 + t2
    body = bytes([0, 0]) + (4 + len(prop)).to_bytes(2, "big") + prop
    with pytest.raises(MalformedMessage) as exc:
        parse_message(sa_message(body))
    assert exc.value.field == "SA.proposal[1].transform[2].attribute[1].length"
    assert exc.value.offset == 32 + 8 + 8 + 8 + 4


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.__setitem__(0, 2), "SA.proposal[1].last substruc"),  # "more" but none follows
        (lambda b: b.__setitem__(7, 5), "SA.proposal[1].transform count"),
        (lambda b: b.__setitem__(8, 0), "SA.proposal[1].transform[1].last substruc"),
        (lambda b: b.__setitem__(11, 4), "SA.proposal[1].transform[1].length"),
    ],
)
def test_sa_structure_errors(mutate: object, field: str) -> None:
    body = bytearray(aes_cbc_128_proposal())
    mutate(body)  # type: ignore[operator]
    with pytest.raises(MalformedMessage) as exc:
        parse_message(sa_message(bytes(body)))
    assert exc.value.field == field


def test_empty_sa_is_malformed() -> None:
    with pytest.raises(MalformedMessage) as exc:
        parse_message(sa_message(b""))
    assert exc.value.field == "SA"
    with pytest.raises(ValueError):
        serialize_payloads([SaPayload(())])


# -- other body errors ---------------------------------------------------------------------


def test_ts_errors() -> None:
    good = bytes([7, 0, 0, 16, 0, 0, 255, 255]) + bytes(4) + b"\xff" * 4
    with pytest.raises(MalformedMessage) as exc:
        parse_payloads(44, generic(0, bytes([2, 0, 0, 0]) + good))
    assert exc.value.field == "TSi.ts count"
    short = bytes([7, 0, 0, 12, 0, 0, 255, 255]) + bytes(4)
    with pytest.raises(MalformedMessage) as exc:
        parse_payloads(45, generic(0, bytes([1, 0, 0, 0]) + short))
    assert exc.value.field == "TSr.selector[1].length"


def test_delete_count_mismatch() -> None:
    with pytest.raises(MalformedMessage) as exc:
        parse_payloads(42, generic(0, bytes([3, 4, 0, 2]) + b"\x01\x02\x03\x04"))
    assert (exc.value.offset, exc.value.field) == (6, "D.spi count")


def test_serializer_rejects_unencodable_values() -> None:
    bad = [
        SaPayload((Proposal(1, 1, b"", (Transform(1, 12, (TransformAttribute(14, 70000),)),)),)),
        SaPayload((Proposal(1, 1, b"", (Transform(1, 12, (TransformAttribute(14, b"x", tv=True),)),)),)),
        DeletePayload(3, 4, (b"\x01\x02",)),
        TsPayload(44, (TrafficSelector(7, 0, 0, 65535, bytes(16), bytes(16)),)),
        NoncePayload(b"x" * 70000),
    ]
    for p in bad:
        with pytest.raises(ValueError):
            serialize_payloads([p])  # type: ignore[list-item]


# -- display helpers -----------------------------------------------------------------------


BAD_DN = bytes.fromhex(
    "3030310b3009060355630603024348310d300b06035504030c046d6f6f9f3112301006092a864886f70d0109011603614062"
)


def dn_der() -> bytes:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CH"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "strongSwan"),
            x509.NameAttribute(NameOID.COMMON_NAME, "moon.strongswan.org"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "moon@strongswan.org"),
        ]
    )
    return name.public_bytes()


@pytest.mark.parametrize(
    ("id_type", "data", "text"),
    [
        (IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 1]), "192.0.2.1"),
        (IdType.ID_IPV6_ADDR, bytes.fromhex("20010db8") + bytes(11) + b"\x01", "2001:db8::1"),
        (IdType.ID_FQDN, b"moon.strongswan.org", "moon.strongswan.org"),
        (IdType.ID_RFC822_ADDR, b"carol@strongswan.org", "carol@strongswan.org"),
        (
            IdType.ID_DER_ASN1_DN,
            dn_der(),
            "C=CH, O=strongSwan, CN=moon.strongswan.org, E=moon@strongswan.org",
        ),
        (IdType.ID_DER_ASN1_DN, b"\x30\x05junk", "30056a756e6b"),
        # a mutated but well-formed DN: unknown OID, BIT STRING value (hex), invalid UTF-8
        (IdType.ID_DER_ASN1_DN, BAD_DN, "2.5.99.6=#4348, CN=moo\ufffd, E=a@b"),
        # the same cut short: not DER, so hex
        (IdType.ID_DER_ASN1_DN, BAD_DN[:-1], BAD_DN[:-1].hex()),
        (IdType.ID_KEY_ID, b"\x01\xab", "01ab"),
        (IdType.ID_IPV4_ADDR, b"\x01", "01"),
        (IdType.ID_FQDN, b"\xff\xfe", "fffe"),
        (IdType.ID_NULL, b"", "NULL"),
    ],
)
def test_id_display(id_type: int, data: bytes, text: str) -> None:
    p = IdPayload(PayloadType.IDi, id_type, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # display must stay quiet on odd DNs
        assert p.display() == text
    assert p.payload_type == PayloadType.IDi


def v4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (TrafficSelector(7, 0, 0, 65535, v4("10.99.10.0"), v4("10.99.10.255")), "10.99.10.0/24"),
        (TrafficSelector(7, 0, 0, 65535, v4("10.0.0.1"), v4("10.0.0.5")), "10.0.0.1-10.0.0.5"),
        (TrafficSelector(7, 0, 0, 65535, v4("10.0.0.1"), v4("10.0.0.1")), "10.0.0.1/32"),
        (TrafficSelector(7, 0, 0, 65535, v4("0.0.0.0"), v4("255.255.255.255")), "0.0.0.0/0"),
        (TrafficSelector(8, 0, 0, 65535, bytes(16), b"\xff" * 16), "::/0"),
        (TrafficSelector(7, 6, 0, 65535, v4("10.0.0.0"), v4("10.0.0.255")), "10.0.0.0/24[tcp]"),
        (TrafficSelector(7, 17, 500, 500, v4("10.0.0.1"), v4("10.0.0.1")), "10.0.0.1/32[udp/500]"),
        (TrafficSelector(7, 6, 1024, 65535, v4("10.0.0.1"), v4("10.0.0.1")), "10.0.0.1/32[tcp/1024-65535]"),
        (TrafficSelector(7, 132, 0, 65535, v4("10.0.0.1"), v4("10.0.0.1")), "10.0.0.1/32[132]"),
        (TrafficSelector(7, 6, 65535, 0, v4("10.0.0.1"), v4("10.0.0.1")), "10.0.0.1/32[tcp/OPAQUE]"),
        (TrafficSelector(7, 0, 0, 65535, v4("10.0.0.9"), v4("10.0.0.1")), "10.0.0.9-10.0.0.1"),
        (TrafficSelector(10, 0, data=b"system_u:r:t:s0\x00"), "seclabel:system_u:r:t:s0"),
        (TrafficSelector(7, 0, 0, 65535, b"\x0a", bytes(16)), "0a-" + "00" * 16),  # hand-built nonsense
        (TrafficSelector(99, 0, data=b"\x01\x02"), "TS_99:0102"),
    ],
)
def test_ts_display(ts: TrafficSelector, text: str) -> None:
    assert ts.display() == text


def test_ts_payload_display() -> None:
    p = TsPayload(PayloadType.TSr, (TrafficSelector(7, 0, 0, 65535, v4("10.1.0.0"), v4("10.1.255.255")),) * 2)
    assert p.display() == "10.1.0.0/16, 10.1.0.0/16" and p.payload_type == PayloadType.TSr


def test_notify_helpers() -> None:
    ke = NotifyPayload(0, b"", NotifyType.INVALID_KE_PAYLOAD, b"\x00\x13")
    assert ke.requested_group() == KeGroup.ECP_256 and ke.is_error and ke.name == "INVALID_KE_PAYLOAD"
    assert NotifyPayload(0, b"", NotifyType.INVALID_KE_PAYLOAD, b"\x13").requested_group() is None
    sig = NotifyPayload(0, b"", NotifyType.SIGNATURE_HASH_ALGORITHMS, bytes.fromhex("00020003000400050006"))
    assert sig.signature_hash_algorithms() == (2, 3, 4, 5, 6) and not sig.is_error
    assert (
        NotifyPayload(0, b"", NotifyType.SIGNATURE_HASH_ALGORITHMS, b"\x00").signature_hash_algorithms()
        is None
    )
    rekey = NotifyPayload(ProtocolId.ESP, b"\xc1\x00\x00\x01", NotifyType.REKEY_SA)
    assert rekey.rekey_spi() == b"\xc1\x00\x00\x01" and ke.rekey_spi() is None
    cookie = NotifyPayload(0, b"", NotifyType.COOKIE, b"c" * 16)
    assert cookie.cookie() == b"c" * 16 and ke.cookie() is None
    inv = NotifyPayload(ProtocolId.ESP, b"", NotifyType.INVALID_SPI, b"\xde\xad\xbe\xef")
    assert inv.invalid_spi() == b"\xde\xad\xbe\xef"
    addke = NotifyPayload(0, b"", NotifyType.ADDITIONAL_KEY_EXCHANGE, b"link")
    assert addke.additional_key_exchange_link() == b"link" and cookie.additional_key_exchange_link() is None
    # RFC 5685 §8: GW Ident Type, GW Ident Len, New Responder GW Identity, Nonce Data.
    red = NotifyPayload(
        0, b"", NotifyType.REDIRECT, bytes([2, 16]) + bytes.fromhex("20010db8") + bytes(12) + b"N" * 8
    )
    info = red.redirect()
    assert info is not None and info.display() == "2001:db8::" and info.nonce == b"N" * 8
    assert NotifyPayload(0, b"", NotifyType.REDIRECT, bytes([3, 40]) + b"short").redirect() is None
    assert NotifyPayload(0, b"", NotifyType.REDIRECT, bytes([9, 1, 7])).redirect().display() == "GW_ID_9:07"  # type: ignore[union-attr]
    assert NotifyPayload(0, b"", 40000).name == "NOTIFY_40000"


def test_small_payload_helpers() -> None:
    eap = EapPayload(bytes([2, 9, 0, 9, 1]) + b"user")
    assert (eap.code, eap.identifier, eap.type) == (2, 9, 1)
    success = EapPayload(bytes([3, 9, 0, 4]))
    assert (success.code, success.type) == (3, None) and EapPayload(b"").code is None
    assert CertReqPayload(4, b"x" * 21).ca_hashes() is None and CertReqPayload(4, b"").ca_hashes() == ()
    assert IdPayload(PayloadType.IDr, IdType.ID_KEY_ID, b"").type_name == "ID_KEY_ID"


def test_transform_names() -> None:
    gcm = Transform(TransformType.ENCR, EncrId.ENCR_AES_GCM_16, (TransformAttribute(14, 256),))
    assert (transform_iana_name(gcm), transform_label(gcm), gcm.key_length) == (
        "ENCR_AES_GCM_16",
        "ENCR_AES_GCM_16_256",
        256,
    )
    assert transform_label(Transform(TransformType.ENCR, EncrId.ENCR_3DES)) == "ENCR_3DES"
    assert transform_iana_name(Transform(TransformType.INTEG, 0)) == "NONE"
    assert transform_iana_name(Transform(TransformType.ESN, 1)) == "EXT_SEQ"
    assert transform_iana_name(Transform(TransformType.ADDKE2, KeGroup.ML_KEM_768)) == "ML_KEM_768"
    assert transform_iana_name(Transform(TransformType.ENCR, 1000)) == "ENCR_1000"
    assert transform_iana_name(Transform(42, 7)) == "TRANSFORM_TYPE_42_7"


def test_proposal_summary_orders_like_strongswan() -> None:
    p = Proposal(
        2,
        ProtocolId.ESP,
        b"\x00\x00\x00\x01",
        (
            Transform(TransformType.ESN, 0),
            Transform(TransformType.ADDKE1, KeGroup.ML_KEM_768),
            Transform(TransformType.KE, KeGroup.CURVE25519),
            Transform(TransformType.INTEG, IntegId.AUTH_HMAC_SHA2_256_128),
            Transform(TransformType.ENCR, EncrId.ENCR_AES_CBC, (TransformAttribute(14, 128),)),
        ),
    )
    assert proposal_summary(p) == "ESP:AES_CBC_128/HMAC_SHA2_256_128/CURVE25519/KE1_ML_KEM_768/NO_EXT_SEQ"
    assert p.of_type(TransformType.KE) == (Transform(TransformType.KE, KeGroup.CURVE25519),)


def test_message_accessors() -> None:
    n = NotifyPayload(0, b"", NotifyType.INITIAL_CONTACT)
    m = IkeMessage(IkeHeader(SPI_I, SPI_R, 41, 2, 0, 37, 0, 2, 36), (n,))
    assert m.notifies == (n,) and m.of_type(NotifyPayload) == (n,) and m.encrypted is None
    assert m.encrypted_data_offset is None
    assert payload_names([UnknownPayload(49, False, b""), UnknownPayload(201, False, b"")]) == [
        "GSPM",
        "PAYLOAD_201",
    ]


def test_cp_attribute_reserved_bit_is_ignored() -> None:
    # RFC 7296 §3.15.1: the R bit is reserved; receivers ignore it.
    body = bytes([CfgType.CFG_REPLY, 0, 0, 0]) + bytes([0x80, 0x01, 0, 4]) + bytes([10, 0, 0, 7])
    (cp,) = parse_payloads(47, generic(0, body))
    assert cp == CpPayload(
        CfgType.CFG_REPLY, (CfgAttribute(CfgAttr.INTERNAL_IP4_ADDRESS, bytes([10, 0, 0, 7])),)
    )
