"""Error notifies: NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, AUTHENTICATION_FAILED, TS_UNACCEPTABLE
get their own findings; every other error notify becomes ``error-notify``.

Notifies inside SK payloads are only visible after decryption (then they are in
``MessageRecord.notifies`` too), so the same check serves both cases.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...wire.registry import ExchangeType, KeGroup, name_of
from ..knowledge import NOTIFY_HELP
from ..model import ExchangeRecord, Finding, IkeSaRecord, MessageRecord, Severity
from .base import Check, CheckContext

_SPECIFIC = {
    "NO_PROPOSAL_CHOSEN",
    "INVALID_KE_PAYLOAD",
    "AUTHENTICATION_FAILED",
    "TS_UNACCEPTABLE",
    "SINGLE_PAIR_REQUIRED",
}


def _peer(m: MessageRecord) -> str:
    return f"{m.src}:{m.sport}"


def _who(sa: IkeSaRecord, m: MessageRecord) -> str:
    role = "initiator" if m.from_initiator else "responder"
    return f"the {role} ({_peer(m)})"


def proposal_text(p: dict[str, Any]) -> str:
    parts = []
    for k in ("encr", "integ", "prf", "ke", "esn"):
        v = p.get(k)
        if v is None or (k == "integ" and v == "NONE"):
            continue
        if k == "encr" and p.get("encr_key_bits"):
            v = f"{v}_{p['encr_key_bits']}"
        parts.append(str(v))
        for alt in p.get(f"{k}_alternatives", []):
            parts[-1] += f"|{alt}"
    for k in ("hash", "auth"):
        if p.get(k):
            parts.append(str(p[k]))
    return "/".join(parts) or "(empty proposal)"


def _notify_objects(m: MessageRecord, name: str) -> list[Any]:
    return [p for p in m.all_payloads() if getattr(p, "name", None) == name and hasattr(p, "notify_type")]


class ErrorNotifyCheck(Check):
    name = "notify"
    finding_ids = (
        "ike-no-proposal-chosen",
        "child-no-proposal-chosen",
        "ke-group-mismatch",
        "auth-failed",
        "ts-unacceptable",
        "error-notify",
    )

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        sas = ctx.report.ike_sas
        for sa in sas:
            for ex in sa.exchanges:
                for m in ex.all_messages():
                    for n in dict.fromkeys(m.notifies):
                        f = self._one(sa, ex, m, n, sas)
                        if f is not None:
                            yield f

    def _one(
        self, sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord, n: str, sas: list[IkeSaRecord]
    ) -> Finding | None:
        is_error = n in sa.error_notifies
        if not is_error:
            return None
        frames = list(m.frames)
        if ex.request is not None and ex.request is not m:
            frames += ex.request.frames
        where = f"{ex.type} (message id {ex.message_id})"
        sender = _who(sa, m)
        ev = [f"{sender} sent {n} in {where}, frame {m.first_frame}"]
        if n == "NO_PROPOSAL_CHOSEN":
            return self._no_proposal(sa, ex, m, frames, ev)
        if n == "INVALID_KE_PAYLOAD":
            return self._invalid_ke(sa, ex, m, frames, ev, sas)
        if n == "AUTHENTICATION_FAILED":
            return self._auth_failed(sa, ex, m, frames, ev)
        if n in ("TS_UNACCEPTABLE", "SINGLE_PAIR_REQUIRED"):
            return self.finding(
                "ts-unacceptable",
                frames=frames,
                evidence=ev,
                ike_sa=sa.key,
                explanation=f"{sender} rejected the traffic selectors with {n}. "
                + "The IKE SA itself may stay up, but no CHILD SA was created.",
            )
        info = NOTIFY_HELP.get(n)
        expl = f"{sender} sent the error notify {n} in {where}."
        if info is not None:
            expl += f" {info.meaning}"
        return self.finding(
            "error-notify",
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            title=f"Error notify {n}",
            explanation=expl,
            remediation=info.fix if info else "Check the peer's logs for the reason.",
            data={"notify": n},
        )

    def _no_proposal(
        self, sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord, frames: list[int], ev: list[str]
    ) -> Finding:
        phase1 = ex.exchange_type == ExchangeType.IKE_SA_INIT or (sa.version == 1 and ex.message_id == 0)
        if phase1:
            offered = sa.offered
            for i, p in enumerate(offered, 1):
                ev.append(f"offered proposal {i}: {proposal_text(p)}")
            if not offered:
                ev.append("the offered proposals are not in the capture")
            return self.finding(
                "ike-no-proposal-chosen",
                frames=frames,
                evidence=ev,
                ike_sa=sa.key,
                explanation=(
                    f"{_who(sa, m)} accepted none of the {len(offered) or 'offered'} IKE SA "
                    f"proposal(s) and answered NO_PROPOSAL_CHOSEN, so no IKE SA was created."
                ),
                data={"offered": offered},
            )
        ev.append(
            "the CHILD SA proposals are inside the encrypted request"
            if not (ex.request and ex.request.decrypted)
            else "see the CHILD SA proposals of the request"
        )
        return self.finding(
            "child-no-proposal-chosen",
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=f"{_who(sa, m)} rejected every CHILD SA proposal in {ex.type}.",
        )

    def _invalid_ke(
        self,
        sa: IkeSaRecord,
        ex: ExchangeRecord,
        m: MessageRecord,
        frames: list[int],
        ev: list[str],
        sas: list[IkeSaRecord],
    ) -> Finding:
        wanted = None
        for p in _notify_objects(m, "INVALID_KE_PAYLOAD"):
            if len(p.data) >= 2:
                wanted = int.from_bytes(p.data[:2], "big")
        guessed = None
        if ex.request is not None and ex.request.parsed is not None:
            for p in ex.request.parsed.payloads:
                if type(p).__name__ == "KePayload":
                    guessed = p.group
        wanted_s = name_of(KeGroup, wanted) if wanted is not None else "unknown"
        guessed_s = name_of(KeGroup, guessed) if guessed is not None else "unknown"
        ev.append(f"initiator sent KE for {guessed_s}; responder asks for {wanted_s}")
        resolved_by = self._retry_outcome(sa, ex, wanted, sas)
        if resolved_by is not None:
            ev.append(f"the retry with {wanted_s} succeeded (frame {resolved_by})")
            return self.finding(
                "ke-group-mismatch",
                frames=frames,
                evidence=ev,
                ike_sa=sa.key,
                explanation=(
                    f"The initiator guessed {guessed_s} for its key exchange but the responder wants "
                    f"{wanted_s}. The retry succeeded, at the cost of an extra round trip."
                ),
                remediation=(
                    f"Offer {wanted_s} first in the initiator's IKE proposal so the first guess is right "
                    f"(strongSwan: put the group first in `proposals`, e.g. `aes256gcm16-prfsha256-"
                    f"{_ss_group(wanted)}`)."
                ),
                data={"requested": wanted_s, "guessed": guessed_s, "resolved": True},
            )
        return self.finding(
            "ke-group-mismatch",
            severity=Severity.ERROR,
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=(
                f"The responder wants {wanted_s} but the initiator guessed {guessed_s}, and no "
                f"successful retry with {wanted_s} appears in the capture."
            ),
            remediation=(
                f"Add {wanted_s} to the initiator's IKE proposals (strongSwan `proposals`, libreswan "
                f"`ike=`), or allow {guessed_s} on the responder."
            ),
            data={"requested": wanted_s, "guessed": guessed_s, "resolved": False},
        )

    @staticmethod
    def _retry_outcome(
        sa: IkeSaRecord, ex: ExchangeRecord, wanted: int | None, sas: list[IkeSaRecord]
    ) -> int | None:
        t0 = ex.first_ts
        cands = [sa] + [
            o
            for o in sas
            if o is not sa
            and o.version == 2
            and o.initiator[0] == sa.initiator[0]
            and o.responder[0] == sa.responder[0]
            and 0 <= o.first_ts - t0 < 60
        ]
        for o in cands:
            for e in o.exchanges:
                if e is ex or e.exchange_type != ExchangeType.IKE_SA_INIT or e.first_ts < t0:
                    continue
                if e.response is not None and "SA" in e.response.payloads and "KE" in e.response.payloads:
                    ke = next(
                        (p for p in e.response.parsed.payloads if type(p).__name__ == "KePayload"), None
                    )
                    if wanted is None or ke is None or ke.group == wanted:
                        return e.response.first_frame
        return None

    def _auth_failed(
        self, sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord, frames: list[int], ev: list[str]
    ) -> Finding:
        rejected = "initiator" if not m.from_initiator else "responder"
        rejecting = "responder" if not m.from_initiator else "initiator"
        method = ""
        ids = []
        for e in sa.exchanges:
            if e.exchange_type != ExchangeType.IKE_AUTH:
                continue
            for mm in e.all_messages():
                for p in mm.inner:
                    tn = type(p).__name__
                    if tn == "IdPayload":
                        ids.append(f"{'IDi' if mm.from_initiator else 'IDr'} {p.display()}")
                    elif tn == "AuthPayload" and mm.from_initiator == (rejected == "initiator"):
                        from ...wire.registry import AuthMethod

                        method = name_of(AuthMethod, p.method)
        if ids:
            ev.append("identities: " + ", ".join(dict.fromkeys(ids)))
        if method:
            ev.append(f"the {rejected} authenticated with {method}")
        psk = method == "SHARED_KEY_MIC"
        expl = (
            f"The {rejecting} rejected the {rejected}'s authentication "
            f"({'pre-shared key' if psk else method or 'method not visible without keys'})."
        )
        rem = (
            "The pre-shared keys differ between the peers, or the identities do not select the secret the "
            "peer expects: compare the `secrets` (strongSwan) / `ipsec.secrets` entries for the identities "
            "shown."
            if psk
            else CATALOGUE_AUTH_FIX
        )
        return self.finding(
            "auth-failed",
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            remediation=rem,
            data={"rejected": rejected, "method": method},
        )


CATALOGUE_AUTH_FIX = (
    "Check that both sides use the same credentials for the identities shown: PSK, certificates trusted by "
    "the peer's CA configuration, and identities (`id =` in swanctl.conf) that match the peer's expectation."
)


def _ss_group(g: int | None) -> str:
    table = {
        14: "modp2048",
        15: "modp3072",
        16: "modp4096",
        19: "ecp256",
        20: "ecp384",
        21: "ecp521",
        31: "curve25519",
        32: "curve448",
        2: "modp1024",
        5: "modp1536",
    }
    return table.get(g or 0, "ecp256")
