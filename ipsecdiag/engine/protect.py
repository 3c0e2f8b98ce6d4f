"""Turning payloads into the bytes of an IKE message and back, with SK/SKF protection.

:func:`encode` builds one message (unprotected for IKE_SA_INIT, else one SK payload, or RFC 7383
SKF fragments when they were negotiated and the message would exceed the fragment size).
:func:`decode_protected` verifies and decrypts the SK/SKF payload of a parsed message.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..crypto.rng import RandomSource
from ..crypto.sk import SkContext
from ..wire.buffer import Writer
from ..wire.ikev2 import (
    FLAG_INITIATOR,
    FLAG_RESPONSE,
    IkeHeader,
    IkeMessage,
    Payload,
    build_message,
    parse_payloads,
    push_header,
    serialize_message,
    serialize_payloads,
)
from ..wire.ikev2_payloads import SkfPayload
from ..wire.registry import PayloadType
from .fragments import chunk_size

__all__ = ["encode", "flags_for", "header_bytes", "inner_payloads"]


def flags_for(*, original_initiator: bool, response: bool) -> int:
    return (FLAG_INITIATOR if original_initiator else 0) | (FLAG_RESPONSE if response else 0)


def header_bytes(spi_i: bytes, spi_r: bytes, exchange: int, message_id: int, flags: int) -> bytes:
    """A 28-byte IKE header whose Next Payload and Length the SK layer patches."""
    w = Writer()
    push_header(w, IkeHeader(spi_i, spi_r, PayloadType.SK, 2, 0, exchange, flags, message_id, 0))
    return w.getvalue()


def encode(
    *,
    spi_i: bytes,
    spi_r: bytes,
    exchange: int,
    message_id: int,
    flags: int,
    payloads: Sequence[Payload],
    ctx: SkContext | None,
    rng: RandomSource,
    fragment_size: int | None = None,
    ipv6: bool = False,
    marker: bool = False,
) -> list[bytes]:
    """The IKE message(s) (without non-ESP marker): one unless fragmented (RFC 7383)."""
    if ctx is None:
        return [serialize_message(build_message(spi_i, spi_r, exchange, message_id, payloads, flags=flags))]
    first, plaintext = serialize_payloads(payloads)
    hdr = header_bytes(spi_i, spi_r, exchange, message_id, flags)
    whole = ctx.protect(
        ike_header=hdr, first_inner_type=first, plaintext=plaintext, iv=rng.bytes(ctx.iv_size)
    )
    ip_overhead = (40 if ipv6 else 20) + 8 + (4 if marker else 0)
    if fragment_size is None or len(whole) + ip_overhead <= fragment_size:
        return [whole]
    size = chunk_size(ctx, fragment_size=fragment_size, ipv6=ipv6, marker=marker)
    chunks = [plaintext[i : i + size] for i in range(0, len(plaintext), size)] or [b""]
    return [
        ctx.protect_fragment(
            ike_header=hdr,
            first_inner_type=first if n == 1 else 0,
            fragment_number=n,
            total_fragments=len(chunks),
            plaintext=chunk,
            iv=rng.bytes(ctx.iv_size),
        )
        for n, chunk in enumerate(chunks, 1)
    ]


def decrypt(ctx: SkContext, data: bytes, msg: IkeMessage) -> bytes:
    """Verify and decrypt the message's SK or SKF payload (raises CryptoError subclasses)."""
    enc = msg.encrypted
    assert enc is not None and msg.encrypted_data_offset is not None
    fragment = isinstance(enc, SkfPayload)
    sk_offset = msg.encrypted_data_offset - (8 if fragment else 4)
    return ctx.decrypt(data[: msg.header.length], sk_offset, fragment=fragment)


def inner_payloads(msg: IkeMessage, first_type: int, plaintext: bytes) -> tuple[Payload, ...]:
    """The unprotected payloads before SK followed by the decrypted inner chain."""
    base = msg.encrypted_data_offset or 0
    return msg.payloads[:-1] + parse_payloads(first_type, plaintext, base_offset=base)
