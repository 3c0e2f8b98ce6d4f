"""Security posture and rekey behaviour: weak algorithms (RFC 8247, RFC 8221), IKEv1 Aggressive
Mode with pre-shared keys (RFC 2409 §5.4: HASH_R can be attacked offline), CHILD SA rekeys
without a key exchange (no PFS) and simultaneous rekeys (RFC 7296 §2.8.1, §2.25).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...protocol.suites import ENCR, KE, PRF, Algo, Suite, strongswan_proposal
from ...protocol.weak import WEAK_ENCR, WEAK_INTEG, WEAK_KE, WEAK_PRF, weak_reasons  # noqa: F401 (re-exported)
from ...reconstruction.model import ExchangeRecord, Finding, IkeSaRecord, MessageRecord, Severity
from ...wire import ikev1 as v1
from ...wire import ikev2 as v2
from ...wire.registry import EncrId, ExchangeType, KeGroup, PrfId
from ..base import Check, CheckContext
from ..common import first_of, frames_of, hidden, message_suites, payloads_of, role, where

# The weak-algorithm rules live in protocol/weak.py, shared with probe scan.
_PSK_V1 = {"PRE_SHARED_KEY", "XAUTH_INIT_PRESHARED", "XAUTH_RESP_PRESHARED"}
COLLISION_WINDOW = 10.0  # seconds: requests this close with neither answered count as simultaneous


@dataclass
class _Use:
    what: str  # "IKE SA" / "CHILD SA (ESP)"
    suite: Suite
    frame: int
    chosen: bool


def _chosen_and_offered(sa: IkeSaRecord) -> list[_Use]:
    uses: list[_Use] = []
    for ex in sa.exchanges:
        msgs = ex.all_messages()
        if not msgs:
            continue
        offer_msg = msgs[0]
        answer = (
            ex.response
            if sa.version == 2
            else next((m for m in msgs[1:] if m.from_initiator != offer_msg.from_initiator), None)
        )
        failed = answer is not None and any(n in ("NO_PROPOSAL_CHOSEN",) for n in answer.notifies)
        chosen = message_suites(answer) if answer is not None and not failed else []
        for s in chosen:
            uses.append(_Use(_what(s), s, answer.first_frame, True))  # type: ignore[union-attr]
        for s in message_suites(offer_msg):
            uses.append(_Use(_what(s), s, offer_msg.first_frame, False))
    return uses


def _what(s: Suite) -> str:
    return "IKE SA" if s.protocol == "IKE" else f"CHILD SA ({s.protocol})"


class PostureCheck(Check):
    name = "posture"
    finding_ids = ("weak-crypto", "ikev1-aggressive-psk", "no-pfs", "rekey-collision")
    severity_overrides = {
        "weak-crypto": "info when weak algorithms were only offered, never negotiated: the title says "
        "'offered' and the explanation that a downgrade needs the peer to accept them",
    }

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        for sa in ctx.report.ike_sas:
            f = self._weak(sa)
            if f is not None:
                yield f
            f = self._aggressive(sa)
            if f is not None:
                yield f
            f = self._no_pfs(sa)
            if f is not None:
                yield f
            yield from self._collisions(sa)

    # -- weak algorithms -----------------------------------------------------------------
    def _weak(self, sa: IkeSaRecord) -> Finding | None:
        uses = _chosen_and_offered(sa)
        chosen = [(u, weak_reasons(u.suite)) for u in uses if u.chosen]
        chosen = [(u, r) for u, r in chosen if r]
        chosen_algos = {a for u in uses if u.chosen for a in u.suite.algos}
        offered = []
        for u in uses:
            if u.chosen:
                continue
            reasons = weak_reasons(
                Suite(u.suite.protocol, tuple(a for a in u.suite.algos if a not in chosen_algos))
            )
            if reasons:
                offered.append((u, reasons))
        if not chosen and not offered:
            return None
        ev = [
            f"{u.what} negotiated {u.suite.iana_text()} (frame {u.frame}): {'; '.join(r)}" for u, r in chosen
        ]
        seen: set[str] = set()
        for u, r in offered:
            line = f"{u.what} offered {u.suite.iana_text()} (frame {u.frame}), weak parts: {'; '.join(r)}"
            if line not in seen:
                seen.add(line)
                ev.append(line)
        if chosen:
            names = sorted({x.split(":")[0] for _, r in chosen for x in r})
            expl = f"The negotiated algorithms include ones considered weak today: {', '.join(names)}."
            sev = None
        else:
            names = sorted({x.split(":")[0] for _, r in offered for x in r})
            expl = (
                f"Weak algorithms are offered but were not negotiated: {', '.join(names)}. A downgrade is "
                "possible only if the peer accepts them; remove them from the proposals."
            )
            sev = Severity.INFO
        return self.finding(
            "weak-crypto",
            severity=sev,
            title=None if chosen else "Weak cryptography offered",
            frames=[u.frame for u, _ in chosen or offered],
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            remediation=_weak_fix([u.suite for u, _ in chosen or offered]),
            data={
                "negotiated": [{"what": u.what, "suite": u.suite.iana_text(), "weak": r} for u, r in chosen],
                "offered_only": [
                    {"what": u.what, "suite": u.suite.iana_text(), "weak": r} for u, r in offered
                ],
            },
        )

    # -- IKEv1 Aggressive Mode + PSK ---------------------------------------------------------
    def _aggressive(self, sa: IkeSaRecord) -> Finding | None:
        if sa.version != 1:
            return None
        ex = next((e for e in sa.exchanges if e.type == "AGGRESSIVE_MODE" and e.message_id == 0), None)
        if ex is None or not ex.messages:
            return None
        auth = (sa.proposal or {}).get("auth")
        if auth is None:
            auth = next((o.get("auth") for o in sa.offered if o.get("auth")), None)
        if auth not in _PSK_V1:
            return None
        answer = next((m for m in ex.messages if not m.from_initiator and "HASH" in m.payloads), None)
        if answer is None:
            return None  # no HASH_R on the wire: nothing to attack offline
        first = ex.messages[0]
        ev = [
            f"Aggressive Mode with {auth}: the responder's HASH_R travels in clear in frame {answer.first_frame}"
        ]
        ident = first_of(first, v1.V1IdPayload)
        if ident is not None:
            ev.append(
                f"the initiator's identity is sent unencrypted in frame {first.first_frame}: {ident.display()}"
            )
        return self.finding(
            "ikev1-aggressive-psk",
            frames=frames_of(first, answer),
            evidence=ev,
            ike_sa=sa.key,
            explanation=(
                "IKEv1 Aggressive Mode with a pre-shared key sends the responder's HASH_R, computed from the PSK, "
                "before any encryption: anyone with this capture can run an offline dictionary attack on the "
                "pre-shared key (e.g. ike-scan's psk-crack), and the identities are visible too."
            ),
            remediation=(
                "Move to IKEv2 (strongSwan `version = 2`, libreswan `ikev2=insist`), or at least Main Mode "
                "(strongSwan `aggressive = no`, libreswan `aggressive=no`) with certificates; if a PSK must stay, "
                "make it long and random and rotate it, since this capture exposes it to offline guessing."
            ),
            data={"auth": auth},
        )

    # -- no PFS ----------------------------------------------------------------------------
    def _no_pfs(self, sa: IkeSaRecord) -> Finding | None:
        hits: list[tuple[ExchangeRecord, str]] = []
        if sa.version == 2:
            for ex in sa.exchanges:
                if ex.exchange_type != ExchangeType.CREATE_CHILD_SA or ex.request is None:
                    continue
                req, resp = ex.request, ex.response
                if not req.decrypted or resp is None or not resp.decrypted or "SA" not in resp.payloads:
                    continue
                rekey = [n for n in payloads_of(req, v2.NotifyPayload) if n.name == "REKEY_SA"]
                if not rekey or any(s.protocol == "IKE" for s in message_suites(req)):
                    continue
                if first_of(req, v2.KePayload) is None:
                    hits.append((ex, f"0x{rekey[0].spi.hex()}"))
        else:
            qms = [e for e in sa.exchanges if e.type == "QUICK_MODE" and e.messages]
            for ex in qms[1:]:  # later Quick Modes replace earlier IPsec SAs: they are the rekeys
                m = ex.messages[0]
                if m.decrypted and first_of(m, v1.V1KePayload) is None and message_suites(m):
                    hits.append((ex, "Quick Mode"))
        if not hits:
            return None
        ev = [
            f"{where(ex)} (frame {ex.request.first_frame if ex.request else 0}) rekeyed {what} without a KE payload"
            for ex, what in hits
        ]
        return self.finding(
            "no-pfs",
            frames=[f for ex, _ in hits for f in frames_of(ex.request, ex.response)],
            evidence=ev,
            ike_sa=sa.key,
            explanation=(
                f"{len(hits)} CHILD SA rekey(s) without a key exchange: the new keys derive from the IKE SA's "
                "SK_d, so a compromise of the IKE SA keys exposes the traffic of every generation (no perfect "
                "forward secrecy)."
            ),
            data={"rekeys": len(hits)},
        )

    # -- simultaneous rekeys -------------------------------------------------------------------
    def _collisions(self, sa: IkeSaRecord) -> Iterable[Finding]:
        if sa.version != 2:
            return
        reqs = [
            e
            for e in sa.exchanges
            if e.exchange_type == ExchangeType.CREATE_CHILD_SA and e.request is not None
        ]
        done: set[int] = set()
        for i, a in enumerate(reqs):
            for b in reqs[i + 1 :]:
                if id(b) in done or id(a) in done or a.initiated_by_initiator == b.initiated_by_initiator:
                    continue
                if not _overlap(a, b):
                    continue
                kind = _same_target(sa, a, b)
                if kind is None:
                    continue
                done |= {id(a), id(b)}
                yield self._collision(sa, a, b, kind)

    def _collision(self, sa: IkeSaRecord, a: ExchangeRecord, b: ExchangeRecord, kind: str) -> Finding:
        probable = kind == "probable"
        ev = []
        for e in (a, b):
            req = e.request
            assert req is not None
            ev.append(
                f"the {role(req)} ({req.src}) sent {where(e)} at frame {req.first_frame}"
                + (f", answered in frame {e.response.first_frame}" if e.response else ", unanswered")
            )
        ev.append("each request was sent before the other one's response arrived")
        what = {
            "ike": "the IKE SA",
            "child": "the same CHILD SA",
            "probable": "an SA (the messages are encrypted)",
        }
        expl = (
            f"Both peers started rekeying {what[kind]} at the same time (RFC 7296 §2.8.1): the collision is "
            "resolved by deleting the SA created with the lowest nonce, which costs extra exchanges and, with "
            "some implementations, a short outage or duplicate SAs."
        )
        if probable:
            expl = (
                "Both peers sent CREATE_CHILD_SA requests at the same time, probably rekeys of the same SA "
                "(supply the IKE keys to confirm). " + expl.split(": ", 1)[1].capitalize()
            )
        return self.finding(
            "rekey-collision",
            frames=frames_of(a.request, a.response, b.request, b.response),
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            data={"target": kind},
        )


def _overlap(a: ExchangeRecord, b: ExchangeRecord) -> bool:
    """Each request went out before the other's response (a missing response counts as never)."""
    ra, rb = a.request, b.request
    assert ra is not None and rb is not None
    if abs(ra.ts - rb.ts) > COLLISION_WINDOW:
        return False
    end_a = a.response.ts if a.response is not None else float("inf")
    end_b = b.response.ts if b.response is not None else float("inf")
    return rb.ts < end_a and ra.ts < end_b


