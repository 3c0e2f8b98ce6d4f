"""IKEv2 messages (RFC 7296 §3): header, generic payload chain, parse and serialize.

Layers:

* :func:`walk_payloads` follows the generic payload headers only (type, C bit, length) and
  yields :class:`RawPayload` records; it never looks inside a body.
* :func:`parse_message` / :func:`parse_payloads` walk the chain and decode every body into
  the frozen dataclasses of :mod:`.ikev2_sa` and :mod:`.ikev2_payloads`; the first violation
  raises :class:`MalformedMessage` with the absolute offset and a field path.
* :func:`parse_header_and_chain` is the forgiving view for the analyzer: it lists every payload
  whose generic header was readable and collects the errors instead of raising them.
* :func:`serialize_message` / :func:`serialize_payloads` compute every length and the
  next-payload chaining from the payload order, so ``parse_message(serialize_message(m)) == m``.

SK and SKF are always last in the outer chain; their generic header's Next Payload names the
first payload *inside* the ciphertext (RFC 7296 §3.14, RFC 7383 §2.5), so the outer walk stops
there. After decryption the crypto layer calls :func:`parse_payloads` with that type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from .buffer import Buffer, Writer
from .errors import MalformedMessage, UnsupportedVersion
from .ikev2_payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CfgAttribute,
    CpPayload,
    DeletePayload,
    EapPayload,
    IdPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    RedirectInfo,
    SkfPayload,
    SkPayload,
    UnknownPayload,
    VendorIdPayload,
    pull_auth_body,
    pull_cert_body,
    pull_certreq_body,
    pull_cp_body,
    pull_delete_body,
    pull_id_body,
    pull_ke_body,
    pull_notify_body,
    pull_skf_body,
    push_auth_body,
    push_cert_body,
    push_cp_body,
    push_delete_body,
    push_id_body,
    push_ke_body,
    push_notify_body,
    push_skf_body,
)
from .ikev2_sa import (
    Proposal,
    SaPayload,
    Transform,
    TransformAttribute,
    proposal_summary,
    pull_sa_body,
    push_sa_body,
    transform_iana_name,
    transform_label,
)
from .ikev2_ts import TrafficSelector, TsPayload, pull_ts_body, push_ts_body
from .registry import ExchangeType, PayloadType, name_of

__all__ = [
    "HEADER_LEN",
    "AuthPayload",
    "CertPayload",
    "CertReqPayload",
    "CfgAttribute",
    "CpPayload",
    "DeletePayload",
    "EapPayload",
    "IdPayload",
    "IkeHeader",
    "IkeMessage",
    "KePayload",
    "NoncePayload",
    "NotifyPayload",
    "Payload",
    "PayloadChain",
    "Proposal",
    "RawPayload",
    "RedirectInfo",
    "SaPayload",
    "SkPayload",
    "SkfPayload",
    "TrafficSelector",
    "Transform",
    "TransformAttribute",
    "TsPayload",
    "UnknownPayload",
    "VendorIdPayload",
    "build_message",
    "chain_end",
    "notify_names",
    "parse_header_and_chain",
    "parse_message",
    "parse_payloads",
    "payload_names",
    "peek_header",
    "proposal_summary",
    "pull_header",
    "pull_payload_body",
    "push_header",
    "push_payload",
    "serialize_message",
    "serialize_payloads",
    "transform_iana_name",
    "transform_label",
    "walk_payloads",
]

HEADER_LEN = 28
GENERIC_HEADER_LEN = 4
FLAG_RESPONSE = 0x20
FLAG_VERSION = 0x10
FLAG_INITIATOR = 0x08
_CRITICAL = 0x80

Payload: TypeAlias = (
    SaPayload
    | KePayload
    | IdPayload
    | CertPayload
    | CertReqPayload
    | AuthPayload
    | NoncePayload
    | NotifyPayload
    | DeletePayload
    | VendorIdPayload
    | TsPayload
    | SkPayload
    | SkfPayload
    | CpPayload
    | EapPayload
    | UnknownPayload
)


# -- header --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IkeHeader:
    spi_i: bytes
    spi_r: bytes
    next_payload: int
    major: int
    minor: int
    exchange_type: int
    flags: int
    message_id: int
    length: int

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_RESPONSE)

    @property
    def is_initiator(self) -> bool:
        """Sent by the original initiator of the IKE SA (not: "is a request")."""
        return bool(self.flags & FLAG_INITIATOR)

    @property
    def version_flag(self) -> bool:
        return bool(self.flags & FLAG_VERSION)

    @property
    def exchange_name(self) -> str:
        return name_of(ExchangeType, self.exchange_type)


def pull_header(buf: Buffer) -> IkeHeader:
    """Read the 28-byte IKE header; no version or length policy (see :func:`parse_message`)."""
    spi_i = buf.pull_bytes(8, "header.initiator spi")
    spi_r = buf.pull_bytes(8, "header.responder spi")
    next_payload = buf.pull_uint8("header.next payload")
    version = buf.pull_uint8("header.version")
    exchange_type = buf.pull_uint8("header.exchange type")
    flags = buf.pull_uint8("header.flags")
    message_id = buf.pull_uint32("header.message id")
    length = buf.pull_uint32("header.length")
    return IkeHeader(
        spi_i, spi_r, next_payload, version >> 4, version & 0x0F, exchange_type, flags, message_id, length
    )


def push_header(w: Writer, h: IkeHeader) -> None:
    if len(h.spi_i) != 8 or len(h.spi_r) != 8:
        raise ValueError("IKE SPIs are 8 bytes")
    w.push_bytes(h.spi_i)
    w.push_bytes(h.spi_r)
    w.push_uint8(h.next_payload)
    w.push_uint8((h.major & 0x0F) << 4 | (h.minor & 0x0F))
    w.push_uint8(h.exchange_type)
    w.push_uint8(h.flags)
    w.push_uint32(h.message_id)
    w.push_uint32(h.length)


def peek_header(data: bytes) -> IkeHeader:
    """The header of a datagram, for demultiplexing; needs >= 28 bytes, checks nothing else."""
    return pull_header(Buffer(data, end=min(len(data), HEADER_LEN)))


# -- the generic payload chain -------------------------------------------------------------


@dataclass(frozen=True)
class RawPayload:
    """One payload as the chain walk sees it: generic header fields and the undecoded body.

    ``offset`` is absolute (first byte of the generic header, counted like the error offsets),
    ``length`` the Payload Length field (header included).
    """

    type: int
    critical: bool
    next_type: int
    offset: int
    length: int
    body: bytes

    @property
    def payload_type(self) -> int:
        return self.type

    @property
    def name(self) -> str:
        return name_of(PayloadType, self.type)


_LAST_IN_CHAIN = (PayloadType.SK, PayloadType.SKF)


def walk_payloads(first_type: int, data: bytes, start: int, end: int, base: int = 0) -> Iterator[RawPayload]:
    """Follow the generic payload headers in ``data[start:end]``.

    Raises :class:`MalformedMessage` (after yielding every payload before the problem) when a
    header does not fit, a length is below 4 or overruns ``end``, bytes follow SK/SKF, or the
    chain announces a payload after the data ends. Bytes after a chain that ends with Next
    Payload 0 are the caller's business (see :func:`chain_end`). ``base`` is added to every
    offset (the position of ``data[0]`` in the IKE message).
    """
    pos, ptype = start, first_type
    while ptype != PayloadType.NONE:
        name = name_of(PayloadType, ptype)
        if end - pos < GENERIC_HEADER_LEN:
            reason = (
                "announced but the message ends" if pos == end else f"header needs 4 bytes, {end - pos} left"
            )
            raise MalformedMessage(base + pos, f"{name}.generic header", reason)
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < GENERIC_HEADER_LEN:
            raise MalformedMessage(base + pos + 2, f"{name}.payload length", f"{length} is below 4")
        if pos + length > end:
            raise MalformedMessage(
                base + pos + 2,
                f"{name}.payload length",
                f"{length} overruns the message by {pos + length - end}",
            )
        next_type = data[pos]
        yield RawPayload(
            ptype,
            bool(data[pos + 1] & _CRITICAL),
            next_type,
            base + pos,
            length,
            data[pos + 4 : pos + length],
        )
        pos += length
        if ptype in _LAST_IN_CHAIN:
            if pos != end:
                raise MalformedMessage(
                    base + pos, name, f"must be the last payload, {end - pos} bytes follow"
                )
            return
        ptype = next_type


def chain_end(raw: Sequence[RawPayload], start: int) -> int:
    """Absolute offset just past the last walked payload (``start`` when there is none)."""
    return raw[-1].offset + raw[-1].length if raw else start


_BodyParser = Callable[[Buffer, RawPayload], Payload]

_PULL: dict[int, _BodyParser] = {
    PayloadType.SA: lambda b, r: pull_sa_body(b, r.critical),
    PayloadType.KE: lambda b, r: pull_ke_body(b, r.critical),
    PayloadType.IDi: lambda b, r: pull_id_body(b, r.type, r.critical),
    PayloadType.IDr: lambda b, r: pull_id_body(b, r.type, r.critical),
    PayloadType.CERT: lambda b, r: pull_cert_body(b, r.critical),
    PayloadType.CERTREQ: lambda b, r: pull_certreq_body(b, r.critical),
    PayloadType.AUTH: lambda b, r: pull_auth_body(b, r.critical),
    PayloadType.Nonce: lambda b, r: NoncePayload(b.pull_rest(), r.critical),
    PayloadType.N: lambda b, r: pull_notify_body(b, r.critical),
    PayloadType.D: lambda b, r: pull_delete_body(b, r.critical),
    PayloadType.V: lambda b, r: VendorIdPayload(b.pull_rest(), r.critical),
    PayloadType.TSi: lambda b, r: pull_ts_body(b, r.type, r.critical),
    PayloadType.TSr: lambda b, r: pull_ts_body(b, r.type, r.critical),
    PayloadType.SK: lambda b, r: SkPayload(r.next_type, b.pull_rest(), r.critical),
    PayloadType.CP: lambda b, r: pull_cp_body(b, r.critical),
    PayloadType.EAP: lambda b, r: EapPayload(b.pull_rest(), r.critical),
    PayloadType.SKF: lambda b, r: pull_skf_body(b, r.next_type, r.critical),
}


def pull_payload_body(raw: RawPayload) -> Payload:
    """Decode one walked payload; types without a codec become :class:`UnknownPayload`."""
    parser = _PULL.get(raw.type)
    if parser is None:
        return UnknownPayload(raw.type, raw.critical, raw.body)
    return parser(Buffer(raw.body, base=raw.offset + GENERIC_HEADER_LEN), raw)


def parse_payloads(first_type: int, data: bytes, *, base_offset: int = 0) -> tuple[Payload, ...]:
    """Decode a whole payload chain, e.g. the plaintext of SK (padding already removed).

    ``base_offset`` is the position of ``data[0]`` in the IKE message, for error offsets.
    Unlike the outer chain, no bytes may follow the last payload: after decryption every byte
    is accounted for by the sender.
    """
    raw, payloads = _parse_chain(first_type, data, 0, len(data), base_offset)
    end = chain_end(raw, base_offset) - base_offset
    if end != len(data):
        raise MalformedMessage(
            base_offset + end, "payload chain", f"{len(data) - end} bytes after the last payload"
        )
    return payloads


def _parse_chain(
    first_type: int, data: bytes, start: int, end: int, base: int
) -> tuple[tuple[RawPayload, ...], tuple[Payload, ...]]:
    # Decode each body as soon as it is walked, so the error reported is the first in the data.
    raw: list[RawPayload] = []
    payloads: list[Payload] = []
    for r in walk_payloads(first_type, data, start, end, base):
        raw.append(r)
        payloads.append(pull_payload_body(r))
    return tuple(raw), tuple(payloads)


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IkeMessage:
    """A decoded IKEv2 message.

    Two kinds of leftover bytes are kept for the analyzer to report, never serialized and
    ignored by ``==``: ``slack`` lies inside the header's Length after the last payload (the
    chain ended early: a sender bug that peers and Wireshark tolerate), ``extra`` lies in the
    datagram beyond the header's Length.
    """

    header: IkeHeader
    payloads: tuple[Payload, ...]
    slack: bytes = field(default=b"", compare=False)
    extra: bytes = field(default=b"", compare=False)

    def of_type(self, cls: type) -> tuple[Payload, ...]:
        """The payloads of one class (``msg.of_type(NotifyPayload)``), in order."""
        return tuple(p for p in self.payloads if isinstance(p, cls))

    @property
    def notifies(self) -> tuple[NotifyPayload, ...]:
        return tuple(p for p in self.payloads if isinstance(p, NotifyPayload))

    @property
    def encrypted(self) -> SkPayload | SkfPayload | None:
        last = self.payloads[-1] if self.payloads else None
        return last if isinstance(last, SkPayload | SkfPayload) else None

    @property
    def encrypted_data_offset(self) -> int | None:
        """Where SK/SKF data (the IV) starts in the serialized message; None without SK/SKF.

        The bytes before it are the AEAD associated data (RFC 5282 §5.1, RFC 7383 §2.5.3) and
        the start of what the ICV covers. Holds for parsed messages and for
        :func:`build_message` results, whose header Length is exact.
        """
        enc = self.encrypted
        return None if enc is None else self.header.length - len(enc.data)


def _check_version(h: IkeHeader) -> None:
    if h.major != 2:
        raise UnsupportedVersion(h.major, h.minor)


def _length_error(h: IkeHeader, size: int) -> MalformedMessage | None:
    if h.length < HEADER_LEN:
        return MalformedMessage(24, "header.length", f"{h.length} is below the 28-byte header")
    if h.length > size:
        return MalformedMessage(24, "header.length", f"{h.length} but the datagram has {size} bytes")
    return None


def parse_message(data: bytes) -> IkeMessage:
    """Decode an IKEv2 datagram (starting at the IKE header; no non-ESP marker).

    Raises :class:`MalformedMessage` for any violation and :class:`UnsupportedVersion` when the
    major version is not 2. Leftover bytes go to ``slack`` and ``extra`` (see :class:`IkeMessage`).
    """
    h = peek_header(data)
    _check_version(h)
    err = _length_error(h, len(data))
    if err is not None:
        raise err
    raw, payloads = _parse_chain(h.next_payload, data, HEADER_LEN, h.length, 0)
    return IkeMessage(h, payloads, data[chain_end(raw, HEADER_LEN) : h.length], data[h.length :])


@dataclass(frozen=True)
class PayloadChain:
    """What could be read of a possibly malformed message.

    ``raw`` lists every payload whose generic header was readable, ``parsed`` the decoded
    payload at the same index or ``None`` where the body failed; ``errors`` every problem found
    (header length, each bad body, the chain break) in order of discovery. ``slack`` and
    ``extra`` as in :class:`IkeMessage` (empty when the chain broke).
    """

    header: IkeHeader
    raw: tuple[RawPayload, ...]
    parsed: tuple[Payload | None, ...]
    errors: tuple[MalformedMessage, ...]
    slack: bytes = b""
    extra: bytes = b""

    @property
    def error(self) -> MalformedMessage | None:
        return self.errors[0] if self.errors else None

    @property
    def types(self) -> list[int]:
        return [r.type for r in self.raw]


def parse_header_and_chain(data: bytes) -> PayloadChain:
    """Never raises for a readable header: collects payloads and errors for the analyzer.

    Still raises :class:`MalformedMessage` below 28 bytes and :class:`UnsupportedVersion`.
    When the header's Length exceeds the datagram (a truncated capture), the walk covers what
    is there.
    """
    h = peek_header(data)
    _check_version(h)
    errors: list[MalformedMessage] = []
    err = _length_error(h, len(data))
    end = len(data) if err is not None else h.length
    if err is not None:
        errors.append(err)
    raw: list[RawPayload] = []
    parsed: list[Payload | None] = []
    slack = b""
    try:
        for r in walk_payloads(h.next_payload, data, HEADER_LEN, end):
            raw.append(r)
            try:
                parsed.append(pull_payload_body(r))
            except MalformedMessage as e:
                parsed.append(None)
                errors.append(e)
        slack = data[chain_end(raw, HEADER_LEN) : end]
    except MalformedMessage as e:
        errors.append(e)
    return PayloadChain(h, tuple(raw), tuple(parsed), tuple(errors), slack, data[end:])


# -- serializing ---------------------------------------------------------------------------

_PUSH: dict[type, Callable[[Writer, Payload], None]] = {
    SaPayload: push_sa_body,  # type: ignore[dict-item]
    KePayload: push_ke_body,  # type: ignore[dict-item]
    IdPayload: push_id_body,  # type: ignore[dict-item]
    CertPayload: push_cert_body,  # type: ignore[dict-item]
    CertReqPayload: push_cert_body,  # type: ignore[dict-item]
    AuthPayload: push_auth_body,  # type: ignore[dict-item]
    NotifyPayload: push_notify_body,  # type: ignore[dict-item]
    DeletePayload: push_delete_body,  # type: ignore[dict-item]
    TsPayload: push_ts_body,  # type: ignore[dict-item]
    SkfPayload: push_skf_body,  # type: ignore[dict-item]
    CpPayload: push_cp_body,  # type: ignore[dict-item]
}


def push_payload(w: Writer, p: Payload, next_type: int) -> None:
    """Write one payload with its generic header; SK/SKF write their own inner type instead."""
    if isinstance(p, SkPayload | SkfPayload):
        next_type = p.next_payload
    start = len(w)
    w.push_uint8(next_type)
    w.push_uint8(_CRITICAL if p.critical else 0)
    w.push_uint16(0)
    push = _PUSH.get(type(p))
    if push is not None:
        push(w, p)
    else:  # payloads whose body is one opaque field
        w.push_bytes(p.data)  # type: ignore[union-attr]
    length = len(w) - start
    if length > 0xFFFF:
        raise ValueError(f"{name_of(PayloadType, p.payload_type)} payload of {length} bytes exceeds 65535")
    w.patch_uint16(start + 2, length)


def serialize_payloads(payloads: Iterable[Payload]) -> tuple[int, bytes]:
    """Encode a payload chain: ``(type of the first payload or 0, bytes)``.

    Used for the whole outer chain and for the SK plaintext the crypto layer encrypts.
    Raises ValueError if SK/SKF is not last or a value does not fit its field.
    """
    items = list(payloads)
    w = Writer()
    for i, p in enumerate(items):
        last = i == len(items) - 1
        if isinstance(p, SkPayload | SkfPayload) and not last:
            raise ValueError("SK/SKF must be the last payload")
        push_payload(w, p, PayloadType.NONE if last else items[i + 1].payload_type)
    return (items[0].payload_type if items else PayloadType.NONE), w.getvalue()


def serialize_message(msg: IkeMessage) -> bytes:
    """Encode a message; the header's Next Payload and Length are recomputed, not trusted.

    For SK/SKF pass the finished IV|ciphertext|ICV. To compute the ICV, serialize with a
    zero ICV of the right size and patch the tail: lengths do not change.
    """
    first, body = serialize_payloads(msg.payloads)
    w = Writer()
    push_header(w, replace(msg.header, next_payload=first, length=HEADER_LEN + len(body)))
    w.push_bytes(body)
    return w.getvalue()


def build_message(
    spi_i: bytes,
    spi_r: bytes,
    exchange_type: int,
    message_id: int,
    payloads: Iterable[Payload],
    *,
    flags: int = 0,
    major: int = 2,
    minor: int = 0,
) -> IkeMessage:
    """An :class:`IkeMessage` whose header Next Payload and Length match its payloads."""
    items = tuple(payloads)
    first, body = serialize_payloads(items)
    header = IkeHeader(
        spi_i, spi_r, first, major, minor, exchange_type, flags, message_id, HEADER_LEN + len(body)
    )
    return IkeMessage(header, items)


# -- display -------------------------------------------------------------------------------


def payload_names(payloads: Iterable[Payload | RawPayload]) -> list[str]:
    """Report names: SA, KE, IDi, ..., SK, SKF; unassigned types as ``PAYLOAD_<n>``."""
    return [name_of(PayloadType, p.payload_type) for p in payloads]


def notify_names(payloads: Iterable[Payload | RawPayload | None]) -> list[str]:
    """IANA names of the Notify payloads, in order (``NOTIFY_<n>`` when unassigned)."""
    return [p.name for p in payloads if isinstance(p, NotifyPayload)]
