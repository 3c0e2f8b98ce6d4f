"""IKEv2 payload bodies other than SA and TS (RFC 7296 §3.4-§3.16, RFC 7383 §2.5).

Each payload is a frozen dataclass with a ``critical`` flag (the generic header's C bit, kept so
that bytes round-trip) and a ``payload_type`` property. ``pull_<x>_body(buf, ...)`` parses the
body behind the 4-byte generic header; ``push_<x>_body(w, p)`` writes it back. The generic
header and the payload chain live in :mod:`ipsecdiag.wire.ikev2`.

Helpers that interpret a payload further (``NotifyPayload.requested_group()`` and friends)
return ``None`` when the payload is of another kind or its data has the wrong size: they serve
display and diagnosis, where a bad value is shown, not fatal.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from .buffer import Buffer, Writer
from .dn import der_dn_text
from .errors import MalformedMessage
from .registry import (
    GatewayIdType,
    IdType,
    NotifyType,
    PayloadType,
    name_of,
    notify_is_error,
)


class _Fixed:
    """Mixin for payload classes whose type is fixed by the class."""

    TYPE: ClassVar[PayloadType]

    @property
    def payload_type(self) -> int:
        return int(self.TYPE)


def _ip_text(data: bytes) -> str | None:
    if len(data) in (4, 16):
        return str(ipaddress.ip_address(data))
    return None


def printable_text(data: bytes) -> str | None:
    """``data`` as text when it is printable UTF-8 (FQDNs, e-mail IDs, labels), else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


# -- KE, Nonce, V, CERT, CERTREQ, AUTH, EAP, SK ------------------------------------------


@dataclass(frozen=True)
class KePayload(_Fixed):
    TYPE: ClassVar[PayloadType] = PayloadType.KE
    group: int
    data: bytes
    critical: bool = False


def pull_ke_body(buf: Buffer, critical: bool = False) -> KePayload:
    group = buf.pull_uint16("KE.group")
    buf.skip(2, "KE.reserved")
    return KePayload(group, buf.pull_rest(), critical)


def push_ke_body(w: Writer, p: KePayload) -> None:
    w.push_uint16(p.group)
    w.push_uint16(0)
    w.push_bytes(p.data)


@dataclass(frozen=True)
class NoncePayload(_Fixed):
    TYPE: ClassVar[PayloadType] = PayloadType.Nonce
    data: bytes
    critical: bool = False


@dataclass(frozen=True)
class VendorIdPayload(_Fixed):
    TYPE: ClassVar[PayloadType] = PayloadType.V
    data: bytes
    critical: bool = False


@dataclass(frozen=True)
class CertPayload(_Fixed):
    TYPE: ClassVar[PayloadType] = PayloadType.CERT
    encoding: int
    data: bytes
    critical: bool = False


@dataclass(frozen=True)
class CertReqPayload(_Fixed):
    TYPE: ClassVar[PayloadType] = PayloadType.CERTREQ
    encoding: int
    data: bytes
    critical: bool = False

    def ca_hashes(self) -> tuple[bytes, ...] | None:
        """SHA-1 hashes of the acceptable CAs' public keys (RFC 7296 §3.7), 20 bytes each."""
        if len(self.data) % 20:
            return None
        return tuple(self.data[i : i + 20] for i in range(0, len(self.data), 20))


def pull_cert_body(buf: Buffer, critical: bool = False) -> CertPayload:
    return CertPayload(buf.pull_uint8("CERT.encoding"), buf.pull_rest(), critical)


def pull_certreq_body(buf: Buffer, critical: bool = False) -> CertReqPayload:
    return CertReqPayload(buf.pull_uint8("CERTREQ.encoding"), buf.pull_rest(), critical)


def push_cert_body(w: Writer, p: CertPayload | CertReqPayload) -> None:
    w.push_uint8(p.encoding)
    w.push_bytes(p.data)


@dataclass(frozen=True)
class AuthPayload(_Fixed):
    TYPE: ClassVar[PayloadType] = PayloadType.AUTH
    method: int
    data: bytes
    critical: bool = False


