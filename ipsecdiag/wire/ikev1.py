"""IKEv1 / ISAKMP messages <-> frozen dataclasses (RFC 2408, RFC 2409, IPsec DOI RFC 2407).

Also covers NAT-T (RFC 3947 payloads 20/21 and the draft numbering 130/131), the
Mode-Config/XAUTH attribute payload (type 14) and Cisco's IKE fragmentation payload (132).

Parsing is strict where RFC 2408 is unambiguous (lengths, chains that announce a payload the
message does not hold) and lenient where peers differ in practice (non-zero RESERVED octets,
any version number: version policing belongs to the caller). When the E flag is set everything
after the 28-byte header is ciphertext; it is kept as ``encrypted_body`` and the crypto layer
parses the plaintext later with :func:`parse_v1_payloads`.

Proposal summaries, attribute names and ID rendering are implemented in :mod:`.ikev1_display`
and re-exported here.
"""

from __future__ import annotations

from .buffer import Buffer, Writer
from .errors import MalformedMessage
from .ikev1_display import (
    AttrContext,
    attr_type_name,
    attr_value_text,
    context_for,
    der_dn_text,
    id_text,
    v1_phase1_params,
    v1_proposal_summary,
    v1_transform_summary,
)
from .ikev1_payloads import (
    FLAG_AUTH_ONLY,
    FLAG_COMMIT,
    FLAG_ENCRYPTION,
    HEADER_LEN,
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
    _DataPayload,
)
from .registry import V1Doi, V1Exchange, V1PayloadType, V1Situation, name_of

__all__ = [
    "FLAG_AUTH_ONLY",
    "FLAG_COMMIT",
    "FLAG_ENCRYPTION",
    "HEADER_LEN",
    "AttrContext",
    "IsakmpHeader",
    "V1AttrPayload",
    "V1Attribute",
    "V1CertPayload",
    "V1CertReqPayload",
    "V1DeletePayload",
    "V1FragPayload",
    "V1HashPayload",
    "V1IdPayload",
    "V1KePayload",
    "V1Message",
    "V1NatDPayload",
    "V1NatOaPayload",
    "V1NoncePayload",
    "V1NotifyPayload",
    "V1Payload",
    "V1Proposal",
    "V1SaPayload",
    "V1SigPayload",
    "V1Transform",
    "V1UnknownPayload",
    "V1VendorIdPayload",
    "attr_type_name",
    "attr_value_text",
    "context_for",
    "der_dn_text",
    "id_text",
    "parse_isakmp_header",
    "parse_v1_message",
    "parse_v1_payload_chain",
    "parse_v1_payloads",
    "pull_isakmp_header",
    "push_isakmp_header",
    "serialize_v1_message",
    "serialize_v1_payloads",
    "v1_exchange_name",
    "v1_notify_names",
    "v1_payload_names",
    "v1_payload_short_name",
    "v1_phase1_params",
    "v1_proposal_summary",
    "v1_transform_summary",
]

_AF_TV = 0x8000  # attribute format bit: set = Type/Value (2-byte value), clear = Type/Length/Value


# ------------------------------------------------------------------------------------------
# Header
# ------------------------------------------------------------------------------------------


def pull_isakmp_header(buf: Buffer) -> IsakmpHeader:
    cookie_i = buf.pull_bytes(8, "header.cookie_i")
    cookie_r = buf.pull_bytes(8, "header.cookie_r")
    next_payload = buf.pull_uint8("header.next_payload")
    version = buf.pull_uint8("header.version")
    exchange_type = buf.pull_uint8("header.exchange_type")
    flags = buf.pull_uint8("header.flags")
    message_id = buf.pull_uint32("header.message_id")
    length_at = buf.offset()
    length = buf.pull_uint32("header.length")
    if length < HEADER_LEN:
        raise MalformedMessage(length_at, "header.length", f"{length} is shorter than the 28-byte header")
    return IsakmpHeader(
        cookie_i,
        cookie_r,
        next_payload,
        version >> 4,
        version & 0x0F,
        exchange_type,
        flags,
        message_id,
        length,
    )


