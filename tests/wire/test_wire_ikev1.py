"""IKEv1 codec: hand-built messages, every payload type round-trips, malformed input is named."""

from __future__ import annotations

import pytest

from ipsecdiag.wire.errors import MalformedMessage
from ipsecdiag.wire.ikev1 import (
    HEADER_LEN,
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
    V1Proposal,
    V1SaPayload,
    V1SigPayload,
    V1Transform,
    V1UnknownPayload,
    V1VendorIdPayload,
    der_dn_text,
    parse_isakmp_header,
    parse_v1_message,
    parse_v1_payload_chain,
    parse_v1_payloads,
    serialize_v1_message,
    serialize_v1_payloads,
    v1_exchange_name,
    v1_notify_names,
    v1_payload_names,
    v1_phase1_params,
    v1_proposal_summary,
)
from ipsecdiag.wire.registry import V1IdType, V1NotifyType, V1PayloadType

CKY_I = bytes.fromhex("0011223344556677")
CKY_R = bytes.fromhex("8899aabbccddeeff")


def _header(exchange: int = 2, flags: int = 0, message_id: int = 0) -> IsakmpHeader:
    return IsakmpHeader(CKY_I, CKY_R, 0, 1, 0, exchange, flags, message_id, 0)


def _tv(t: int, v: int) -> V1Attribute:
    return V1Attribute(t, v, True)


# A phase 1 transform as strongSwan proposes "aes256-sha256-modp2048" with PSK, 8h lifetime.
P1_TRANSFORM = V1Transform(
    1,
    1,  # KEY_IKE
    (
        _tv(1, 7),  # Encryption: AES-CBC (RFC 3602 / RFC 2409 Appendix A)
        _tv(14, 256),  # Key length
        _tv(2, 4),  # Hash: SHA2-256
        _tv(4, 14),  # Group: MODP 2048
        _tv(3, 1),  # Authentication: pre-shared key
        _tv(11, 1),  # Life type: seconds
        V1Attribute(12, (28800).to_bytes(4, "big"), False),  # Life duration (TLV)
    ),
)
P1_PROPOSAL = V1Proposal(1, 1, b"", (P1_TRANSFORM,))
QM_PROPOSAL = V1Proposal(
    1,
    3,  # PROTO_IPSEC_ESP
    bytes.fromhex("c1a2b3c4"),
    (
        V1Transform(
            1,
            12,
            (_tv(1, 1), V1Attribute(2, (3600).to_bytes(4, "big"), False), _tv(4, 1), _tv(5, 5), _tv(6, 256)),
        ),
    ),
)

ALL_PAYLOADS = (
    V1SaPayload(1, 1, (P1_PROPOSAL, V1Proposal(2, 1, b"", (V1Transform(1, 1, (_tv(1, 5), _tv(2, 2))),)))),
    V1KePayload(bytes(range(128))),
    V1NoncePayload(b"\x42" * 20),
    V1IdPayload(V1IdType.ID_FQDN, 17, 500, b"gw.example.org"),
    V1CertPayload(4, b"\x30\x82\x01\x00" + b"\x00" * 20),
    V1CertReqPayload(4, b""),
    V1HashPayload(b"\x11" * 32),
    V1SigPayload(b"\x22" * 64),
    V1NotifyPayload(1, 1, CKY_I + CKY_R, V1NotifyType.R_U_THERE, (7).to_bytes(4, "big")),
    V1DeletePayload(1, 3, 4, (b"\x01\x02\x03\x04", b"\x05\x06\x07\x08")),
    V1VendorIdPayload(bytes.fromhex("afcad71368a1f1c96b8696fc77570100")),
    V1AttrPayload(1, 0x1234, (_tv(16520, 0), V1Attribute(16521, b"", False), V1Attribute(16522, b"", False))),
    V1NatDPayload(b"\x33" * 32),
    V1NatDPayload(b"\x34" * 20, draft=True),
    V1NatOaPayload(1, bytes([192, 0, 2, 7])),
    V1NatOaPayload(5, bytes(16), draft=True),
    V1FragPayload(0x0102, 3, 0x01, b"fragment bytes"),
    V1UnknownPayload(V1PayloadType.SAK, b"gdoi"),
)


def test_every_payload_type_round_trips_in_one_message() -> None:
    msg = V1Message(_header(), ALL_PAYLOADS)
    wire = serialize_v1_message(msg)
    parsed = parse_v1_message(wire)
    assert parsed.payloads == ALL_PAYLOADS
    assert parsed.header.length == len(wire)
    assert parsed.header.next_payload == V1PayloadType.SA
    assert serialize_v1_message(parsed) == wire
    assert v1_payload_names(parsed.payloads) == [
        "SA", "KE", "Nonce", "ID", "CERT", "CR", "HASH", "SIG", "N", "D", "V", "ATTR",
        "NAT-D", "NAT-D", "NAT-OA", "NAT-OA", "FRAG", "SAK",
    ]  # fmt: skip


