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

from .dn import der_dn_text
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
