"""Notify-data builders read back by the parsers the analyser uses."""

from __future__ import annotations

from ipsecdiag.protocol.notify_data import (
    dpd_sequence_data,
    invalid_ke_data,
    parse_dpd_sequence,
    parse_invalid_ke,
    redirect_data,
    signature_hash_algorithms_data,
)
from ipsecdiag.wire.ikev2_payloads import NotifyPayload
from ipsecdiag.wire.registry import GatewayIdType, HashAlgorithm, KeGroup, NotifyType


def test_invalid_ke_round_trip() -> None:
    data = invalid_ke_data(KeGroup.ECP_256)
    assert data == b"\x00\x13"  # RFC 7296 §3.10.1: the group number, two octets
    assert parse_invalid_ke(data) == 19
    assert NotifyPayload(0, b"", NotifyType.INVALID_KE_PAYLOAD, data).requested_group() == 19
    assert parse_invalid_ke(b"\x00") is None


def test_signature_hash_algorithms_round_trip() -> None:
    ids = (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512)
    data = signature_hash_algorithms_data(ids)
    assert data == bytes.fromhex("000200030004")  # RFC 7427 §7 numbers
    n = NotifyPayload(0, b"", NotifyType.SIGNATURE_HASH_ALGORITHMS, data)
    assert n.signature_hash_algorithms() == (2, 3, 4)


def test_redirect_round_trip() -> None:
    data = redirect_data(GatewayIdType.IPV4_ADDR, bytes([192, 0, 2, 9]), b"N" * 16)
    info = NotifyPayload(0, b"", NotifyType.REDIRECT, data).redirect()
    assert info is not None
    assert (info.gw_type, info.gw_ident, info.nonce) == (GatewayIdType.IPV4_ADDR, bytes([192, 0, 2, 9]), b"N" * 16)
    assert info.display() == "192.0.2.9"


def test_dpd_sequence_round_trip() -> None:
    assert dpd_sequence_data(0x1234_5678) == bytes.fromhex("12345678")
    assert parse_dpd_sequence(dpd_sequence_data(7)) == 7
    assert parse_dpd_sequence(dpd_sequence_data(1 << 32)) == 0  # RFC 3706: the counter wraps
    assert parse_dpd_sequence(b"\x00\x01") is None