def _same_target(sa: IkeSaRecord, a: ExchangeRecord, b: ExchangeRecord) -> str | None:
    ma, mb = a.request, b.request
    if hidden(ma) or hidden(mb):
        return "probable"
    ike_a = any(s.protocol == "IKE" for s in message_suites(ma))
    ike_b = any(s.protocol == "IKE" for s in message_suites(mb))
    if ike_a and ike_b:
        return "ike"
    spi_a, spi_b = _rekey_spi(ma), _rekey_spi(mb)
    if spi_a is None or spi_b is None:
        return None
    if spi_a == spi_b:
        return "child"
    for c in sa.child_sas:
        pair = {c.spi_i, c.spi_r}
        if spi_a in pair and spi_b in pair:
            return "child"
    return None


def _rekey_spi(m: MessageRecord | None) -> int | None:
    for n in payloads_of(m, v2.NotifyPayload):
        if n.name == "REKEY_SA" and len(n.spi) == 4:
            return int.from_bytes(n.spi, "big")
    return None


_MODERN_IKE = Suite(
    "IKE",
    (Algo(ENCR, EncrId.ENCR_AES_GCM_16, 256), Algo(PRF, PrfId.PRF_HMAC_SHA2_256), Algo(KE, KeGroup.ECP_256)),
)
_MODERN_ESP = Suite("ESP", (Algo(ENCR, EncrId.ENCR_AES_GCM_16, 256),))


def _weak_fix(suites: list[Suite]) -> str:
    child = any(s.protocol != "IKE" for s in suites)
    ike = any(s.protocol == "IKE" for s in suites)
    parts = []
    if ike:
        parts.append(
            f"`proposals = {strongswan_proposal(_MODERN_IKE)}` (libreswan `ike=aes_gcm256-sha2_256;dh19`)"
        )
    if child:
        pfs = any(s.has_ke for s in suites if s.protocol != "IKE")
        esp = strongswan_proposal(_MODERN_ESP) + ("-ecp256" if pfs else "")
        parts.append(f"`esp_proposals = {esp}` (libreswan `esp=aes_gcm256{';dh19' if pfs else ''}`)")
    return (
        "Use AES-GCM (or AES-CBC with SHA-2), SHA-2 PRFs and ECP-256/384, Curve25519 or MODP-3072+ on both peers, "
        "e.g. " + " and ".join(parts) + " (RFC 8247, RFC 8221)."
    )