def test_header_fields_and_flags() -> None:
    wire = serialize_v1_message(V1Message(_header(32, 0x01 | 0x02, 0xDEADBEEF), (), b"\x00" * 16))
    h = parse_isakmp_header(wire)
    assert (h.cookie_i, h.cookie_r, h.major, h.minor) == (CKY_I, CKY_R, 1, 0)
    assert (h.exchange_type, h.message_id, h.length) == (32, 0xDEADBEEF, HEADER_LEN + 16)
    assert h.encrypted and h.commit and not h.auth_only
    assert wire[17] == 0x10  # version octet: major 1 in the high nibble (RFC 2408 §3.1)


def test_encrypted_message_keeps_ciphertext_and_declared_first_payload() -> None:
    header = IsakmpHeader(CKY_I, CKY_R, V1PayloadType.HASH, 1, 0, 32, 0x01, 0x01020304, 0)
    wire = serialize_v1_message(V1Message(header, (), bytes(range(48))))
    parsed = parse_v1_message(wire)
    assert parsed.payloads == ()
    assert parsed.encrypted_body == bytes(range(48))
    assert parsed.header.next_payload == V1PayloadType.HASH
    assert serialize_v1_message(parsed) == wire


def test_decrypted_body_padding_is_not_an_error() -> None:
    # RFC 2409 §5.3: the plaintext is padded to the cipher block; the chain ends at next=0.
    first, body = serialize_v1_payloads((V1HashPayload(b"\x01" * 20), V1NotifyPayload(1, 1, b"", 36136, b"")))
    padded = body + b"\x00" * 7 + b"\x07"
    payloads, used = parse_v1_payload_chain(first, padded, base_offset=HEADER_LEN)
    assert used == len(body)
    assert parse_v1_payloads(first, padded) == payloads
    assert v1_notify_names(payloads) == ["R_U_THERE"]


def test_trailing_bytes_after_a_plaintext_chain_round_trip() -> None:
    msg = V1Message(_header(5), (V1NotifyPayload(1, 1, b"", 14),), None, b"\x00\x00\x00\x00")
    wire = serialize_v1_message(msg)
    assert parse_v1_message(wire) == V1Message(
        parse_v1_message(wire).header, msg.payloads, None, msg.trailing
    )


def test_udp_bytes_beyond_the_header_length_are_ignored() -> None:
    wire = serialize_v1_message(V1Message(_header(), (V1VendorIdPayload(b"abc"),)))
    assert parse_v1_message(wire + b"\xff\xff").payloads == (V1VendorIdPayload(b"abc"),)


def test_non_zero_reserved_octet_is_tolerated() -> None:
    wire = bytearray(serialize_v1_message(V1Message(_header(), (V1VendorIdPayload(b"abc"),))))
    wire[HEADER_LEN + 1] = 0x55  # generic payload header RESERVED (RFC 2408 §3.2)
    assert parse_v1_message(bytes(wire)).payloads == (V1VendorIdPayload(b"abc"),)


def test_labeled_domain_situation_is_kept() -> None:
    # RFC 2407 §4.6.1: SIT_SECRECY adds the labeled domain identifier and level/bitmap fields.
    extra = (
        bytes.fromhex("00000001")  # labeled domain identifier
        + bytes.fromhex("0003 0000") + b"abc\x00"  # secrecy level: 3 octets padded to 4
        + bytes.fromhex("0021 0000") + bytes(8)  # secrecy bitmap: 33 bits -> 8 octets
        + bytes.fromhex("0000 0000")  # no integrity level
        + bytes.fromhex("0000 0000")  # no integrity bitmap
    )  # fmt: skip
    sa = V1SaPayload(1, 0x03, (P1_PROPOSAL,), extra)
    wire = serialize_v1_message(V1Message(_header(), (sa,)))
    assert parse_v1_message(wire).payloads == (sa,)


def test_unknown_doi_keeps_the_situation_opaque() -> None:
    sa = V1SaPayload(2, 7, (), b"GDOI-specific")
    assert parse_v1_message(serialize_v1_message(V1Message(_header(), (sa,)))).payloads == (sa,)


# -- malformed input ---------------------------------------------------------------------------


def _vid_message() -> bytearray:
    return bytearray(
        serialize_v1_message(V1Message(_header(), (V1VendorIdPayload(b"abcd"), V1NoncePayload(b"n"))))
    )


@pytest.mark.parametrize("length", [0, 27])
def test_header_length_below_28_is_malformed(length: int) -> None:
    wire = _vid_message()
    wire[24:28] = length.to_bytes(4, "big")
    with pytest.raises(MalformedMessage) as e:
        parse_v1_message(bytes(wire))
    assert (e.value.offset, e.value.field) == (24, "header.length")


