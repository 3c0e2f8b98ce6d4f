"""IKEv2 Security Association payload: proposals, transforms, attributes (RFC 7296 §3.3).

Also the naming helpers the report needs: IANA transform names (``ENCR_AES_GCM_16``), labels
with the key length (``ENCR_AES_GCM_16_256``) and strongSwan-style proposal summaries
(``IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256``).

Field paths in :class:`MalformedMessage` count proposals, transforms and attributes from 1, as a
person reading the packet would ("SA.proposal[2].transform[1].attribute length").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, TypeVar

from .buffer import Buffer, Writer
from .errors import MalformedMessage
from .registry import (
    EncrId,
    EsnId,
    IntegId,
    KeGroup,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformAttr,
    TransformType,
    name_of,
)

# "Last Substruc" values (RFC 7296 §3.3.1, §3.3.2): 0 = last, 2 = more proposals, 3 = more transforms.
_LAST = 0
_MORE_PROPOSALS = 2
_MORE_TRANSFORMS = 3
_AF_BIT = 0x8000  # attribute format: 1 = TV (2-byte value), 0 = TLV
_S = TypeVar("_S")


@dataclass(frozen=True)
class TransformAttribute:
    """A transform attribute; ``tv`` selects the short TV form (value is an int) over TLV (bytes)."""

    type: int
    value: int | bytes
    tv: bool = True


@dataclass(frozen=True)
class Transform:
    type: int
    id: int
    attributes: tuple[TransformAttribute, ...] = ()

    @property
    def key_length(self) -> int | None:
        """The Key Length attribute (bits), if present."""
        for a in self.attributes:
            if a.type == TransformAttr.KEY_LENGTH and isinstance(a.value, int):
                return a.value
        return None


@dataclass(frozen=True)
class Proposal:
    number: int
    protocol_id: int
    spi: bytes
    transforms: tuple[Transform, ...]

    def of_type(self, transform_type: int) -> tuple[Transform, ...]:
        """The transforms of one type, in wire order."""
        return tuple(t for t in self.transforms if t.type == transform_type)


@dataclass(frozen=True)
class SaPayload:
    TYPE: ClassVar[PayloadType] = PayloadType.SA
    proposals: tuple[Proposal, ...]
    critical: bool = False

    @property
    def payload_type(self) -> int:
        return int(self.TYPE)


# -- parsing ------------------------------------------------------------------------------


def pull_sa_body(buf: Buffer, critical: bool = False) -> SaPayload:
    """Parse an SA payload body (everything after the generic payload header)."""
    if buf.eof():
        raise MalformedMessage(buf.offset(), "SA", "no proposals (RFC 7296 §3.3 needs one or more)")
    proposals = _pull_substructures(buf, "SA.proposal", _MORE_PROPOSALS, _pull_proposal)
    return SaPayload(tuple(proposals), critical)


def _pull_substructures(buf: Buffer, name: str, more: int, pull: Callable[[Buffer, str], _S]) -> list[_S]:
    """Proposal or transform substructures to the end of ``buf``: each one's 8-byte-minimum
    header (last substruc, reserved, length), its body handed to ``pull`` (RFC 7296 §3.3.1-2)."""
    items: list[_S] = []
    while not buf.eof():
        ctx = f"{name}[{len(items) + 1}]"
        start = buf.offset()
        last = buf.pull_uint8(f"{ctx}.last substruc")
        buf.skip(1, f"{ctx}.reserved")
        length = buf.pull_uint16(f"{ctx}.length")
        if length < 8:
            raise MalformedMessage(start + 2, f"{ctx}.length", f"{length} is shorter than the 8-byte header")
        items.append(pull(buf.sub(length - 4, f"{ctx}.length"), ctx))
        _check_last(last, more, buf, start, ctx)
    return items


def _check_last(last: int, more: int, buf: Buffer, start: int, ctx: str) -> None:
    if last == _LAST and not buf.eof():
        raise MalformedMessage(start, f"{ctx}.last substruc", f"says last but {buf.remaining} bytes follow")
    if last == more and buf.eof():
        raise MalformedMessage(start, f"{ctx}.last substruc", "announces more but the enclosing data ends")
    if last not in (_LAST, more):
        raise MalformedMessage(start, f"{ctx}.last substruc", f"{last} is neither 0 nor {more}")


def _pull_proposal(buf: Buffer, ctx: str) -> Proposal:
    number = buf.pull_uint8(f"{ctx}.number")
    protocol_id = buf.pull_uint8(f"{ctx}.protocol id")
    spi_size = buf.pull_uint8(f"{ctx}.spi size")
    count_offset = buf.offset()
    count = buf.pull_uint8(f"{ctx}.transform count")
    spi = buf.pull_bytes(spi_size, f"{ctx}.spi")
    transforms = _pull_substructures(buf, f"{ctx}.transform", _MORE_TRANSFORMS, _pull_transform)
    if len(transforms) != count:
        raise MalformedMessage(
            count_offset, f"{ctx}.transform count", f"says {count}, the proposal holds {len(transforms)}"
        )
    return Proposal(number, protocol_id, spi, tuple(transforms))


def _pull_transform(buf: Buffer, ctx: str) -> Transform:
    ttype = buf.pull_uint8(f"{ctx}.type")
    buf.skip(1, f"{ctx}.reserved")
    tid = buf.pull_uint16(f"{ctx}.id")
    attributes: list[TransformAttribute] = []
    while not buf.eof():
        actx = f"{ctx}.attribute[{len(attributes) + 1}]"
        word = buf.pull_uint16(f"{actx}.type")
        if word & _AF_BIT:
            attributes.append(TransformAttribute(word & 0x7FFF, buf.pull_uint16(f"{actx}.value"), True))
        else:
            length = buf.pull_uint16(f"{actx}.length")
            attributes.append(TransformAttribute(word, buf.pull_bytes(length, f"{actx}.length"), False))
    return Transform(ttype, tid, tuple(attributes))


# -- serializing --------------------------------------------------------------------------


def push_sa_body(w: Writer, sa: SaPayload) -> None:
    """Write an SA payload body; raises ValueError for values that cannot be encoded."""
    if not sa.proposals:
        raise ValueError("an SA payload needs at least one proposal")
    for i, p in enumerate(sa.proposals):
        start = len(w)
        w.push_uint8(_LAST if i == len(sa.proposals) - 1 else _MORE_PROPOSALS)
        w.push_uint8(0)
        w.push_uint16(0)  # length, patched below
        w.push_uint8(p.number)
        w.push_uint8(p.protocol_id)
        if len(p.spi) > 255 or len(p.transforms) > 255:
            raise ValueError("proposal SPI or transform count exceeds 255")
        w.push_uint8(len(p.spi))
        w.push_uint8(len(p.transforms))
        w.push_bytes(p.spi)
        for j, t in enumerate(p.transforms):
            _push_transform(w, t, last=j == len(p.transforms) - 1)
        _patch_length(w, start)


def _push_transform(w: Writer, t: Transform, *, last: bool) -> None:
    start = len(w)
    w.push_uint8(_LAST if last else _MORE_TRANSFORMS)
    w.push_uint8(0)
    w.push_uint16(0)
    w.push_uint8(t.type)
    w.push_uint8(0)
    w.push_uint16(t.id)
    for a in t.attributes:
        if not 0 <= a.type < _AF_BIT:
            raise ValueError(f"attribute type {a.type} does not fit 15 bits")
        if a.tv:
            if not isinstance(a.value, int) or not 0 <= a.value <= 0xFFFF:
                raise ValueError(f"TV attribute {a.type} needs an int value 0..65535")
            w.push_uint16(_AF_BIT | a.type)
            w.push_uint16(a.value)
        else:
            if not isinstance(a.value, bytes) or len(a.value) > 0xFFFF:
                raise ValueError(f"TLV attribute {a.type} needs a bytes value up to 65535 bytes")
            w.push_uint16(a.type)
            w.push_uint16(len(a.value))
            w.push_bytes(a.value)
    _patch_length(w, start)


def _patch_length(w: Writer, start: int) -> None:
    length = len(w) - start
    if length > 0xFFFF:
        raise ValueError(f"substructure of {length} bytes exceeds 65535")
    w.patch_uint16(start + 2, length)


# -- names --------------------------------------------------------------------------------

_ID_ENUMS: dict[int, type[IntEnum]] = {
    TransformType.ENCR: EncrId,
    TransformType.PRF: PrfId,
    TransformType.INTEG: IntegId,
    TransformType.KE: KeGroup,
    TransformType.ESN: EsnId,
    # RFC 9370 §2.2.1: additional key exchanges draw their IDs from the Transform Type 4 registry.
    **{t: KeGroup for t in range(TransformType.ADDKE1, TransformType.ADDKE7 + 1)},
}


def transform_iana_name(t: Transform) -> str:
    """The IANA name of the transform ID, e.g. ``ENCR_AES_GCM_16``, ``PRF_HMAC_SHA2_256``, ``ECP_256``."""
    enum = _ID_ENUMS.get(t.type)
    if enum is None:
        return f"{name_of(TransformType, t.type)}_{t.id}"
    return name_of(enum, t.id)


def transform_label(t: Transform) -> str:
    """The IANA name plus the key length when the transform carries one: ``ENCR_AES_CBC_256``."""
    kl = t.key_length
    name = transform_iana_name(t)
    return name if kl is None else f"{name}_{kl}"


def _short_label(t: Transform) -> str:
    """strongSwan's spelling: no ENCR_/AUTH_ prefix, KEn_ for additional key exchanges."""
    name = transform_label(t)
    if t.type == TransformType.ENCR:
        return name.removeprefix("ENCR_")
    if t.type == TransformType.INTEG:
        return name.removeprefix("AUTH_")
    if TransformType.ADDKE1 <= t.type <= TransformType.ADDKE7:
        return f"KE{t.type - TransformType.ADDKE1 + 1}_{name}"
    return name


# strongSwan prints encryption, integrity, PRF, key exchange(s), ESN; anything else follows.
_SUMMARY_ORDER = (
    TransformType.ENCR,
    TransformType.INTEG,
    TransformType.PRF,
    TransformType.KE,
    *range(TransformType.ADDKE1, TransformType.ADDKE7 + 1),
    TransformType.ESN,
)


def proposal_summary(p: Proposal) -> str:
    """``ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ``: every transform, strongSwan order."""
    rank = {t: i for i, t in enumerate(_SUMMARY_ORDER)}
    ordered = sorted(p.transforms, key=lambda t: rank.get(t.type, len(rank)))
    return f"{name_of(ProtocolId, p.protocol_id)}:{'/'.join(_short_label(t) for t in ordered)}"
