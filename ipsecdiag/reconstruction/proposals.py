"""Proposals as the report shows them: IANA names of the transforms of an IKEv2 proposal or an
IKEv1 transform (the SA table and the CHILD SA records use these dicts)."""

from __future__ import annotations

from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.jsontypes import Json
from ..wire.registry import name_of


def proposal_dict_v2(p: v2.Proposal) -> Json:
    """IANA names of the first transform of each type in an IKEv2 proposal."""
    from ..wire.registry import EncrId, EsnId, IntegId, KeGroup, PrfId, ProtocolId, TransformType

    out: Json = {"protocol": name_of(ProtocolId, p.protocol_id), "number": p.number}
    names = {
        TransformType.ENCR: ("encr", EncrId),
        TransformType.PRF: ("prf", PrfId),
        TransformType.INTEG: ("integ", IntegId),
        TransformType.KE: ("ke", KeGroup),
        TransformType.ESN: ("esn", EsnId),
    }
    for t in p.transforms:
        if t.type in names:
            key, enum = names[t.type]
            if key in out:
                out.setdefault(key + "_alternatives", []).append(name_of(enum, t.id))
                continue
            out[key] = name_of(enum, t.id)
            if key == "encr" and t.key_length:
                out["encr_key_bits"] = t.key_length
        elif TransformType.ADDKE1 <= t.type <= TransformType.ADDKE7:
            out.setdefault("addke", []).append(name_of(KeGroup, t.id))
    if p.spi:
        out["spi"] = p.spi.hex()
    return out


def proposal_dict_v1(p: v1.V1Proposal) -> Json:
    """First transform of an IKEv1 proposal (the responder returns exactly one)."""
    dicts = proposal_dicts_v1_all(p)
    return dicts[0] if dicts else {"protocol": str(p.protocol_id)}


def proposal_dicts_v1_all(p: v1.V1Proposal) -> list[Json]:
    """One dict per transform: phase 1 attributes by name, or an IPsec transform summary."""
    from ..wire.ikev1_display import v1_phase1_params, v1_transform_summary
    from ..wire.registry import V1ProtocolId

    out: list[Json] = []
    for t in p.transforms:
        if p.protocol_id == V1ProtocolId.PROTO_ISAKMP:
            q = v1_phase1_params(t)
            d: Json = {
                "protocol": "IKE",
                "encr": q["encr"],
                "hash": q["hash"],
                "ke": q["group"],
                "auth": q["auth"],
            }
            if q["key_bits"]:
                d["encr_key_bits"] = q["key_bits"]
            if q["life_seconds"]:
                d["life_seconds"] = q["life_seconds"]
        else:
            d = ipsec_transform_dict_v1(p.protocol_id, t)
        d["summary"] = v1_transform_summary(p.protocol_id, t)
        if p.spi:
            d["spi"] = p.spi.hex()
        out.append(d)
    return out


def ipsec_transform_dict_v1(protocol_id: int, t: v1.V1Transform) -> Json:
    """An IKEv1 ESP/AH/IPCOMP transform in the keys of an IKEv2 proposal dict (``encr``,
    ``encr_key_bits``, ``integ``, ``ke``, ``esn``) plus what IKEv1 negotiates as SA attributes
    (RFC 2407 §4.5): ``mode`` (tunnel/transport) and ``encap`` (udp for the RFC 3947 UDP-
    Encapsulated modes and their draft values, else none), and the lifetimes. Names are the
    IKEv1 registry's (``ESP_AES_CBC``, ``HMAC_SHA2_256``)."""
    from ..wire.registry import (
        EsnId,
        KeGroup,
        V1AhTransformId,
        V1EncapMode,
        V1EspTransformId,
        V1IpcompTransformId,
        V1IpsecAttr,
        V1IpsecAuthAlg,
        V1LifeType,
        V1ProtocolId,
    )

    d: Json = {"protocol": {V1ProtocolId.PROTO_IPSEC_ESP: "ESP", V1ProtocolId.PROTO_IPSEC_AH: "AH"}.get(
        protocol_id, name_of(V1ProtocolId, protocol_id)
    )}
    if protocol_id == V1ProtocolId.PROTO_IPSEC_ESP:
        d["encr"] = name_of(V1EspTransformId, t.transform_id)
    elif protocol_id == V1ProtocolId.PROTO_IPSEC_AH:
        d["ah_transform"] = name_of(V1AhTransformId, t.transform_id)
    elif protocol_id == V1ProtocolId.PROTO_IPCOMP:
        d["ipcomp"] = name_of(V1IpcompTransformId, t.transform_id)
    life_type = V1LifeType.SECONDS
    for a in t.attributes:
        v = a.int_value
        if a.type == V1IpsecAttr.KEY_LENGTH:
            d["encr_key_bits"] = v
        elif a.type == V1IpsecAttr.AUTHENTICATION_ALGORITHM:
            d["integ"] = name_of(V1IpsecAuthAlg, v)
        elif a.type == V1IpsecAttr.GROUP_DESCRIPTION:  # PFS (RFC 2409 §5.5)
            d["ke"] = name_of(KeGroup, v)
        elif a.type == V1IpsecAttr.EXTENDED_SEQUENCE_NUMBER:  # RFC 4304 §2
            d["esn"] = name_of(EsnId, v)
        elif a.type == V1IpsecAttr.ENCAPSULATION_MODE:
            udp = v in (
                V1EncapMode.UDP_TUNNEL,
                V1EncapMode.UDP_TRANSPORT,
                V1EncapMode.UDP_TUNNEL_DRAFT,
                V1EncapMode.UDP_TRANSPORT_DRAFT,
            )
            transport = v in (V1EncapMode.TRANSPORT, V1EncapMode.UDP_TRANSPORT, V1EncapMode.UDP_TRANSPORT_DRAFT)
            d["mode"] = "transport" if transport else "tunnel" if v in (
                V1EncapMode.TUNNEL,
                V1EncapMode.UDP_TUNNEL,
                V1EncapMode.UDP_TUNNEL_DRAFT,
            ) else name_of(V1EncapMode, v)
            d["encap"] = "udp" if udp else "none"
        elif a.type == V1IpsecAttr.SA_LIFE_TYPE:
            life_type = v
        elif a.type == V1IpsecAttr.SA_LIFE_DURATION:  # applies to the Life Type before it
            d["life_kilobytes" if life_type == V1LifeType.KILOBYTES else "life_seconds"] = v
    return d