def test_header_length_past_the_datagram_is_malformed() -> None:
    wire = _vid_message()
    with pytest.raises(MalformedMessage) as e:
        parse_v1_message(bytes(wire[:-1]))
    assert e.value.field == "header.length"


@pytest.mark.parametrize("plen", [0, 1, 3])
def test_payload_length_below_4_is_malformed_not_a_loop(plen: int) -> None:
    wire = _vid_message()
    wire[HEADER_LEN + 2 : HEADER_LEN + 4] = plen.to_bytes(2, "big")
    with pytest.raises(MalformedMessage) as e:
        parse_v1_message(bytes(wire))
    assert (e.value.offset, e.value.field) == (HEADER_LEN + 2, "payload[0](V).length")


def test_payload_length_past_the_message_is_malformed() -> None:
    wire = _vid_message()
    wire[HEADER_LEN + 2 : HEADER_LEN + 4] = (200).to_bytes(2, "big")
    with pytest.raises(MalformedMessage) as e:
        parse_v1_message(bytes(wire))
    assert e.value.field == "payload[0](V).length"


def test_chain_announcing_a_missing_payload_is_malformed() -> None:
    wire = _vid_message()
    wire[HEADER_LEN + 8] = V1PayloadType.N  # the Nonce now announces a Notify that is not there
    with pytest.raises(MalformedMessage) as e:
        parse_v1_message(bytes(wire))
    assert e.value.field == "payload[2](N)"
    assert e.value.offset == len(wire)


def test_short_notify_body_names_the_field() -> None:
    wire = serialize_v1_message(V1Message(_header(5), (V1NotifyPayload(1, 1, b"\x01" * 16, 11),)))
    bad = bytearray(wire)
    bad[HEADER_LEN + 9] = 200  # SPI size larger than the payload
    with pytest.raises(MalformedMessage) as e:
        parse_v1_message(bytes(bad))
    assert e.value.field == "payload[0](N).spi"


def test_transform_count_mismatch_is_malformed() -> None:
    wire = bytearray(serialize_v1_message(V1Message(_header(), (V1SaPayload(1, 1, (P1_PROPOSAL,)),))))
    count_at = HEADER_LEN + 4 + 8 + 4 + 3  # SA hdr, DOI+situation, proposal hdr, then #transforms
    wire[count_at] = 2
    with pytest.raises(MalformedMessage) as e:
        parse_v1_message(bytes(wire))
    assert (e.value.offset, e.value.field) == (count_at, "payload[0](SA).proposal[0].transform_count")


def test_truncated_attribute_is_malformed() -> None:
    with pytest.raises(MalformedMessage) as e:
        parse_v1_payloads(V1PayloadType.ATTR, bytes.fromhex("0000000a 01000001 4088"))
    assert e.value.field == "payload[0](ATTR).attr[0].length"


# -- names and views ---------------------------------------------------------------------------


def test_exchange_names_match_the_report_contract() -> None:
    assert [v1_exchange_name(t) for t in (2, 4, 32, 5, 6)] == [
        "MAIN_MODE", "AGGRESSIVE_MODE", "QUICK_MODE", "INFORMATIONAL", "TRANSACTION",
    ]  # fmt: skip
    assert v1_exchange_name(250) == "V1_EXCHANGE_250"


def test_notify_names() -> None:
    n = (V1NotifyPayload(1, 1, b"", 14), V1NotifyPayload(1, 1, b"", 36137), V1NotifyPayload(1, 1, b"", 9999))
    assert v1_notify_names(n) == ["NO_PROPOSAL_CHOSEN", "R_U_THERE_ACK", "V1_NOTIFY_9999"]
    assert n[0].is_error and not n[1].is_error


def test_phase1_summary_and_params() -> None:
    assert v1_proposal_summary(P1_PROPOSAL) == "IKE:AES_CBC_256/SHA2_256/MODP_2048/PRE_SHARED_KEY"
    p = v1_phase1_params(P1_TRANSFORM)
    assert (p["encr"], p["encr_id"], p["key_bits"], p["hash"], p["auth"]) == (
        "AES_CBC",
        7,
        256,
        "SHA2_256",
        "PRE_SHARED_KEY",
    )
    assert (p["group"], p["group_id"], p["life_seconds"], p["life_kilobytes"]) == (
        "MODP_2048",
        14,
        28800,
        None,
    )


def test_phase1_lifetimes_follow_their_life_type() -> None:
    t = V1Transform(1, 1, (_tv(11, 2), _tv(12, 4608), _tv(11, 1), _tv(12, 3600), _tv(1, 5), _tv(2, 1)))
    p = v1_phase1_params(t)
    assert (p["life_kilobytes"], p["life_seconds"]) == (4608, 3600)
    assert v1_proposal_summary(V1Proposal(1, 1, b"", (t,))) == "IKE:3DES_CBC/MD5"