def pull_auth_body(buf: Buffer, critical: bool = False) -> AuthPayload:
    method = buf.pull_uint8("AUTH.method")
    buf.skip(3, "AUTH.reserved")
    return AuthPayload(method, buf.pull_rest(), critical)


def push_auth_body(w: Writer, p: AuthPayload) -> None:
    w.push_uint8(p.method)
    w.push_bytes(b"\x00\x00\x00")
    w.push_bytes(p.data)


@dataclass(frozen=True)
class EapPayload(_Fixed):
    """A whole EAP message (RFC 3748); the properties read its header."""

    TYPE: ClassVar[PayloadType] = PayloadType.EAP
    data: bytes
    critical: bool = False

    @property
    def code(self) -> int | None:
        return self.data[0] if self.data else None

    @property
    def identifier(self) -> int | None:
        return self.data[1] if len(self.data) > 1 else None

    @property
    def type(self) -> int | None:
        """The EAP method type; only Request (1) and Response (2) carry one."""
        return self.data[4] if len(self.data) > 4 and self.data[0] in (1, 2) else None


@dataclass(frozen=True)
class SkPayload(_Fixed):
    """Encrypted and Authenticated payload (RFC 7296 §3.14): IV | ciphertext | ICV, opaque here.

    ``next_payload`` is the type of the first payload inside the ciphertext: the generic header
    of SK carries it, and SK is always the last payload of the outer chain.
    """

    TYPE: ClassVar[PayloadType] = PayloadType.SK
    next_payload: int
    data: bytes
    critical: bool = False

    @property
    def first_inner_type(self) -> int:
        return self.next_payload


@dataclass(frozen=True)
class SkfPayload(_Fixed):
    """Encrypted Fragment payload (RFC 7383 §2.5); ``next_payload`` is 0 except in fragment 1.

    Numbering is checked by the reassembler, not here: fragment 0 or a number above the total is
    a valid encoding of a packet a receiver must discard.
    """

    TYPE: ClassVar[PayloadType] = PayloadType.SKF
    next_payload: int
    fragment_number: int
    total_fragments: int
    data: bytes
    critical: bool = False

    @property
    def first_inner_type(self) -> int:
        return self.next_payload


def pull_skf_body(buf: Buffer, next_payload: int, critical: bool = False) -> SkfPayload:
    number = buf.pull_uint16("SKF.fragment number")
    total = buf.pull_uint16("SKF.total fragments")
    return SkfPayload(next_payload, number, total, buf.pull_rest(), critical)


def push_skf_body(w: Writer, p: SkfPayload) -> None:
    w.push_uint16(p.fragment_number)
    w.push_uint16(p.total_fragments)
    w.push_bytes(p.data)


# -- ID ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdPayload:
    """IDi or IDr (RFC 7296 §3.5); ``which`` is the payload type."""

    TYPES: ClassVar[tuple[PayloadType, ...]] = (PayloadType.IDi, PayloadType.IDr)
    which: int
    id_type: int
    data: bytes
    critical: bool = False

    @property
    def payload_type(self) -> int:
        return self.which

    @property
    def type_name(self) -> str:
        return name_of(IdType, self.id_type)

    def display(self) -> str:
        """The identity as a person writes it in a config; hex when it does not decode."""
        t, d = self.id_type, self.data
        if t == IdType.ID_IPV4_ADDR and len(d) == 4 or t == IdType.ID_IPV6_ADDR and len(d) == 16:
            return str(ipaddress.ip_address(d))
        if t in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
            text = printable_text(d)
            if text is not None:
                return text
        if t == IdType.ID_DER_ASN1_DN:
            dn = der_dn_text(d)
            if dn is not None:
                return dn
        if t == IdType.ID_NULL:
            return "NULL"
        return d.hex()


