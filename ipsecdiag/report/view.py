"""What a (decrypted) IKE message says, as plain data for the report: identities, the
authentication method, certificates (subject, issuer, validity), traffic selectors,
configuration attributes, proposals, deletes and EAP codes.

The JSON report carries this as each message's ``details``; the ladder shows a one-line
digest of it under the message.
"""

from __future__ import annotations

from ..reconstruction.model import CertificateInfo, MessageRecord, raw_seconds, utc_datetime
from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.eap import parse_eap
from ..wire.errors import WireError
from ..wire.jsontypes import Json
from ..wire.registry import (
    AuthMethod,
    CfgAttr,
    CfgType,
    IdType,
    KeGroup,
    ProtocolId,
    V1IdType,
    V1ProtocolId,
    name_of,
)

_EAP_CODES = {1: "Request", 2: "Response", 3: "Success", 4: "Failure"}


def _iso(ts: float) -> str:
    dt = utc_datetime(ts)
    return raw_seconds(ts) if dt is None else dt.isoformat(timespec="seconds")


def _cert(c: CertificateInfo) -> Json:
    if c.error is not None:
        return {"encoding": c.encoding, "error": c.error}
    if c.subject is None:
        return {"encoding": c.encoding, "bytes": c.size}
    return {
        "subject": c.subject,
        "issuer": c.issuer,
        "not_before": _iso(c.not_before or 0.0),
        "not_after": _iso(c.not_after or 0.0),
        "subject_alt_names": c.subject_alt_names,
        "serial": c.serial,
    }


def _cfg_value(attr_type: int, value: bytes) -> str:
    if (
        attr_type
        in (
            CfgAttr.INTERNAL_IP4_ADDRESS,
            CfgAttr.INTERNAL_IP4_NETMASK,
            CfgAttr.INTERNAL_IP4_DNS,
            CfgAttr.INTERNAL_IP4_NBNS,
            CfgAttr.INTERNAL_IP4_DHCP,
        )
        and len(value) == 4
    ):
        return ".".join(map(str, value))
    if attr_type == CfgAttr.INTERNAL_IP4_SUBNET and len(value) == 8:
        return ".".join(map(str, value[:4])) + "/" + ".".join(map(str, value[4:]))
    if attr_type in (CfgAttr.INTERNAL_IP6_ADDRESS, CfgAttr.INTERNAL_IP6_DNS) and len(value) >= 16:
        import ipaddress

        text = str(ipaddress.IPv6Address(value[:16]))
        return f"{text}/{value[16]}" if len(value) == 17 else text
    if attr_type in (CfgAttr.APPLICATION_VERSION, CfgAttr.INTERNAL_DNS_DOMAIN) and value.isascii():
        return value.decode()
    return value.hex() if value else ""