def test_quick_mode_summary() -> None:
    assert v1_proposal_summary(QM_PROPOSAL) == "ESP:AES_CBC_256/HMAC_SHA2_256/TUNNEL"
    ah = V1Proposal(1, 2, b"\x00" * 4, (V1Transform(1, 3, (_tv(5, 2), _tv(3, 14), _tv(4, 2))),))
    assert v1_proposal_summary(ah) == "AH:HMAC_SHA1/MODP_2048/TRANSPORT"


def test_attribute_names_depend_on_context() -> None:
    a = _tv(4, 1)
    assert (a.type_name(AttrContext.PHASE1), a.value_text(AttrContext.PHASE1)) == (
        "GROUP_DESCRIPTION",
        "MODP_768",
    )
    assert (a.type_name(AttrContext.IPSEC), a.value_text(AttrContext.IPSEC)) == (
        "ENCAPSULATION_MODE",
        "TUNNEL",
    )
    pw = V1Attribute(16522, b"hunter2", False)
    assert pw.type_name(AttrContext.CFG) == "XAUTH_USER_PASSWORD"
    assert "hunter2" not in pw.value_text(AttrContext.CFG)
    assert V1Attribute(1, bytes([10, 1, 2, 3]), False).value_text(AttrContext.CFG) == "10.1.2.3"
    assert V1Attribute(16521, b"alice", False).value_text(AttrContext.CFG) == "alice"


@pytest.mark.parametrize(
    ("id_type", "data", "text"),
    [
        (V1IdType.ID_IPV4_ADDR, bytes([192, 0, 2, 1]), "192.0.2.1"),
        (V1IdType.ID_IPV4_ADDR_SUBNET, bytes([10, 0, 0, 0, 255, 255, 255, 0]), "10.0.0.0/24"),
        (V1IdType.ID_IPV4_ADDR_SUBNET, bytes([10, 0, 0, 0, 255, 0, 255, 0]), "10.0.0.0/255.0.255.0"),
        (V1IdType.ID_IPV4_ADDR_RANGE, bytes([10, 0, 0, 1, 10, 0, 0, 9]), "10.0.0.1-10.0.0.9"),
        (V1IdType.ID_IPV6_ADDR, bytes.fromhex("20010db8" + "00" * 11 + "01"), "2001:db8::1"),
        (
            V1IdType.ID_IPV6_ADDR_SUBNET,
            bytes.fromhex("20010db8" + "00" * 12 + "ff" * 8 + "00" * 8),
            "2001:db8::/64",
        ),
        (V1IdType.ID_FQDN, b"vpn.example.org", "vpn.example.org"),
        (V1IdType.ID_USER_FQDN, b"alice@example.org", "alice@example.org"),
        (V1IdType.ID_KEY_ID, b"\x01\xab", "01ab"),
        (V1IdType.ID_IPV4_ADDR, b"\x01\x02", "0102"),  # wrong size: shown raw, never an error
    ],
)
def test_id_display(id_type: int, data: bytes, text: str) -> None:
    assert V1IdPayload(id_type, 0, 0, data).display() == text


# C=CH, O=strongSwan, CN=moon.strongswan.org as DER (RFC 5280 Name, UTF8String values).
MOON_DN = bytes.fromhex(
    "3040310b3009060355040613024348"
    "31133011060355040a0c0a7374726f6e675377616e"
    "311c301a06035504030c136d6f6f6e2e7374726f6e677377616e2e6f7267"
)


def test_moon_dn_vector_is_what_cryptography_encodes() -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CH"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "strongSwan"),
            x509.NameAttribute(NameOID.COMMON_NAME, "moon.strongswan.org"),
        ]
    )
    assert name.public_bytes() == MOON_DN


def test_der_dn_display() -> None:
    assert der_dn_text(MOON_DN) == "C=CH, O=strongSwan, CN=moon.strongswan.org"
    assert (
        V1IdPayload(V1IdType.ID_DER_ASN1_DN, 0, 0, MOON_DN).display()
        == "C=CH, O=strongSwan, CN=moon.strongswan.org"
    )
    assert der_dn_text(MOON_DN[:-3]) is None
    assert V1IdPayload(V1IdType.ID_DER_ASN1_DN, 0, 0, b"\x30\x03abc").display() == "3003616263"


def test_vendor_id_payload_names_itself() -> None:
    assert V1VendorIdPayload(bytes.fromhex("4a131c81070358455c5728f20e95452f")).vendor == "NAT-T (RFC 3947)"
    assert V1VendorIdPayload(b"\x00" * 16).vendor is None


def test_frag_payload_last_flag() -> None:
    assert V1FragPayload(1, 2, 0x01, b"").last and not V1FragPayload(1, 1, 0x00, b"").last