def pull_id_body(buf: Buffer, which: int, critical: bool = False) -> IdPayload:
    name = name_of(PayloadType, which)
    id_type = buf.pull_uint8(f"{name}.id type")
    buf.skip(3, f"{name}.reserved")
    return IdPayload(which, id_type, buf.pull_rest(), critical)


def push_id_body(w: Writer, p: IdPayload) -> None:
    w.push_uint8(p.id_type)
    w.push_bytes(b"\x00\x00\x00")
    w.push_bytes(p.data)


# -- Notify --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedirectInfo:
    """The gateway identity of N(REDIRECT)/N(REDIRECTED_FROM) (RFC 5685 §8-§9)."""

    gw_type: int
    gw_ident: bytes
    nonce: bytes = b""

    def display(self) -> str:
        if self.gw_type in (GatewayIdType.IPV4_ADDR, GatewayIdType.IPV6_ADDR):
            text = _ip_text(self.gw_ident)
        elif self.gw_type == GatewayIdType.FQDN:
            text = printable_text(self.gw_ident)
        else:
            text = None
        return text if text is not None else f"{name_of(GatewayIdType, self.gw_type)}:{self.gw_ident.hex()}"


@dataclass(frozen=True)
class NotifyPayload(_Fixed):
    TYPE: ClassVar[PayloadType] = PayloadType.N
    protocol_id: int
    spi: bytes
    notify_type: int
    data: bytes = b""
    critical: bool = False

    @property
    def name(self) -> str:
        return name_of(NotifyType, self.notify_type)

    @property
    def is_error(self) -> bool:
        return notify_is_error(self.notify_type)

    def requested_group(self) -> int | None:
        """INVALID_KE_PAYLOAD: the KE group the responder wants (RFC 7296 §3.10.1)."""
        if self.notify_type == NotifyType.INVALID_KE_PAYLOAD and len(self.data) == 2:
            return int.from_bytes(self.data, "big")
        return None

    def signature_hash_algorithms(self) -> tuple[int, ...] | None:
        """SIGNATURE_HASH_ALGORITHMS: the hash IDs (registry.HashAlgorithm), RFC 7427 §4."""
        if self.notify_type != NotifyType.SIGNATURE_HASH_ALGORITHMS or len(self.data) % 2:
            return None
        return tuple(int.from_bytes(self.data[i : i + 2], "big") for i in range(0, len(self.data), 2))

    def rekey_spi(self) -> bytes | None:
        """REKEY_SA: the SPI of the CHILD SA being rekeyed, carried in the SPI field (§1.3.3)."""
        return self.spi if self.notify_type == NotifyType.REKEY_SA else None

    def invalid_spi(self) -> bytes | None:
        """INVALID_SPI: the unknown SPI, carried in the notification data (§3.10.1)."""
        return self.data if self.notify_type == NotifyType.INVALID_SPI and self.data else None

    def cookie(self) -> bytes | None:
        """COOKIE: the opaque value to echo in the retried IKE_SA_INIT (§2.6)."""
        return self.data if self.notify_type == NotifyType.COOKIE else None

    def redirect(self) -> RedirectInfo | None:
        """REDIRECT (new gateway + nonce) or REDIRECTED_FROM (original gateway), RFC 5685."""
        if self.notify_type not in (NotifyType.REDIRECT, NotifyType.REDIRECTED_FROM) or len(self.data) < 2:
            return None
        gw_type, gw_len = self.data[0], self.data[1]
        if 2 + gw_len > len(self.data):
            return None
        return RedirectInfo(gw_type, self.data[2 : 2 + gw_len], self.data[2 + gw_len :])

    def additional_key_exchange_link(self) -> bytes | None:
        """ADDITIONAL_KEY_EXCHANGE: the responder's opaque link data (RFC 9370 §2.2.4)."""
        return self.data if self.notify_type == NotifyType.ADDITIONAL_KEY_EXCHANGE else None


def pull_notify_body(buf: Buffer, critical: bool = False) -> NotifyPayload:
    protocol_id = buf.pull_uint8("N.protocol id")
    spi_size = buf.pull_uint8("N.spi size")
    notify_type = buf.pull_uint16("N.notify type")
    spi = buf.pull_bytes(spi_size, "N.spi")
    return NotifyPayload(protocol_id, spi, notify_type, buf.pull_rest(), critical)


