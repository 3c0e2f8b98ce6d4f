"""Human-facing views of IKEv1 payloads: identities, attribute names, proposal summaries.

Kept apart from the codec in :mod:`.ikev1` (which re-exports the public helpers) so the
byte-level code stays short. Nothing here
raises on odd input: unknown numbers render through ``registry.name_of`` and undecodable
identity data falls back to hex.
"""

from __future__ import annotations

import ipaddress
from enum import Enum, IntEnum
from typing import TYPE_CHECKING

from .registry import (
    KeGroup,
    V1AhTransformId,
    V1AttrClass,
    V1AuthMethod,
    V1CfgAttr,
    V1EncapMode,
    V1EncrAlg,
    V1EspTransformId,
    V1GroupType,
    V1HashAlg,
    V1IdType,
    V1IpcompTransformId,
    V1IpsecAttr,
    V1IpsecAuthAlg,
    V1LifeType,
    V1ProtocolId,
    name_of,
)

if TYPE_CHECKING:  # the codec imports this module, so only annotations may refer back to it
    from .ikev1 import V1Attribute, V1Proposal, V1Transform

# ------------------------------------------------------------------------------------------
# Identities (RFC 2407 §4.6.2)
# ------------------------------------------------------------------------------------------


def _mask_text(addr: bytes, mask: bytes, version: int) -> str:
    net = ipaddress.ip_address(addr)
    m = int.from_bytes(mask, "big")
    bits = len(mask) * 8
    prefix = bits - (~m & ((1 << bits) - 1)).bit_length()
    if m == ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1):  # contiguous mask
        return f"{net}/{prefix}"
    return f"{net}/{ipaddress.ip_address(mask)}"


def id_text(id_type: int, data: bytes) -> str:
    """Render identification data: addresses, subnets, ranges, names, DNs; hex otherwise."""
    n = len(data)
    if id_type == V1IdType.ID_IPV4_ADDR and n == 4 or id_type == V1IdType.ID_IPV6_ADDR and n == 16:
        return str(ipaddress.ip_address(data))
    if id_type in (V1IdType.ID_IPV4_ADDR_SUBNET, V1IdType.ID_IPV4_ADDR_RANGE) and n == 8:
        half = 4
    elif id_type in (V1IdType.ID_IPV6_ADDR_SUBNET, V1IdType.ID_IPV6_ADDR_RANGE) and n == 32:
        half = 16
    else:
        half = 0
    if half:
        a, b = data[:half], data[half:]
        if id_type in (V1IdType.ID_IPV4_ADDR_SUBNET, V1IdType.ID_IPV6_ADDR_SUBNET):
            return _mask_text(a, b, 4 if half == 4 else 6)
        return f"{ipaddress.ip_address(a)}-{ipaddress.ip_address(b)}"
    if id_type in (V1IdType.ID_FQDN, V1IdType.ID_USER_FQDN):
        return data.decode("utf-8", errors="replace")
    if id_type == V1IdType.ID_DER_ASN1_DN:
        dn = der_dn_text(data)
        if dn is not None:
            return dn
    return data.hex()


# A distinguished name is SEQUENCE OF SET OF SEQUENCE { OID, value } (RFC 5280 §4.1.2.4).
# Only that much DER is needed here, so it is walked by hand instead of pulling in an ASN.1
# library (the wire layer does not call `cryptography`).
_DN_ATTRS = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "T",
    "2.5.4.42": "G",
    "2.5.4.46": "dnQualifier",
    "1.2.840.113549.1.9.1": "E",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
}
_DER_STRINGS = {
    0x0C: "utf-8",
    0x13: "ascii",
    0x14: "latin-1",
    0x16: "ascii",
    0x1A: "ascii",
    0x1E: "utf-16-be",
}


class _DerError(ValueError):
    pass


def _der_items(data: bytes) -> list[tuple[int, bytes]]:
    items: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise _DerError("truncated header")
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or i + count > len(data):
                raise _DerError("bad length")
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        if i + length > len(data):
            raise _DerError("truncated value")
        items.append((tag, data[i : i + length]))
        i += length
    return items


