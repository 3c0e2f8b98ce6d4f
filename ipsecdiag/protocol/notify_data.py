"""Notification data: a builder beside each parser, so the bytes an endpoint sends and the
bytes the analyser reads follow one definition.

Only notify types whose data has structure are here; NAT-D hashes are in
:mod:`ipsecdiag.protocol.natd`. Where the wire layer already reads the data (methods of
``wire.ikev2_payloads.NotifyPayload``: ``signature_hash_algorithms()``, ``redirect()``) only
the builder is here and the tests hold the two to each other. Parsers are lenient where
peers are (trailing bytes ignored) and return None when the data cannot be read.
"""

from __future__ import annotations

from collections.abc import Iterable


def invalid_ke_data(group: int) -> bytes:
    """INVALID_KE_PAYLOAD: the accepted KE group, two bytes (RFC 7296 §3.10.1)."""
    return group.to_bytes(2, "big")


def parse_invalid_ke(data: bytes) -> int | None:
    """The KE group an INVALID_KE_PAYLOAD asks for."""
    return int.from_bytes(data[:2], "big") if len(data) >= 2 else None


def signature_hash_algorithms_data(hash_ids: Iterable[int]) -> bytes:
    """SIGNATURE_HASH_ALGORITHMS: a list of two-byte hash algorithm ids (RFC 7427 §4); read by
    ``NotifyPayload.signature_hash_algorithms()``."""
    return b"".join(h.to_bytes(2, "big") for h in hash_ids)


def redirect_data(gw_type: int, gw_ident: bytes, nonce: bytes = b"") -> bytes:
    """REDIRECT / REDIRECTED_FROM: gateway identity type, length, identity, then the nonce of
    the IKE_SA_INIT request when redirecting during it (RFC 5685 §8.1, §8.2); read by
    ``NotifyPayload.redirect()``."""
    if len(gw_ident) > 255:
        raise ValueError("REDIRECT gateway identity longer than 255 bytes")
    return bytes((gw_type, len(gw_ident))) + gw_ident + nonce


def dpd_sequence_data(seq: int) -> bytes:
    """IKEv1 R-U-THERE / R-U-THERE-ACK: the 32-bit sequence number (RFC 3706 §5.2)."""
    return (seq & 0xFFFFFFFF).to_bytes(4, "big")


def parse_dpd_sequence(data: bytes) -> int | None:
    """The sequence number of an IKEv1 DPD notify."""
    return int.from_bytes(data[:4], "big") if len(data) >= 4 else None