def push_isakmp_header(w: Writer, h: IsakmpHeader, *, next_payload: int, length: int) -> None:
    if len(h.cookie_i) != 8 or len(h.cookie_r) != 8:
        raise ValueError("ISAKMP cookies are 8 bytes each")
    w.push_bytes(h.cookie_i)
    w.push_bytes(h.cookie_r)
    w.push_uint8(next_payload)
    w.push_uint8(((h.major & 0x0F) << 4) | (h.minor & 0x0F))
    w.push_uint8(h.exchange_type)
    w.push_uint8(h.flags)
    w.push_uint32(h.message_id)
    w.push_uint32(length)


def parse_isakmp_header(data: bytes) -> IsakmpHeader:
    """Only the header: enough to demultiplex by cookies, version and exchange type."""
    return pull_isakmp_header(Buffer(data))


# ------------------------------------------------------------------------------------------
# Data attributes (RFC 2408 §3.3)
# ------------------------------------------------------------------------------------------


def _pull_attributes(b: Buffer, field: str) -> tuple[V1Attribute, ...]:
    attrs: list[V1Attribute] = []
    while not b.eof():
        af = f"{field}.attr[{len(attrs)}]"
        t = b.pull_uint16(f"{af}.type")
        if t & _AF_TV:
            attrs.append(V1Attribute(t & 0x7FFF, b.pull_uint16(f"{af}.value"), True))
        else:
            n = b.pull_uint16(f"{af}.length")
            attrs.append(V1Attribute(t, b.pull_bytes(n, f"{af}.value"), False))
    return tuple(attrs)


def _push_attributes(w: Writer, attrs: tuple[V1Attribute, ...]) -> None:
    for a in attrs:
        if a.tv:
            if not isinstance(a.value, int) or not 0 <= a.value <= 0xFFFF:
                raise ValueError(f"TV attribute {a.type} needs a 16-bit integer value")
            w.push_uint16(_AF_TV | a.type)
            w.push_uint16(a.value)
        else:
            raw = a.raw
            w.push_uint16(a.type & 0x7FFF)
            w.push_uint16(len(raw))
            w.push_bytes(raw)


# ------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------

_SHORT: dict[int, str] = {
    V1PayloadType.SA: "SA",
    V1PayloadType.KE: "KE",
    V1PayloadType.ID: "ID",
    V1PayloadType.CERT: "CERT",
    V1PayloadType.CR: "CR",
    V1PayloadType.HASH: "HASH",
    V1PayloadType.SIG: "SIG",
    V1PayloadType.Nonce: "Nonce",
    V1PayloadType.N: "N",
    V1PayloadType.D: "D",
    V1PayloadType.V: "V",
    V1PayloadType.ATTR: "ATTR",
    V1PayloadType.NAT_D: "NAT-D",
    V1PayloadType.NAT_D_DRAFT: "NAT-D",
    V1PayloadType.NAT_OA: "NAT-OA",
    V1PayloadType.NAT_OA_DRAFT: "NAT-OA",
    V1PayloadType.FRAG: "FRAG",
}


def v1_payload_short_name(payload_type: int) -> str:
    """ "SA", "NAT-D", ... or the registry name ("SAK", "V1_PAYLOAD_200") for the rest."""
    return _SHORT.get(payload_type) or name_of(V1PayloadType, payload_type)


