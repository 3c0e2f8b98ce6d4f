"""``ipsecdiag explain`` for notifies: a number or a name, in IKEv2 and in IKEv1.

The two registries share numbers but not meanings: IKEv2 (RFC 7296 §3.10.1) kept the RFC 2408
§3.14.1 error numbers where the meaning survived (5, 9, 11, 14, 24) and reused the others
(1, 4, 7, 17), and the IKEv1 IPsec DOI status notifies (RFC 2407 §4.6.3: 24576 RESPONDER-LIFETIME,
24577 REPLAY-STATUS, 24578 INITIAL-CONTACT) are not IKEv2's 16384 INITIAL_CONTACT, which in
ISAKMP is CONNECTED. So a number is answered with every version that uses it, each labelled, and
a name with every number it has. Names come from :mod:`ipsecdiag.wire.registry`; the RFC 2408
and Wireshark spelling with hyphens (``INVALID-ID-INFORMATION``) is accepted.
"""

from __future__ import annotations

from enum import IntEnum

from ..wire.registry import NotifyType, V1NotifyType
from .knowledge import CATALOGUE, NOTIFY_HELP, NotifyInfo, explain_text

V = V1NotifyType
_ERROR = "error-notify"
_NONE = ""  # a status notify: no finding comes from it

# IKEv1 meanings for the names IKEv1 alone has (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706);
# names IKEv1 shares with IKEv2 (NO_PROPOSAL_CHOSEN, INVALID_SPI, ...) mean the same and use
# NOTIFY_HELP. ``finding`` is what ``analyze`` files the notify under.
V1_NOTIFY_HELP: dict[str, NotifyInfo] = {
    n.name: n
    for n in [
        NotifyInfo(V.INVALID_PAYLOAD_TYPE.name, "The peer received a payload type it does not know.",
                   "Compare the two implementations; turn off vendor extensions.", _ERROR),
        NotifyInfo(V.DOI_NOT_SUPPORTED.name, "The SA payload names a Domain of Interpretation the peer "
                   "does not support (IPsec is DOI 1).", "Check the peer speaks the IPsec DOI.", _ERROR),
        NotifyInfo(V.SITUATION_NOT_SUPPORTED.name, "The SA payload's situation (e.g. secrecy or "
                   "integrity labels) is not supported.", "Use SIT_IDENTITY_ONLY.", _ERROR),
        NotifyInfo(V.INVALID_COOKIE.name, "The peer has no ISAKMP SA with these cookies (e.g. it restarted).",
                   "Restart the tunnel; enable DPD.", _ERROR),
        NotifyInfo(V.INVALID_MINOR_VERSION.name, "The peer does not accept this ISAKMP minor version.",
                   "Compare the two implementations.", _ERROR),
        NotifyInfo(V.INVALID_EXCHANGE_TYPE.name, "The peer does not accept this exchange type, e.g. "
                   "Aggressive Mode where it only does Main Mode, or the reverse.",
                   "Configure the same phase 1 mode on both sides (`aggressive = yes|no`).", _ERROR),
        NotifyInfo(V.INVALID_FLAGS.name, "The ISAKMP header flags are not acceptable (e.g. unencrypted "
                   "where encryption was expected).", "Compare the two implementations.", _ERROR),
        NotifyInfo(V.INVALID_PROTOCOL_ID.name, "A proposal names a protocol the peer does not support.",
                   "Align the phase 2 protocol (ESP/AH) on both sides.", _ERROR),
        NotifyInfo(V.INVALID_TRANSFORM_ID.name, "A proposal names a transform the peer does not support.",
                   "Align the proposals of both peers.", _ERROR),
        NotifyInfo(V.ATTRIBUTES_NOT_SUPPORTED.name, "An SA attribute (key length, lifetime, group, ...) "
                   "is not supported.", "Align the proposals, including key lengths and lifetimes.", _ERROR),
        NotifyInfo(V.BAD_PROPOSAL_SYNTAX.name, "The SA payload's proposals are malformed.",
                   "Compare the two implementations.", _ERROR),
        NotifyInfo(V.PAYLOAD_MALFORMED.name, "The peer could not parse a payload; in Main Mode this "
                   "is often a message it could not decrypt, i.e. a pre-shared key mismatch.",
                   "Check the pre-shared keys on both sides.", _ERROR),
        NotifyInfo(V.INVALID_KEY_INFORMATION.name, "The key exchange data is not acceptable (wrong "
                   "length for the group, or a group the peer does not want).",
                   "Use the same DH group on both sides (phase 1, and PFS in Quick Mode).", _ERROR),
        NotifyInfo(V.INVALID_ID_INFORMATION.name, "The identity payload is not acceptable. Answering a "
                   "Quick Mode, it means the proposed IDs (the traffic selectors) do not match the "
                   "peer's policy; in phase 1, that the peer does not know this identity.",
                   "Mirror local/remote subnets on both sides (phase 1: check the identities).",
                   "ts-unacceptable"),
        NotifyInfo(V.INVALID_CERT_ENCODING.name, "A certificate's encoding is not acceptable.",
                   "Send X.509 signature certificates (encoding 4).", _ERROR),
        NotifyInfo(V.INVALID_CERTIFICATE.name, "The peer rejected the certificate (expired, revoked, "
                   "unverifiable).", "Check the certificate chain and validity.", _ERROR),
        NotifyInfo(V.CERT_TYPE_UNSUPPORTED.name, "The certificate type is not supported.",
                   "Send X.509 certificates.", _ERROR),
        NotifyInfo(V.INVALID_CERT_AUTHORITY.name, "The certificate request names a CA the peer does "
                   "not have.", "Install the CA, or use one both sides trust.", _ERROR),
        NotifyInfo(V.INVALID_HASH_INFORMATION.name, "The HASH payload did not verify: usually a "
                   "pre-shared key mismatch.", "Check the pre-shared keys on both sides.", "auth-failed"),
        NotifyInfo(V.INVALID_SIGNATURE.name, "The SIG payload did not verify.",
                   "Check the certificates and private keys.", "auth-failed"),
        NotifyInfo(V.ADDRESS_NOTIFICATION.name, "An address notification (rarely used).", "", _ERROR),
        NotifyInfo(V.NOTIFY_SA_LIFETIME.name, "The peer refuses the proposed SA lifetime.",
                   "Align the lifetimes.", _ERROR),
        NotifyInfo(V.CERTIFICATE_UNAVAILABLE.name, "The peer has no certificate to send.",
                   "Install the certificate on the peer, or use another authentication method.", _ERROR),
        NotifyInfo(V.UNSUPPORTED_EXCHANGE_TYPE.name, "The exchange type is not supported.",
                   "Compare the two implementations.", _ERROR),
        NotifyInfo(V.UNEQUAL_PAYLOAD_LENGTHS.name, "The ISAKMP header length and the payload lengths "
                   "disagree.", "Compare the two implementations; look for truncation on the path.", _ERROR),
        NotifyInfo(V.CONNECTED.name, "Status (RFC 2408 §3.14.1): the Quick Mode with the commit bit "
                   "completed.", "", _NONE),
        NotifyInfo(V.RESPONDER_LIFETIME.name, "Status (IPsec DOI, RFC 2407 §4.6.3.1): the responder "
                   "chose a shorter lifetime than proposed.", "", _NONE),
        NotifyInfo(V.REPLAY_STATUS.name, "Status (IPsec DOI, RFC 2407 §4.6.3.2): whether the responder "
                   "uses anti-replay on the SA.", "", _NONE),
        NotifyInfo(V.INITIAL_CONTACT.name, "Status (IPsec DOI, RFC 2407 §4.6.3.3): the sender has no "
                   "other SA with the receiver, which may delete its old SAs.", "", _NONE),
        NotifyInfo(V.R_U_THERE.name, "Dead Peer Detection probe (RFC 3706).", "", _NONE),
        NotifyInfo(V.R_U_THERE_ACK.name, "Dead Peer Detection answer (RFC 3706).", "", _NONE),
    ]
}