def message_details(m: MessageRecord) -> Json:
    """The facts a message's payloads carry (outer and decrypted), for the report."""
    d: Json = {}
    for p in m.all_payloads():
        if isinstance(p, v2.IdPayload):
            d.setdefault("ids", []).append(
                {"payload": name_of_payload(p), "type": name_of(IdType, p.id_type), "value": p.display()}
            )
        elif isinstance(p, v1.V1IdPayload):
            d.setdefault("ids", []).append(
                {
                    "payload": "ID",
                    "type": name_of(V1IdType, p.id_type),
                    "value": p.display(),
                    "protocol": p.protocol_id,
                    "port": p.port,
                }
            )
        elif isinstance(p, v2.AuthPayload):
            d["auth_method"] = name_of(AuthMethod, p.method)
        elif isinstance(p, v2.CertPayload | v1.V1CertPayload):
            if "certificates" not in d:  # read once per message by reconstruction (all payloads)
                d["certificates"] = [_cert(c) for c in m.certificates]
        elif isinstance(p, v2.CertReqPayload):
            d.setdefault("certreq_ca_hashes", []).extend(h.hex() for h in (p.ca_hashes() or ()))
        elif isinstance(p, v2.TsPayload):
            d.setdefault("TSi" if name_of_payload(p) == "TSi" else "TSr", []).extend(
                s.display() for s in p.selectors
            )
        elif isinstance(p, v2.CpPayload):
            d["configuration"] = {
                "type": name_of(CfgType, p.cfg_type),
                "attributes": [
                    {"type": name_of(CfgAttr, a.type), "value": _cfg_value(a.type, a.value)}
                    for a in p.attributes
                ],
            }
        elif isinstance(p, v2.SaPayload):
            d["proposals"] = [v2.proposal_summary(pr) for pr in p.proposals]
        elif isinstance(p, v1.V1SaPayload):
            d["proposals"] = [v1.v1_proposal_summary(pr) for pr in p.proposals]
        elif isinstance(p, v2.KePayload):
            d["ke_group"] = name_of(KeGroup, p.group)
        elif isinstance(p, v2.DeletePayload):
            d.setdefault("deletes", []).append(
                {"protocol": name_of(ProtocolId, p.protocol_id), "spis": [s.hex() for s in p.spis]}
            )
        elif isinstance(p, v1.V1DeletePayload):
            d.setdefault("deletes", []).append(
                {"protocol": name_of(V1ProtocolId, p.protocol_id), "spis": [s.hex() for s in p.spis]}
            )
        elif isinstance(p, v2.EapPayload) and p.code is not None:
            d.setdefault("eap", []).append(_EAP_CODES.get(p.code, str(p.code)))
            d.setdefault("eap_packets", []).append(_eap_packet(p.data))
    return d


def _eap_packet(data: bytes) -> Json:
    """The EAP packet dissected (wire.eap), with its one-line summary; a malformed one says why."""
    try:
        pkt = parse_eap(data)
    except WireError as e:
        return {"malformed": str(e)}
    return {**pkt.as_dict(), "summary": pkt.summary()}


def name_of_payload(p: object) -> str:
    return v2.payload_names([p])[0]


def digest(d: Json) -> str:
    """One line for the ladder: identities, auth, certificates, selectors, virtual IP."""
    parts = []
    for i in d.get("ids", []):
        parts.append(f"{i['payload']}={i['value']}")
    if "auth_method" in d:
        parts.append(f"AUTH={d['auth_method']}")
    for c in d.get("certificates", [])[:2]:
        if "subject" in c:
            parts.append(f"CERT[{c['subject']}; {c['not_before'][:10]}..{c['not_after'][:10]}]")
    for k in ("TSi", "TSr"):
        if d.get(k):
            parts.append(f"{k}={','.join(d[k])}")
    cfg = d.get("configuration")
    if cfg:
        vals = [
            f"{a['type'].removeprefix('INTERNAL_')}={a['value']}" for a in cfg["attributes"] if a["value"]
        ]
        parts.append(f"CP({cfg['type']}{': ' + ', '.join(vals) if vals else ''})")
    for dl in d.get("deletes", []):
        parts.append(f"DELETE {dl['protocol']} {' '.join(dl['spis'])}".rstrip())
    if d.get("eap_packets"):
        parts.append("EAP " + "; ".join(e.get("summary") or e.get("malformed", "?") for e in d["eap_packets"]))
    elif d.get("eap"):
        parts.append("EAP " + "/".join(d["eap"]))
    return "  ".join(parts)


def proposal_short(p: dict[str, str] | None) -> str:
    if not p:
        return "-"
    parts = []
    for k in ("encr", "integ", "prf", "hash", "ke", "auth", "esn"):
        v = p.get(k)
        if not v or v == "NONE":
            continue
        v = str(v).removeprefix("ENCR_").removeprefix("AUTH_").removeprefix("ESP_")  # ESP_: IKEv1 names
        if k == "encr" and p.get("encr_key_bits"):
            v += f"_{p['encr_key_bits']}"
        parts.append(v)
    return "/".join(parts)
