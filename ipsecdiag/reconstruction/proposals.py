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
            d = {"protocol": name_of(V1ProtocolId, p.protocol_id)}
        d["summary"] = v1_transform_summary(p.protocol_id, t)
        if p.spi:
            d["spi"] = p.spi.hex()
        out.append(d)
    return out