def _name(key: str) -> str:
    return key.strip().upper().replace("-", "_")


def _by_version(key: str) -> list[tuple[str, IntEnum]]:
    """("IKEv2" | "IKEv1", member) for every registry entry the key (number or name) denotes."""
    k = _name(key)
    out: list[tuple[str, IntEnum]] = []
    for proto, reg in (("IKEv2", NotifyType), ("IKEv1", V1NotifyType)):
        if k.isdigit():
            try:
                out.append((proto, reg(int(k))))
            except ValueError:
                continue
        elif k in reg.__members__:
            out.append((proto, reg[k]))
    return out


def _help(proto: str, member: IntEnum) -> NotifyInfo | None:
    if proto == "IKEv1" and member.name in V1_NOTIFY_HELP:
        return V1_NOTIFY_HELP[member.name]
    return NOTIFY_HELP.get(member.name)


def _rows(proto: str, member: IntEnum) -> list[tuple[str, str]]:
    code = int(member)
    kind = "error" if code < 16384 else "status"
    ref = "RFC 7296 §3.10.1" if proto == "IKEv2" else "RFC 2408 §3.14.1 / RFC 2407 §4.6.3"
    info = _help(proto, member)
    rows = [("Type", f"{proto} notify message type {code} ({kind} type, {ref}).")]
    if info is None:
        note = "ipsecdiag has no catalogue entry for it; it is reported where it appears."
        return [*rows, ("Finding", note if kind == "error" else "none (a status notify, not a failure)")]
    rows.append(("Meaning", info.meaning))
    if info.fix:
        rows.append(("Fix", info.fix))
    finding = info.finding or "none (a status notify, not a failure)"
    if proto == "IKEv1" and member.name == V.INVALID_ID_INFORMATION.name:
        finding = "ts-unacceptable when it answers a Quick Mode; error-notify otherwise"
    return [*rows, ("Finding", finding)]


def explain_key(key: str) -> tuple[str, list[tuple[str, str]]] | None:
    """Title and (label, text) rows for a finding id, or a notify number or name (both versions)."""
    if key.strip().lower() in CATALOGUE:
        return explain_text(key)
    found = _by_version(key)
    if not found:
        return None
    # one name with one number in both versions (14 NO_PROPOSAL_CHOSEN, ...): the same notify
    if len(found) == 2 and found[0][1].name == found[1][1].name and int(found[0][1]) == int(found[1][1]):
        _, member = found[0]
        rows = _rows("IKEv2", member)
        rows[0] = ("Type", f"IKEv2 and IKEv1 notify message type {int(member)}, the same meaning in both.")
        return f"Notify {member.name}", rows
    if len(found) == 1:
        proto, member = found[0]
        return f"Notify {member.name}", _rows(proto, member)
    if _name(key).isdigit():
        title = f"Notify type {_name(key)}: " + " in IKEv2, ".join(m.name for _, m in found) + " in IKEv1"
    else:
        title = f"Notify {found[0][1].name}: type {int(found[0][1])} in IKEv2, {int(found[1][1])} in IKEv1"
    rows = []
    for proto, member in found:
        sub = _rows(proto, member)
        rows.append((proto, member.name))
        rows.extend((f"  {label}", text) for label, text in sub)
    return title, rows
