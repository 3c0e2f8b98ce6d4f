"""Authentication failures: who rejected whom, with which method, for which identities.

IKEv2 (RFC 7296 §2.21.2): a responder that cannot authenticate the initiator answers IKE_AUTH
with AUTHENTICATION_FAILED; an initiator that cannot authenticate the responder sends
AUTHENTICATION_FAILED in a new INFORMATIONAL request after the IKE_AUTH response. EAP
(RFC 7296 §2.16) ends with an EAP-Failure packet in the IKE_AUTH response. All of this travels
inside SK payloads, so the check needs decrypted messages. IKEv1 signals a failed phase 1
authentication with AUTHENTICATION_FAILED, INVALID_HASH_INFORMATION or INVALID_SIGNATURE.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from ...reconstruction.model import ExchangeRecord, Finding, IkeSaRecord, MessageRecord
from ...wire import ikev1 as v1
from ...wire import ikev2 as v2
from ...wire.eap import MSCHAPV2_ERRORS, EapPacket, parse_eap
from ...wire.errors import WireError
from ...wire.registry import AuthMethod, EapCode, EapType, ExchangeType, IdType, name_of
from ..base import Check, CheckContext
from ..common import AUTH_NOTIFIES_V1, AUTH_NOTIFIES_V2, frames_of, payloads_of, peer, role, where, who

_P = TypeVar("_P")

# Notifies that mean "your authentication did not verify".
_PSK = "SHARED_KEY_MIC"
_SIGNATURE_METHODS = {
    AuthMethod.RSA_DIGITAL_SIGNATURE,
    AuthMethod.DSS_DIGITAL_SIGNATURE,
    AuthMethod.ECDSA_SHA256_P256,
    AuthMethod.ECDSA_SHA384_P384,
    AuthMethod.ECDSA_SHA512_P521,
    AuthMethod.DIGITAL_SIGNATURE,
}


def auth_messages(sa: IkeSaRecord) -> list[tuple[ExchangeRecord, MessageRecord]]:
    """The IKE_AUTH messages of an IKEv2 SA, in capture order."""
    return [
        (e, m) for e in sa.exchanges if e.exchange_type == ExchangeType.IKE_AUTH for m in e.all_messages()
    ]


def identities(sa: IkeSaRecord) -> dict[str, v2.IdPayload]:
    """IDi, the IDr the initiator asked for and the IDr the responder returned (IdPayload objects)."""
    out: dict[str, v2.IdPayload] = {}
    for _, m in auth_messages(sa):
        for p in payloads_of(m, v2.IdPayload):
            if p.which == 35 and m.from_initiator:
                out.setdefault("IDi", p)
            elif p.which == 36 and m.from_initiator:
                out.setdefault("IDr_requested", p)
            elif p.which == 36 and not m.from_initiator:
                out.setdefault("IDr", p)
    return out


def id_text(p: v2.IdPayload | v1.V1IdPayload) -> str:
    return f"{p.display()} ({name_of(IdType, p.id_type)})"


def auth_method(sa: IkeSaRecord, of_initiator: bool) -> str | None:
    """How one side authenticated: the AUTH method name, or EAP-<method> for EAP clients."""
    eap_types: list[int] = []
    method: str | None = None
    for _, m in auth_messages(sa):
        if m.from_initiator != of_initiator:
            continue
        for p in payloads_of(m, v2.AuthPayload):
            method = method or name_of(AuthMethod, p.method)
        for p in payloads_of(m, v2.EapPayload):
            if p.type is not None and p.type not in (EapType.IDENTITY, EapType.NAK):
                eap_types.append(p.type)
    if of_initiator and eap_types:
        return "EAP-" + name_of(EapType, eap_types[-1])
    return method


def eap_failure(sa: IkeSaRecord) -> MessageRecord | None:
    for _, m in auth_messages(sa):
        if not m.from_initiator and any(p.code == EapCode.FAILURE for p in payloads_of(m, v2.EapPayload)):
            return m
    return None


def eap_error(sa: IkeSaRecord) -> tuple[MessageRecord, EapPacket, str | None] | None:
    """The method-level EAP failure the server sent (MS-CHAPv2 Failure-Request with E=), and the
    user name the client gave (EAP-Identity or the MS-CHAPv2 Response name), if any."""
    user: str | None = None
    found: tuple[MessageRecord, EapPacket] | None = None
    for _, m in auth_messages(sa):
        for p in payloads_of(m, v2.EapPayload):
            try:
                pkt = parse_eap(p.data)
            except WireError:
                continue
            if m.from_initiator and (pkt.identity or (pkt.mschapv2_opcode == 2 and pkt.name)):
                user = pkt.identity or pkt.name
            if not m.from_initiator and pkt.error is not None and found is None:
                found = (m, pkt)
    return (found[0], found[1], user) if found else None


def _eap_cause(pkt: EapPacket, user: str | None) -> tuple[str, str]:
    """Cause and fix for an MS-CHAPv2 failure code (RFC 2759 §6)."""
    who_ = f"user {user!r}" if user else "the user"
    if pkt.error == 691:
        return (
            f"The EAP server rejected the password of {who_} (MS-CHAPv2 E=691): wrong password or user "
            "name; this is not a certificate or signature problem.",
            f"Check the password of {who_} on the client against the EAP backend (strongSwan "
            "`secrets { eap-<name> { id = ...; secret = ... } }`, RADIUS user database).",
        )
    if pkt.error == 648:
        return (
            f"The password of {who_} has expired (MS-CHAPv2 E=648).",
            f"Set a new password for {who_} in the EAP backend (or change it from the client if it "
            "supports MS-CHAPv2 password change).",
        )
    text = MSCHAPV2_ERRORS.get(pkt.error or 0, "an error the server did not explain")
    return (
        f"The EAP server refused {who_}: MS-CHAPv2 E={pkt.error} ({text}).",
        f"Fix the account of {who_} in the EAP backend ({text}).",
    )


class AuthCheck(Check):
    name = "auth"
    finding_ids = ("auth-failed",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        for sa in ctx.report.ike_sas:
            f = self._v2(sa) if sa.version == 2 else self._v1(sa)
            if f is not None:
                yield f

    # -- IKEv2 ---------------------------------------------------------------------------
    def _v2(self, sa: IkeSaRecord) -> Finding | None:
        hit: tuple[ExchangeRecord, MessageRecord] | None = None
        for ex in sa.exchanges:
            for m in ex.all_messages():
                if AUTH_NOTIFIES_V2 & set(m.notifies):
                    hit = hit or (ex, m)
        eap_fail = eap_failure(sa)
        if hit is None and eap_fail is None:
            return None
        if hit is not None:
            ex, m = hit
        else:
            assert eap_fail is not None
            m = eap_fail
            ex = next(e for e in sa.exchanges if m in e.all_messages())
        err = eap_error(sa)
        # An EAP server's failure (EAP-Failure, or a method failure such as MS-CHAPv2 E=691) is the
        # responder rejecting the client, even when the client is the one that then closes the
        # exchange with AUTHENTICATION_FAILED.
        eap_rejected = eap_fail is not None or (err is not None and not err[0].from_initiator)
        rejecting = "responder" if eap_rejected else role(m)
        server_msg = (eap_fail or (err[0] if err is not None else None)) if eap_rejected else None
        rejected = "responder" if rejecting == "initiator" else "initiator"
        notify = "AUTHENTICATION_FAILED" if hit is not None else "EAP-Failure"
        ev = [f"{who(m)} sent {notify} in {where(ex)}, frame {m.first_frame}"]
        if ex.exchange_type == ExchangeType.INFORMATIONAL and m.from_initiator:
            ev.append(
                "it came in a new INFORMATIONAL request after the IKE_AUTH response: "
                + (
                    "the initiator gave up after the EAP server's failure message (RFC 7296 §2.21.2)"
                    if eap_rejected
                    else "the initiator could not authenticate the responder from that response (RFC 7296 §2.21.2)"
                )
            )
        ids = identities(sa)
        labels = {"IDi": "IDi", "IDr_requested": "IDr requested by the initiator", "IDr": "IDr"}
        ev += [f"{labels[k]}: {id_text(p)}" for k, p in ids.items()]
        mismatch = _idr_mismatch(ids)
        if mismatch:
            ev.append(mismatch)
        method = auth_method(sa, of_initiator=rejected == "initiator")
        other = auth_method(sa, of_initiator=rejected != "initiator")
        if method:
            ev.append(f"the {rejected} authenticated with {method}")
        if other:
            ev.append(f"the {rejecting} authenticated with {other}")
        if eap_fail is not None:
            ev.append(f"the responder ended EAP with EAP-Failure (code 4) in frame {eap_fail.first_frame}")
        kind = _kind(method, eap_fail is not None)
        expl = (
            f"The {rejecting} ({peer(server_msg or m)}) rejected the {rejected}'s authentication"
            + (f" ({_kind_text(kind, method)})" if method or eap_fail else "")
            + "."
        )
        if ids.get("IDi") is not None:
            expl += f" Initiator identity: {ids['IDi'].display()}."
        rem = _remedy(kind, rejecting, rejected, mismatch)
        cause: str | None = None
        data_eap: dict[str, object] = {}
        if err is not None:
            em, pkt, user = err
            ev.append(f"{who(em)} sent EAP {pkt.summary()} in frame {em.first_frame}")
            cause, rem = _eap_cause(pkt, user)
            data_eap = {"eap_error": pkt.error, "eap_user": user, "eap_message": pkt.message}
            expl += f" {cause}"
        title = None
        if err is not None:
            short = {691: "wrong password", 648: "password expired"}.get(err[1].error or 0, f"E={err[1].error}")
            title = f"EAP authentication failed: {short}" + (f" for {err[2]}" if err[2] else "")
        return self.finding(
            "auth-failed",
            title=title,
            cause=cause,
            frames=sorted(set(frames_of(server_msg, m, ex.request if ex.request is not m else None))),
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            remediation=rem,
            data={
                "rejected": rejected,
                "rejecting": rejecting,
                "method": method or "",
                "kind": kind,
                "identities": {k: p.display() for k, p in ids.items()},
                "eap_failure": eap_fail is not None,
                **data_eap,
            },
        )

    # -- IKEv1 ---------------------------------------------------------------------------
    def _v1(self, sa: IkeSaRecord) -> Finding | None:
        for ex in sa.exchanges:
            for m in ex.all_messages():
                names = AUTH_NOTIFIES_V1 & set(m.notifies)
                if not names:
                    continue
                n = sorted(names)[0]
                rejecting = role(m)
                rejected = "responder" if rejecting == "initiator" else "initiator"
                method = sa.proposal.get("auth") if sa.proposal else None
                ev = [f"{who(m)} sent {n} in {where(ex)}, frame {m.first_frame}"]
                for p in payloads_of_sa(sa, v1.V1IdPayload):
                    ev.append(f"ID ({'initiator' if p[0].from_initiator else 'responder'}): {p[1].display()}")
                if method:
                    ev.append(f"phase 1 authentication method: {method}")
                kind = "psk" if method and "PRESHARED" in method.replace("_", "") else "signature"
                return self.finding(
                    "auth-failed",
                    frames=m.frames,
                    evidence=ev,
                    ike_sa=sa.key,
                    explanation=f"The {rejecting} ({peer(m)}) rejected the {rejected}'s phase 1 authentication ({n}).",
                    remediation=_remedy(kind, rejecting, rejected, None),
                    data={"rejected": rejected, "rejecting": rejecting, "method": method or "", "kind": kind},
                )
        return None


def payloads_of_sa(sa: IkeSaRecord, cls: type[_P]) -> list[tuple[MessageRecord, _P]]:
    out = []
    for e in sa.exchanges:
        if e.message_id != 0:
            continue
        for m in e.all_messages():
            out += [(m, p) for p in payloads_of(m, cls)]
    return out


def _idr_mismatch(ids: dict[str, v2.IdPayload]) -> str | None:
    want, got = ids.get("IDr_requested"), ids.get("IDr")
    if want is None or got is None:
        return None
    if (want.id_type, want.data.lower()) == (got.id_type, got.data.lower()):
        return None
    return (
        f"identity mismatch: the initiator asked for IDr {id_text(want)} but the responder "
        f"identified as {id_text(got)}"
    )


def _kind(method: str | None, eap: bool) -> str:
    if eap or (method or "").startswith("EAP-"):
        return "eap"
    if method == _PSK:
        return "psk"
    if method is None:
        return "unknown"
    if method == "NULL_AUTHENTICATION":
        return "null"
    return "signature"


def _kind_text(kind: str, method: str | None) -> str:
    return {
        "psk": "pre-shared key",
        "eap": method if method and method.startswith("EAP-") else "EAP",
        "signature": f"signature, {method}",
        "null": "NULL authentication",
    }.get(kind, method or "method not visible")


def _remedy(kind: str, rejecting: str, rejected: str, mismatch: str | None) -> str:
    if mismatch:
        return (
            "The identities do not match: configure the responder's identity the initiator expects "
            "(strongSwan `remote { id = ... }` on the initiator, `local { id = ... }` on the responder; "
            "libreswan `rightid=`/`leftid=`), and make sure the certificate contains it."
        )
    if kind == "psk":
        return (
            "The pre-shared keys differ between the peers, or the identities select a different secret on "
            f"the {rejecting}: compare the `secrets` section of swanctl.conf (or ipsec.secrets) for the "
            "identities shown, and the `id =` settings on both sides."
        )
    if kind == "eap":
        return (
            "The EAP credentials were rejected: check the user name and password (or SIM/AKA data) on the "
            "client and in the EAP backend (RADIUS, strongSwan `secrets { eap-... }`), and that both sides "
            "use the same EAP method (`auth = eap-mschapv2`)."
        )
    if kind == "signature":
        return (
            f"The {rejecting} did not accept the {rejected}'s certificate or signature: check that the "
            f"{rejecting} trusts the issuing CA (x509ca/, `cacerts`), that the certificate is valid at this "
            "time and contains the identity sent (see the certificate findings), and that the signature "
            "scheme is accepted (RFC 7427 SIGNATURE_HASH_ALGORITHMS)."
        )
    return (
        "Check that both sides use the same credentials for the identities shown: pre-shared keys, "
        "certificates trusted by the peer's CA configuration, and identities (`id =` in swanctl.conf) "
        "that match the peer's expectation. Supply the IKE keys to see which method was used."
    )