def _oid_text(raw: bytes) -> str:
    if not raw or raw[-1] & 0x80:
        raise _DerError("bad OID")
    arcs: list[int] = []
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def der_dn_text(der: bytes) -> str | None:
    """ "C=CH, O=strongSwan, CN=moon" (DER order, as strongSwan prints) or None if not a DN."""
    try:
        top = _der_items(der)
        if len(top) != 1 or top[0][0] != 0x30:
            return None
        parts: list[str] = []
        for set_tag, rdn in _der_items(top[0][1]):
            if set_tag != 0x31:
                return None
            for seq_tag, atv in _der_items(rdn):
                pair = _der_items(atv)
                if seq_tag != 0x30 or len(pair) != 2 or pair[0][0] != 0x06:
                    return None
                oid = _oid_text(pair[0][1])
                vtag, value = pair[1]
                enc = _DER_STRINGS.get(vtag)
                text = value.decode(enc, errors="replace") if enc else "#" + value.hex()
                parts.append(f"{_DN_ATTRS.get(oid, oid)}={text}")
    except _DerError:
        return None
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------
# Attributes
# ------------------------------------------------------------------------------------------


class AttrContext(Enum):
    """Which attribute registry applies: phase 1 (PROTO_ISAKMP), IPsec DOI, or Mode-Config."""

    PHASE1 = "phase1"
    IPSEC = "ipsec"
    CFG = "cfg"


def context_for(proposal: V1Proposal) -> AttrContext:
    return AttrContext.PHASE1 if proposal.protocol_id == V1ProtocolId.PROTO_ISAKMP else AttrContext.IPSEC


_TYPE_ENUM: dict[AttrContext, type[IntEnum]] = {
    AttrContext.PHASE1: V1AttrClass,
    AttrContext.IPSEC: V1IpsecAttr,
    AttrContext.CFG: V1CfgAttr,
}
_VALUE_ENUM: dict[tuple[AttrContext, int], type[IntEnum]] = {
    (AttrContext.PHASE1, V1AttrClass.ENCRYPTION_ALGORITHM): V1EncrAlg,
    (AttrContext.PHASE1, V1AttrClass.HASH_ALGORITHM): V1HashAlg,
    (AttrContext.PHASE1, V1AttrClass.AUTHENTICATION_METHOD): V1AuthMethod,
    (AttrContext.PHASE1, V1AttrClass.GROUP_DESCRIPTION): KeGroup,
    (AttrContext.PHASE1, V1AttrClass.GROUP_TYPE): V1GroupType,
    (AttrContext.PHASE1, V1AttrClass.LIFE_TYPE): V1LifeType,
    (AttrContext.IPSEC, V1IpsecAttr.SA_LIFE_TYPE): V1LifeType,
    (AttrContext.IPSEC, V1IpsecAttr.GROUP_DESCRIPTION): KeGroup,
    (AttrContext.IPSEC, V1IpsecAttr.ENCAPSULATION_MODE): V1EncapMode,
    (AttrContext.IPSEC, V1IpsecAttr.AUTHENTICATION_ALGORITHM): V1IpsecAuthAlg,
}
_CFG_ADDRESSES = {
    V1CfgAttr.INTERNAL_IP4_ADDRESS,
    V1CfgAttr.INTERNAL_IP4_NETMASK,
    V1CfgAttr.INTERNAL_IP4_DNS,
    V1CfgAttr.INTERNAL_IP4_NBNS,
    V1CfgAttr.INTERNAL_IP4_DHCP,
    V1CfgAttr.INTERNAL_IP6_ADDRESS,
    V1CfgAttr.INTERNAL_IP6_DNS,
    V1CfgAttr.INTERNAL_IP6_NBNS,
    V1CfgAttr.INTERNAL_IP6_DHCP,
}
_CFG_TEXT = {
    V1CfgAttr.APPLICATION_VERSION,
    V1CfgAttr.XAUTH_USER_NAME,
    V1CfgAttr.XAUTH_MESSAGE,
    V1CfgAttr.XAUTH_DOMAIN,
    V1CfgAttr.UNITY_BANNER,
    V1CfgAttr.UNITY_DEF_DOMAIN,
    V1CfgAttr.UNITY_SPLITDNS_NAME,
    V1CfgAttr.UNITY_DDNS_HOSTNAME,
}
_CFG_SECRET = {V1CfgAttr.XAUTH_USER_PASSWORD, V1CfgAttr.XAUTH_PASSCODE, V1CfgAttr.XAUTH_NEXT_PIN}