def push_notify_body(w: Writer, p: NotifyPayload) -> None:
    if len(p.spi) > 255:
        raise ValueError("notify SPI longer than 255 bytes")
    w.push_uint8(p.protocol_id)
    w.push_uint8(len(p.spi))
    w.push_uint16(p.notify_type)
    w.push_bytes(p.spi)
    w.push_bytes(p.data)


# -- Delete --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeletePayload(_Fixed):
    """RFC 7296 §3.11; ``spi_size`` is explicit because an IKE SA delete carries no SPIs."""

    TYPE: ClassVar[PayloadType] = PayloadType.D
    protocol_id: int
    spi_size: int
    spis: tuple[bytes, ...]
    critical: bool = False


def pull_delete_body(buf: Buffer, critical: bool = False) -> DeletePayload:
    protocol_id = buf.pull_uint8("D.protocol id")
    spi_size = buf.pull_uint8("D.spi size")
    count_offset = buf.offset()
    count = buf.pull_uint16("D.spi count")
    if count * spi_size != buf.remaining:
        raise MalformedMessage(
            count_offset, "D.spi count", f"{count} SPIs of {spi_size} bytes, but {buf.remaining} bytes follow"
        )
    return DeletePayload(
        protocol_id, spi_size, tuple(buf.pull_bytes(spi_size, "D.spi") for _ in range(count)), critical
    )


def push_delete_body(w: Writer, p: DeletePayload) -> None:
    if any(len(s) != p.spi_size for s in p.spis) or p.spi_size > 255 or len(p.spis) > 0xFFFF:
        raise ValueError("delete SPIs must all be spi_size bytes (<= 255), at most 65535 of them")
    w.push_uint8(p.protocol_id)
    w.push_uint8(p.spi_size)
    w.push_uint16(len(p.spis))
    for s in p.spis:
        w.push_bytes(s)


# -- Configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class CfgAttribute:
    type: int
    value: bytes = b""


@dataclass(frozen=True)
class CpPayload(_Fixed):
    """Configuration payload (RFC 7296 §3.15); attribute types are registry.CfgAttr."""

    TYPE: ClassVar[PayloadType] = PayloadType.CP
    cfg_type: int
    attributes: tuple[CfgAttribute, ...]
    critical: bool = False


def pull_cp_body(buf: Buffer, critical: bool = False) -> CpPayload:
    cfg_type = buf.pull_uint8("CP.cfg type")
    buf.skip(3, "CP.reserved")
    attributes: list[CfgAttribute] = []
    while not buf.eof():
        ctx = f"CP.attribute[{len(attributes) + 1}]"
        atype = buf.pull_uint16(f"{ctx}.type") & 0x7FFF  # top bit reserved, ignored on receipt
        length = buf.pull_uint16(f"{ctx}.length")
        attributes.append(CfgAttribute(atype, buf.pull_bytes(length, f"{ctx}.length")))
    return CpPayload(cfg_type, tuple(attributes), critical)


def push_cp_body(w: Writer, p: CpPayload) -> None:
    w.push_uint8(p.cfg_type)
    w.push_bytes(b"\x00\x00\x00")
    for a in p.attributes:
        if not 0 <= a.type <= 0x7FFF or len(a.value) > 0xFFFF:
            raise ValueError(f"CP attribute {a.type}: type must fit 15 bits, value 65535 bytes")
        w.push_uint16(a.type)
        w.push_uint16(len(a.value))
        w.push_bytes(a.value)


# -- anything else -------------------------------------------------------------------------


@dataclass(frozen=True)
class UnknownPayload:
    """A payload type this codec does not decode (GSPM, IDg, GSA, KD, PS, unassigned): kept raw."""

    type: int
    critical: bool
    data: bytes

    @property
    def payload_type(self) -> int:
        return self.type
