"""EAP packet bodies (RFC 3748 §4, §5.1; MS-CHAPv2 per draft-kamath-pppext-eap-mschapv2 §2 and
RFC 2759 §6; EAP-TLS flags RFC 5216 §3.1)."""

from __future__ import annotations

import struct

import pytest

from ipsecdiag.wire.eap import parse_eap
from ipsecdiag.wire.errors import MalformedMessage


def _pkt(code: int, ident: int, body: bytes) -> bytes:
    return struct.pack("!BBH", code, ident, 4 + len(body)) + body


def test_success_failure_identity() -> None:
    assert parse_eap(_pkt(3, 7, b"")).summary() == "Success"
    assert parse_eap(_pkt(4, 7, b"")).as_dict() == {"code": "FAILURE", "identifier": 7}
    p = parse_eap(_pkt(2, 1, b"\x01carol@example.org"))
    assert p.identity == "carol@example.org" and p.as_dict()["type"] == "IDENTITY"


def test_mschapv2_failure_request_error() -> None:
    text = b"E=691 R=0 C=00112233445566778899aabbccddeeff V=3 M=Authentication failed"
    ms = struct.pack("!BBH", 4, 9, 4 + len(text)) + text
    p = parse_eap(_pkt(1, 3, b"\x1a" + ms))
    assert (p.mschapv2_opcode, p.mschapv2_id, p.error, p.retry) == (4, 9, 691, False)
    assert p.message == "Authentication failed"
    assert "E=691 (authentication failure" in p.summary()
    e648 = b"E=648 R=0 V=3"
    p = parse_eap(_pkt(1, 3, b"\x1a" + struct.pack("!BBH", 4, 9, 4 + len(e648)) + e648))
    assert p.as_dict()["error_text"] == "password expired"


def test_mschapv2_challenge_and_ack() -> None:
    ms = struct.pack("!BBHB", 1, 5, 4 + 1 + 16 + 2, 16) + bytes(16) + b"gw"
    p = parse_eap(_pkt(1, 2, b"\x1a" + ms))
    assert (p.mschapv2_opcode, p.name) == (1, "gw")
    assert parse_eap(_pkt(2, 4, b"\x1a\x03")).summary() == "Response/MSCHAPV2 Success"


def test_tls_flags() -> None:
    p = parse_eap(_pkt(1, 2, b"\x0d\xa0" + struct.pack("!I", 1234)))
    assert (p.tls_flags, p.tls_length) == ("LS", 1234)
    assert parse_eap(_pkt(2, 2, b"\x19\x00")).summary() == "Response/PEAP flags -"


def test_bad_length_names_the_field() -> None:
    with pytest.raises(MalformedMessage, match="EAP.length"):
        parse_eap(b"\x01\x01\x00\x40\x01")
    with pytest.raises(MalformedMessage, match="EAP.code"):
        parse_eap(b"")