def attr_type_name(attr: V1Attribute, ctx: AttrContext) -> str:
    return name_of(_TYPE_ENUM[ctx], attr.type)


def attr_value_text(attr: V1Attribute, ctx: AttrContext) -> str:
    """The value as a name ("AES_CBC"), number, address or text. Passwords are redacted."""
    enum = _VALUE_ENUM.get((ctx, attr.type))
    if enum is not None:
        return name_of(enum, attr.int_value)
    if ctx is AttrContext.CFG and not attr.tv:
        raw = attr.raw
        if attr.type in _CFG_SECRET:
            return f"<redacted, {len(raw)} bytes>"
        if attr.type in _CFG_ADDRESSES and len(raw) in (4, 16):
            return str(ipaddress.ip_address(raw))
        if attr.type in _CFG_TEXT:
            return raw.decode("utf-8", errors="replace")
        return raw.hex()
    if attr.tv or len(attr.raw) <= 8:
        return str(attr.int_value)
    return attr.raw.hex()


# ------------------------------------------------------------------------------------------
# Proposal summaries and phase 1 parameters
# ------------------------------------------------------------------------------------------

# Display spellings where the IANA name reads badly in a one-line summary.
_ENCR_TEXT: dict[int, str] = {V1EncrAlg.TRIPLE_DES_CBC: "3DES_CBC"}
_HASH_TEXT: dict[int, str] = {V1HashAlg.SHA: "SHA1"}
_IPSEC_AUTH_TEXT: dict[int, str] = {V1IpsecAuthAlg.HMAC_SHA: "HMAC_SHA1"}
_PROTO_TEXT: dict[int, str] = {
    V1ProtocolId.PROTO_ISAKMP: "IKE",
    V1ProtocolId.PROTO_IPSEC_ESP: "ESP",
    V1ProtocolId.PROTO_IPSEC_AH: "AH",
    V1ProtocolId.PROTO_IPCOMP: "IPCOMP",
}


def v1_phase1_params(transform: V1Transform) -> dict[str, int | str | None]:
    """Phase 1 (KEY_IKE) transform attributes as one flat dict.

    Keys: encr/encr_id, key_bits, hash/hash_id, prf_id, auth/auth_id, group/group_id,
    life_seconds, life_kilobytes. Names are registry names (``AES_CBC``, ``SHA2_256``,
    ``PRE_SHARED_KEY``, ``MODP_2048``); absent attributes are None. Each Life-Duration applies
    to the Life-Type before it (RFC 2409 Appendix A); a duration with no type means seconds.
    """
    p: dict[str, int | str | None] = dict.fromkeys(
        (
            "encr",
            "encr_id",
            "key_bits",
            "hash",
            "hash_id",
            "prf_id",
            "auth",
            "auth_id",
            "group",
            "group_id",
            "life_seconds",
            "life_kilobytes",
        )
    )
    life_type: int = V1LifeType.SECONDS
    for a in transform.attributes:
        v = a.int_value
        if a.type == V1AttrClass.ENCRYPTION_ALGORITHM:
            p["encr"], p["encr_id"] = name_of(V1EncrAlg, v), v
        elif a.type == V1AttrClass.KEY_LENGTH:
            p["key_bits"] = v
        elif a.type == V1AttrClass.HASH_ALGORITHM:
            p["hash"], p["hash_id"] = name_of(V1HashAlg, v), v
        elif a.type == V1AttrClass.PRF:
            p["prf_id"] = v
        elif a.type == V1AttrClass.AUTHENTICATION_METHOD:
            p["auth"], p["auth_id"] = name_of(V1AuthMethod, v), v
        elif a.type == V1AttrClass.GROUP_DESCRIPTION:
            p["group"], p["group_id"] = name_of(KeGroup, v), v
        elif a.type == V1AttrClass.LIFE_TYPE:
            life_type = v
        elif a.type == V1AttrClass.LIFE_DURATION:
            p["life_kilobytes" if life_type == V1LifeType.KILOBYTES else "life_seconds"] = v
    return p


