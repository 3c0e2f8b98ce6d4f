"""IKEv1 / ISAKMP message model: header, data attributes and payloads as frozen dataclasses.

The byte codec is :mod:`.ikev1` (which re-exports everything here); rendering helpers live in
:mod:`.ikev1_display`. Every payload has ``payload_type`` (the number on the wire) and the
fixed ones a class-level ``TYPE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .ikev1_display import AttrContext, attr_type_name, attr_value_text, id_text
from .registry import V1Exchange, V1NotifyType, V1PayloadType, V1ProtocolId, name_of, v1_notify_is_error
from .vendors import identify_vendor

HEADER_LEN = 28
FLAG_ENCRYPTION = 0x01
FLAG_COMMIT = 0x02
FLAG_AUTH_ONLY = 0x04


# ------------------------------------------------------------------------------------------
# Header and attributes
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsakmpHeader:
    """The 28-byte ISAKMP header (RFC 2408 §3.1). ``length`` is the value on the wire."""

    cookie_i: bytes
    cookie_r: bytes
    next_payload: int
    major: int
    minor: int
    exchange_type: int
    flags: int
    message_id: int
    length: int

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTION)

    @property
    def commit(self) -> bool:
        return bool(self.flags & FLAG_COMMIT)

    @property
    def auth_only(self) -> bool:
        return bool(self.flags & FLAG_AUTH_ONLY)


@dataclass(frozen=True)
class V1Attribute:
    """A data attribute. ``type`` excludes the AF bit; TV values are ints, TLV values bytes."""

    type: int
    value: int | bytes
    tv: bool

    @property
    def int_value(self) -> int:
        """The value as an integer (TLV values such as life durations are big-endian)."""
        if isinstance(self.value, int):
            return self.value
        return int.from_bytes(self.value, "big")

    @property
    def raw(self) -> bytes:
        """The value as bytes (TV values are 2 bytes)."""
        if isinstance(self.value, bytes):
            return self.value
        return self.value.to_bytes(2 if self.tv else max(4, (self.value.bit_length() + 7) // 8), "big")

    def type_name(self, ctx: AttrContext) -> str:
        """``ENCRYPTION_ALGORITHM``, ``ENCAPSULATION_MODE``, ``XAUTH_USER_NAME``, ..."""
        return attr_type_name(self, ctx)

    def value_text(self, ctx: AttrContext) -> str:
        """``AES_CBC``, ``TUNNEL``, ``28800``, an address, or text (secrets redacted)."""
        return attr_value_text(self, ctx)


# ------------------------------------------------------------------------------------------
# Payloads
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class V1Transform:
    """Transform payload (type 3) inside a proposal; attributes are phase 1 or IPsec DOI ones."""

    number: int
    transform_id: int
    attributes: tuple[V1Attribute, ...] = ()


@dataclass(frozen=True)
class V1Proposal:
    """Proposal payload (type 2); proposals sharing a number are ANDed (e.g. AH+ESP)."""

    number: int
    protocol_id: int
    spi: bytes
    transforms: tuple[V1Transform, ...] = ()

    @property
    def is_phase1(self) -> bool:
        return self.protocol_id == V1ProtocolId.PROTO_ISAKMP


@dataclass(frozen=True)
class V1SaPayload:
    """SA payload. For the IPsec DOI ``situation`` is the 4-byte bitmap and ``situation_extra``
    the labeled-domain fields (present with SIT_SECRECY/SIT_INTEGRITY); for other DOIs the
    situation's meaning is unknown, so everything after its first 4 bytes stays opaque."""

    TYPE: ClassVar[V1PayloadType] = V1PayloadType.SA
    doi: int
    situation: int
    proposals: tuple[V1Proposal, ...] = ()
    situation_extra: bytes = b""

    @property
    def payload_type(self) -> int:
        return self.TYPE


@dataclass(frozen=True)
class _DataPayload:
    """Payloads whose body is opaque data (KE, HASH, SIG, Nonce, V)."""

    TYPE: ClassVar[V1PayloadType]
    data: bytes

    @property
    def payload_type(self) -> int:
        return self.TYPE


@dataclass(frozen=True)
class V1KePayload(_DataPayload):
    TYPE: ClassVar[V1PayloadType] = V1PayloadType.KE


@dataclass(frozen=True)
class V1HashPayload(_DataPayload):
    TYPE: ClassVar[V1PayloadType] = V1PayloadType.HASH


@dataclass(frozen=True)
class V1SigPayload(_DataPayload):
    TYPE: ClassVar[V1PayloadType] = V1PayloadType.SIG


@dataclass(frozen=True)
class V1NoncePayload(_DataPayload):
    TYPE: ClassVar[V1PayloadType] = V1PayloadType.Nonce


@dataclass(frozen=True)
class V1VendorIdPayload(_DataPayload):
    TYPE: ClassVar[V1PayloadType] = V1PayloadType.V

    @property
    def vendor(self) -> str | None:
        """Known vendor/feature name, or None."""
        return identify_vendor(self.data)