def _pull_generic_header(b: Buffer, field: str, min_len: int = 4) -> tuple[int, Buffer]:
    """Next-payload type and a sub-buffer over the body; RESERVED is read and ignored."""
    next_type = b.pull_uint8(f"{field}.next_payload")
    b.skip(1, f"{field}.reserved")
    length_at = b.offset()
    length = b.pull_uint16(f"{field}.length")
    if length < min_len:
        raise MalformedMessage(
            length_at, f"{field}.length", f"{length} is shorter than the {min_len}-byte minimum"
        )
    if length - 4 > b.remaining:
        raise MalformedMessage(
            length_at,
            f"{field}.length",
            f"{length} runs past the enclosing data ({b.remaining + 4} bytes left)",
        )
    return next_type, b.sub(length - 4, f"{field}.body")


def _pull_labeled_domain(b: Buffer, field: str) -> bytes:
    """The RFC 2407 §4.6.1 labeled-domain fields that follow a SECRECY/INTEGRITY situation."""
    parts = [b.pull_bytes(4, f"{field}.labeled_domain_identifier")]
    for part in ("secrecy", "integrity"):
        head = b.pull_bytes(4, f"{field}.{part}_length")
        level_len = int.from_bytes(head[:2], "big")  # octets, padded to 32 bits
        parts += [head, b.pull_bytes(-(-level_len // 4) * 4, f"{field}.{part}_level")]
        head = b.pull_bytes(4, f"{field}.{part}_category_length")
        bitmap_bits = int.from_bytes(head[:2], "big")  # bits, padded to 32 bits
        parts += [head, b.pull_bytes(-(-bitmap_bits // 32) * 4, f"{field}.{part}_category_bitmap")]
    return b"".join(parts)


def _pull_sa(b: Buffer, field: str) -> V1SaPayload:
    doi = b.pull_uint32(f"{field}.doi")
    situation = b.pull_uint32(f"{field}.situation")
    if doi != V1Doi.IPSEC:
        return V1SaPayload(doi, situation, (), b.pull_rest())
    extra = b""
    if situation & (V1Situation.SIT_SECRECY | V1Situation.SIT_INTEGRITY):
        extra = _pull_labeled_domain(b, f"{field}.situation")
    proposals: list[V1Proposal] = []
    next_type = V1PayloadType.NONE if b.eof() else V1PayloadType.P
    while next_type != V1PayloadType.NONE:
        pf = f"{field}.proposal[{len(proposals)}]"
        if b.eof():
            raise MalformedMessage(b.offset(), pf, "announced by the previous proposal but the SA ends")
        at = b.offset()
        next_type, body = _pull_generic_header(b, pf, 8)
        if next_type not in (V1PayloadType.NONE, V1PayloadType.P):
            raise MalformedMessage(
                at, f"{pf}.next_payload", f"{next_type} is neither Proposal (2) nor None (0)"
            )
        proposals.append(_pull_proposal(body, pf))
    if not b.eof():
        raise MalformedMessage(
            b.offset(), f"{field}.proposals", f"{b.remaining} bytes after the last proposal"
        )
    return V1SaPayload(doi, situation, tuple(proposals), extra)


def _pull_proposal(b: Buffer, field: str) -> V1Proposal:
    number = b.pull_uint8(f"{field}.number")
    protocol_id = b.pull_uint8(f"{field}.protocol_id")
    spi_size = b.pull_uint8(f"{field}.spi_size")
    count_at = b.offset()
    count = b.pull_uint8(f"{field}.transform_count")
    spi = b.pull_bytes(spi_size, f"{field}.spi")
    transforms: list[V1Transform] = []
    next_type = V1PayloadType.T if count else V1PayloadType.NONE
    while next_type != V1PayloadType.NONE:
        tf = f"{field}.transform[{len(transforms)}]"
        if b.eof():
            raise MalformedMessage(b.offset(), tf, "announced but the proposal ends")
        at = b.offset()
        next_type, body = _pull_generic_header(b, tf, 8)
        if next_type not in (V1PayloadType.NONE, V1PayloadType.T):
            raise MalformedMessage(
                at, f"{tf}.next_payload", f"{next_type} is neither Transform (3) nor None (0)"
            )
        number_t = body.pull_uint8(f"{tf}.number")
        transform_id = body.pull_uint8(f"{tf}.transform_id")
        body.skip(2, f"{tf}.reserved")
        transforms.append(V1Transform(number_t, transform_id, _pull_attributes(body, tf)))
    if not b.eof():
        raise MalformedMessage(
            b.offset(), f"{field}.transforms", f"{b.remaining} bytes after the last transform"
        )
    if count != len(transforms):
        raise MalformedMessage(count_at, f"{field}.transform_count", f"says {count}, found {len(transforms)}")
    return V1Proposal(number, protocol_id, spi, tuple(transforms))


def _pull_payload_body(ptype: int, b: Buffer, field: str) -> V1Payload:
    if ptype == V1PayloadType.SA:
        return _pull_sa(b, field)
    if ptype == V1PayloadType.KE:
        return V1KePayload(b.pull_rest())
    if ptype == V1PayloadType.ID:
        id_type = b.pull_uint8(f"{field}.id_type")
        protocol_id = b.pull_uint8(f"{field}.protocol_id")
        port = b.pull_uint16(f"{field}.port")
        return V1IdPayload(id_type, protocol_id, port, b.pull_rest())
    if ptype == V1PayloadType.CERT:
        return V1CertPayload(b.pull_uint8(f"{field}.encoding"), b.pull_rest())
    if ptype == V1PayloadType.CR:
        return V1CertReqPayload(b.pull_uint8(f"{field}.encoding"), b.pull_rest())
    if ptype == V1PayloadType.HASH:
        return V1HashPayload(b.pull_rest())
    if ptype == V1PayloadType.SIG:
        return V1SigPayload(b.pull_rest())
    if ptype == V1PayloadType.Nonce:
        return V1NoncePayload(b.pull_rest())
    if ptype == V1PayloadType.N:
        doi = b.pull_uint32(f"{field}.doi")
        protocol_id = b.pull_uint8(f"{field}.protocol_id")
        spi_size = b.pull_uint8(f"{field}.spi_size")
        notify_type = b.pull_uint16(f"{field}.notify_type")
        spi = b.pull_bytes(spi_size, f"{field}.spi")
        return V1NotifyPayload(doi, protocol_id, spi, notify_type, b.pull_rest())
    if ptype == V1PayloadType.D:
        doi = b.pull_uint32(f"{field}.doi")
        protocol_id = b.pull_uint8(f"{field}.protocol_id")
        spi_size = b.pull_uint8(f"{field}.spi_size")
        count = b.pull_uint16(f"{field}.spi_count")
        spis = tuple(b.pull_bytes(spi_size, f"{field}.spi[{i}]") for i in range(count))
        if not b.eof():
            raise MalformedMessage(b.offset(), f"{field}.spis", f"{b.remaining} bytes after {count} SPIs")
        return V1DeletePayload(doi, protocol_id, spi_size, spis)
    if ptype == V1PayloadType.V:
        return V1VendorIdPayload(b.pull_rest())
    if ptype == V1PayloadType.ATTR:
        cfg_type = b.pull_uint8(f"{field}.cfg_type")
        b.skip(1, f"{field}.reserved")
        identifier = b.pull_uint16(f"{field}.identifier")
        return V1AttrPayload(cfg_type, identifier, _pull_attributes(b, field))
    if ptype in (V1PayloadType.NAT_D, V1PayloadType.NAT_D_DRAFT):
        return V1NatDPayload(b.pull_rest(), ptype == V1PayloadType.NAT_D_DRAFT)
    if ptype in (V1PayloadType.NAT_OA, V1PayloadType.NAT_OA_DRAFT):
        id_type = b.pull_uint8(f"{field}.id_type")
        b.skip(3, f"{field}.reserved")
        return V1NatOaPayload(id_type, b.pull_rest(), ptype == V1PayloadType.NAT_OA_DRAFT)
    if ptype == V1PayloadType.FRAG:
        fragment_id = b.pull_uint16(f"{field}.fragment_id")
        number = b.pull_uint8(f"{field}.fragment_number")
        flags = b.pull_uint8(f"{field}.flags")
        return V1FragPayload(fragment_id, number, flags, b.pull_rest())
    return V1UnknownPayload(ptype, b.pull_rest())


def _pull_chain(first_type: int, b: Buffer) -> tuple[V1Payload, ...]:
    payloads: list[V1Payload] = []
    ptype = first_type
    while ptype != V1PayloadType.NONE:
        field = f"payload[{len(payloads)}]({v1_payload_short_name(ptype)})"
        if b.eof():
            raise MalformedMessage(
                b.offset(), field, "announced by the previous payload but the message ends"
            )
        next_type, body = _pull_generic_header(b, field)
        payloads.append(_pull_payload_body(ptype, body, field))
        ptype = next_type
    return tuple(payloads)


def parse_v1_payload_chain(
    first_type: int, data: bytes, base_offset: int = 0
) -> tuple[tuple[V1Payload, ...], int]:
    """Parse a payload chain; returns the payloads and how many bytes the chain used.

    The chain ends at next_payload == 0; what follows (padding of a decrypted body) is not
    parsed. ``base_offset`` is added to error offsets (28 for a body that follows a header).
    """
    b = Buffer(data, base=base_offset)
    payloads = _pull_chain(first_type, b)
    return payloads, b.pos


def parse_v1_payloads(first_type: int, data: bytes, base_offset: int = 0) -> tuple[V1Payload, ...]:
    """Payloads of a (decrypted) body; bytes after the chain's last payload are padding."""
    return parse_v1_payload_chain(first_type, data, base_offset)[0]


def parse_v1_message(data: bytes) -> V1Message:
    """Parse one ISAKMP message; bytes past the header's length (UDP padding) are ignored."""
    b = Buffer(data)
    header = pull_isakmp_header(b)
    if header.length > len(data):
        raise MalformedMessage(24, "header.length", f"{header.length} exceeds the {len(data)} bytes received")
    if header.encrypted:
        return V1Message(header, (), data[HEADER_LEN : header.length])
    body = Buffer(data, start=HEADER_LEN, end=header.length)
    payloads = _pull_chain(header.next_payload, body)
    return V1Message(header, payloads, None, data[body.pos : header.length])


# ------------------------------------------------------------------------------------------
# Serialisation
# ------------------------------------------------------------------------------------------


def _wrap(next_type: int, body: bytes) -> bytes:
    if len(body) + 4 > 0xFFFF:
        raise ValueError("ISAKMP payload longer than 65535 bytes")
    return bytes((next_type, 0)) + (len(body) + 4).to_bytes(2, "big") + body


def _encode_proposal(p: V1Proposal) -> bytes:
    w = Writer()
    w.push_uint8(p.number)
    w.push_uint8(p.protocol_id)
    w.push_uint8(len(p.spi))
    w.push_uint8(len(p.transforms))
    w.push_bytes(p.spi)
    for i, t in enumerate(p.transforms):
        tw = Writer()
        tw.push_uint8(t.number)
        tw.push_uint8(t.transform_id)
        tw.push_uint16(0)
        _push_attributes(tw, t.attributes)
        last = i == len(p.transforms) - 1
        w.push_bytes(_wrap(V1PayloadType.NONE if last else V1PayloadType.T, tw.getvalue()))
    return w.getvalue()


def _encode_body(p: V1Payload) -> bytes:
    w = Writer()
    if isinstance(p, V1SaPayload):
        w.push_uint32(p.doi)
        w.push_uint32(p.situation)
        w.push_bytes(p.situation_extra)
        for i, prop in enumerate(p.proposals):
            last = i == len(p.proposals) - 1
            w.push_bytes(_wrap(V1PayloadType.NONE if last else V1PayloadType.P, _encode_proposal(prop)))
    elif isinstance(p, _DataPayload):
        w.push_bytes(p.data)
    elif isinstance(p, V1IdPayload):
        w.push_uint8(p.id_type)
        w.push_uint8(p.protocol_id)
        w.push_uint16(p.port)
        w.push_bytes(p.data)
    elif isinstance(p, V1CertPayload | V1CertReqPayload):
        w.push_uint8(p.encoding)
        w.push_bytes(p.data)
    elif isinstance(p, V1NotifyPayload):
        w.push_uint32(p.doi)
        w.push_uint8(p.protocol_id)
        w.push_uint8(len(p.spi))
        w.push_uint16(p.notify_type)
        w.push_bytes(p.spi)
        w.push_bytes(p.data)
    elif isinstance(p, V1DeletePayload):
        if any(len(s) != p.spi_size for s in p.spis):
            raise ValueError("every Delete SPI must be spi_size bytes")
        w.push_uint32(p.doi)
        w.push_uint8(p.protocol_id)
        w.push_uint8(p.spi_size)
        w.push_uint16(len(p.spis))
        for s in p.spis:
            w.push_bytes(s)
    elif isinstance(p, V1AttrPayload):
        w.push_uint8(p.cfg_type)
        w.push_uint8(0)
        w.push_uint16(p.identifier)
        _push_attributes(w, p.attributes)
    elif isinstance(p, V1NatDPayload):
        w.push_bytes(p.hash)
    elif isinstance(p, V1NatOaPayload):
        w.push_uint8(p.id_type)
        w.push_bytes(b"\x00\x00\x00")
        w.push_bytes(p.data)
    elif isinstance(p, V1FragPayload):
        w.push_uint16(p.fragment_id)
        w.push_uint8(p.fragment_number)
        w.push_uint8(p.flags)
        w.push_bytes(p.data)
    else:
        w.push_bytes(p.data)
    return w.getvalue()


def serialize_v1_payloads(payloads: tuple[V1Payload, ...] | list[V1Payload]) -> tuple[int, bytes]:
    """Encode a payload chain; returns (type of the first payload, bytes)."""
    out = bytearray()
    for i, p in enumerate(payloads):
        nxt = payloads[i + 1].payload_type if i + 1 < len(payloads) else V1PayloadType.NONE
        out += _wrap(nxt, _encode_body(p))
    first = payloads[0].payload_type if payloads else V1PayloadType.NONE
    return first, bytes(out)


def serialize_v1_message(msg: V1Message) -> bytes:
    """Encode a message; header length and (for plaintext) next_payload are recomputed."""
    if msg.encrypted_body is not None:
        first, body = msg.header.next_payload, msg.encrypted_body
    else:
        first, body = serialize_v1_payloads(msg.payloads)
        body += msg.trailing
    w = Writer()
    push_isakmp_header(w, msg.header, next_payload=first, length=HEADER_LEN + len(body))
    w.push_bytes(body)
    return w.getvalue()


# ------------------------------------------------------------------------------------------
# Names for reports
# ------------------------------------------------------------------------------------------


def v1_payload_names(payloads: tuple[V1Payload, ...] | list[V1Payload]) -> list[str]:
    """Report names of a chain: ["SA", "V", "V", "NAT-D", ...]."""
    return [v1_payload_short_name(p.payload_type) for p in payloads]


def v1_notify_names(payloads: tuple[V1Payload, ...] | list[V1Payload]) -> list[str]:
    """IANA names of every Notify in the chain, e.g. ["R_U_THERE"]."""
    return [p.name for p in payloads if isinstance(p, V1NotifyPayload)]


def v1_exchange_name(exchange_type: int) -> str:
    """ "MAIN_MODE", "AGGRESSIVE_MODE", "QUICK_MODE", "INFORMATIONAL", "TRANSACTION", ..."""
    return name_of(V1Exchange, exchange_type)