def _with_bits(name: str, bits: int | None) -> str:
    return f"{name}_{bits}" if bits else name


def _phase1_summary(t: V1Transform) -> str:
    attrs = {a.type: a.int_value for a in t.attributes}
    parts: list[str] = []
    encr = attrs.get(V1AttrClass.ENCRYPTION_ALGORITHM)
    if encr is not None:
        name = _ENCR_TEXT.get(encr) or name_of(V1EncrAlg, encr)
        parts.append(_with_bits(name, attrs.get(V1AttrClass.KEY_LENGTH)))
    hash_alg = attrs.get(V1AttrClass.HASH_ALGORITHM)
    if hash_alg is not None:
        parts.append(_HASH_TEXT.get(hash_alg) or name_of(V1HashAlg, hash_alg))
    group = attrs.get(V1AttrClass.GROUP_DESCRIPTION)
    if group is not None:
        parts.append(name_of(KeGroup, group))
    auth = attrs.get(V1AttrClass.AUTHENTICATION_METHOD)
    if auth is not None:
        parts.append(name_of(V1AuthMethod, auth))
    return "IKE:" + "/".join(parts)


def _ipsec_summary(protocol_id: int, t: V1Transform) -> str:
    attrs = {a.type: a.int_value for a in t.attributes}
    parts: list[str] = []
    if protocol_id == V1ProtocolId.PROTO_IPSEC_ESP:
        name = name_of(V1EspTransformId, t.transform_id).removeprefix("ESP_")
        parts.append(_with_bits(name, attrs.get(V1IpsecAttr.KEY_LENGTH)))
    elif protocol_id == V1ProtocolId.PROTO_IPCOMP:
        parts.append(name_of(V1IpcompTransformId, t.transform_id).removeprefix("IPCOMP_"))
    elif V1IpsecAttr.AUTHENTICATION_ALGORITHM not in attrs:
        parts.append(name_of(V1AhTransformId, t.transform_id).removeprefix("AH_"))
    auth = attrs.get(V1IpsecAttr.AUTHENTICATION_ALGORITHM)
    if auth is not None:
        parts.append(_IPSEC_AUTH_TEXT.get(auth) or name_of(V1IpsecAuthAlg, auth))
    group = attrs.get(V1IpsecAttr.GROUP_DESCRIPTION)
    if group is not None:
        parts.append(name_of(KeGroup, group))
    mode = attrs.get(V1IpsecAttr.ENCAPSULATION_MODE)
    if mode is not None:
        parts.append(name_of(V1EncapMode, mode))
    proto = _PROTO_TEXT.get(protocol_id) or name_of(V1ProtocolId, protocol_id)
    return f"{proto}:" + "/".join(parts)


def v1_transform_summary(protocol_id: int, transform: V1Transform) -> str:
    """One transform in strongSwan's style: ``IKE:AES_CBC_256/SHA2_256/MODP_2048/PRE_SHARED_KEY``
    or ``ESP:AES_CBC_256/HMAC_SHA2_256/TUNNEL``."""
    if protocol_id == V1ProtocolId.PROTO_ISAKMP:
        return _phase1_summary(transform)
    return _ipsec_summary(protocol_id, transform)


def v1_proposal_summary(proposal: V1Proposal) -> str:
    """Every transform of a proposal (IKEv1 transforms are alternatives), joined by ", "."""
    return ", ".join(v1_transform_summary(proposal.protocol_id, t) for t in proposal.transforms)