@dataclass(frozen=True)
class V1IdPayload:
    """Identification payload; ``protocol_id``/``port`` are IPsec DOI fields (RFC 2407 §4.6.2)."""

    TYPE: ClassVar[V1PayloadType] = V1PayloadType.ID
    id_type: int
    protocol_id: int
    port: int
    data: bytes

    @property
    def payload_type(self) -> int:
        return self.TYPE

    def display(self) -> str:
        """The identity as people write it: "10.0.0.0/24", "gw.example", "C=CH, O=..."."""
        return id_text(self.id_type, self.data)


@dataclass(frozen=True)
class V1CertPayload:
    TYPE: ClassVar[V1PayloadType] = V1PayloadType.CERT
    encoding: int
    data: bytes

    @property
    def payload_type(self) -> int:
        return self.TYPE


@dataclass(frozen=True)
class V1CertReqPayload:
    TYPE: ClassVar[V1PayloadType] = V1PayloadType.CR
    encoding: int
    data: bytes

    @property
    def payload_type(self) -> int:
        return self.TYPE


@dataclass(frozen=True)
class V1NotifyPayload:
    TYPE: ClassVar[V1PayloadType] = V1PayloadType.N
    doi: int
    protocol_id: int
    spi: bytes
    notify_type: int
    data: bytes = b""

    @property
    def payload_type(self) -> int:
        return self.TYPE

    @property
    def name(self) -> str:
        return name_of(V1NotifyType, self.notify_type)

    @property
    def is_error(self) -> bool:
        return v1_notify_is_error(self.notify_type)


@dataclass(frozen=True)
class V1DeletePayload:
    """Delete payload; ``spi_size`` is explicit so an empty SPI list still round-trips."""

    TYPE: ClassVar[V1PayloadType] = V1PayloadType.D
    doi: int
    protocol_id: int
    spi_size: int
    spis: tuple[bytes, ...] = ()

    @property
    def payload_type(self) -> int:
        return self.TYPE


@dataclass(frozen=True)
class V1AttrPayload:
    """Mode-Config / XAUTH attribute payload (type 14, draft-dukes-ike-mode-cfg)."""

    TYPE: ClassVar[V1PayloadType] = V1PayloadType.ATTR
    cfg_type: int
    identifier: int
    attributes: tuple[V1Attribute, ...] = ()

    @property
    def payload_type(self) -> int:
        return self.TYPE


@dataclass(frozen=True)
class V1NatDPayload:
    """NAT-D: RFC 3947 type 20, or type 130 from draft-ietf-ipsec-nat-t-ike-01..03 when ``draft``."""

    TYPE: ClassVar[V1PayloadType] = V1PayloadType.NAT_D
    hash: bytes
    draft: bool = False

    @property
    def payload_type(self) -> int:
        return V1PayloadType.NAT_D_DRAFT if self.draft else V1PayloadType.NAT_D


@dataclass(frozen=True)
class V1NatOaPayload:
    """NAT-OA: RFC 3947 type 21 (draft type 131); ``data`` is the IPv4/IPv6 address."""

    TYPE: ClassVar[V1PayloadType] = V1PayloadType.NAT_OA
    id_type: int
    data: bytes
    draft: bool = False

    @property
    def payload_type(self) -> int:
        return V1PayloadType.NAT_OA_DRAFT if self.draft else V1PayloadType.NAT_OA


@dataclass(frozen=True)
class V1FragPayload:
    """Cisco IKE fragment (type 132): 2-byte id, 1-byte number (from 1), flags (0x01 = last)."""

    TYPE: ClassVar[V1PayloadType] = V1PayloadType.FRAG
    LAST: ClassVar[int] = 0x01
    fragment_id: int
    fragment_number: int
    flags: int
    data: bytes

    @property
    def payload_type(self) -> int:
        return self.TYPE

    @property
    def last(self) -> bool:
        return bool(self.flags & self.LAST)


@dataclass(frozen=True)
class V1UnknownPayload:
    """A payload type this codec does not decode (GDOI, private use, stray P/T)."""

    type: int
    data: bytes

    @property
    def payload_type(self) -> int:
        return self.type


V1Payload = (
    V1SaPayload
    | V1KePayload
    | V1IdPayload
    | V1CertPayload
    | V1CertReqPayload
    | V1HashPayload
    | V1SigPayload
    | V1NoncePayload
    | V1NotifyPayload
    | V1DeletePayload
    | V1VendorIdPayload
    | V1AttrPayload
    | V1NatDPayload
    | V1NatOaPayload
    | V1FragPayload
    | V1UnknownPayload
)


@dataclass(frozen=True)
class V1Message:
    """A whole ISAKMP message. ``encrypted_body`` holds the ciphertext when the E flag is set
    (then ``payloads`` is empty); ``trailing`` keeps bytes after a plaintext chain's last
    payload (inside the header length) so odd messages still round-trip."""

    header: IsakmpHeader
    payloads: tuple[V1Payload, ...] = ()
    encrypted_body: bytes | None = None
    trailing: bytes = b""

    @property
    def exchange_name(self) -> str:
        return name_of(V1Exchange, self.header.exchange_type)
