"""Proposal mismatches: NO_PROPOSAL_CHOSEN (IKE SA and CHILD SA, IKEv2 and IKEv1) and
INVALID_KE_PAYLOAD.

Besides the offered proposals, the capture often shows what the rejecting peer does accept:
the proposal it chose in another exchange (another IKE SA, a CHILD SA, a rekey) or the
proposals it offers itself when it initiates. Comparing the offer with those
(:func:`suites.compare`) names the transform types that differ and yields configuration lines
that would match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...protocol.notify_data import parse_invalid_ke
from ...protocol.suites import (
    ESN,
    KE,
    KIND_NAMES,
    Algo,
    Comparison,
    Suite,
    compare,
    config_lines,
    difference_text,
    libreswan_keyword,
    libreswan_proposal,
    strongswan_keyword,
    strongswan_proposal,
)
from ...reconstruction.model import ExchangeRecord, Finding, IkeSaRecord, MessageRecord, Report, Severity
from ...wire import ikev2 as v2
from ...wire.jsontypes import Json
from ...wire.registry import ExchangeType, KeGroup, V1ProtocolId, name_of
from ..base import Check, CheckContext
from ..common import (
    first_of,
    frames_of,
    hidden,
    message_suites,
    notifies_named,
    role,
    same_peers,
    sentence,
    where,
    who,
)

_FAILURES = {"NO_PROPOSAL_CHOSEN", "INVALID_KE_PAYLOAD", "TS_UNACCEPTABLE", "AUTHENTICATION_FAILED"}
MAX_KNOWN = 6
RETRY_WINDOW = 60.0  # seconds within which a new IKE_SA_INIT counts as the retry


@dataclass(frozen=True)
class Known:
    """A suite some host is known to accept, and where the capture shows it."""

    suite: Suite
    frame: int
    how: str
    exchange: int = 0  # id() of the ExchangeRecord it comes from


def _is_child(s: Suite) -> bool:
    return s.protocol in ("ESP", "AH")


def peer_knowledge(report: Report) -> dict[str, list[Known]]:
    """host address -> suites it accepted as responder or offered as initiator (deduplicated,
    at most a few exchanges per suite so that a capture of many failures stays linear)."""
    known: dict[str, list[Known]] = {}
    seen: dict[tuple[str, str], int] = {}
    for sa in report.ike_sas:
        for ex in sa.exchanges:
            msgs = ex.all_messages()
            for m in msgs:
                suites = message_suites(m)
                if not suites:
                    continue
                failed = any(n in _FAILURES for mm in msgs for n in mm.notifies)
                if m.is_response or (sa.version == 1 and m is not msgs[0]):
                    if failed:
                        continue
                    how = f"accepted from {msgs[0].src} in {ex.type} ({sa.key})"
                else:
                    how = f"offered by it as {'initiator' if m.from_initiator else 'responder'} in {ex.type}"
                for s in suites:
                    key = (m.src, s.iana_text())
                    if seen.get(key, 0) >= 2:  # two sources suffice: one may be the rejected exchange
                        continue
                    seen[key] = seen.get(key, 0) + 1
                    known.setdefault(m.src, []).append(Known(s, m.first_frame, how, id(ex)))
    return known


def _dedupe(items: Iterable[Known]) -> list[Known]:
    seen: dict[tuple[str, str], Known] = {}
    for k in items:
        seen.setdefault((k.suite.protocol, k.suite.iana_text()), k)
    return list(seen.values())


def suite_line(s: Suite) -> str:
    return f"{s.iana_text()} = strongSwan `{strongswan_proposal(s)}`, libreswan `{libreswan_proposal(s)}`"


class ProposalCheck(Check):
    name = "proposals"
    finding_ids = ("ike-no-proposal-chosen", "child-no-proposal-chosen", "ke-group-mismatch")
    severity_overrides = {
        "ke-group-mismatch": "error when no retry with the wanted group succeeded: the explanation says no "
        "successful retry appears, so the SA never came up",
        "ike-no-proposal-chosen": "warning when an IKEv1 phase 1 completed in spite of the notify: the "
        "explanation says the notify did not end the negotiation and the IKE SA was created",
    }

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        report = ctx.report
        knowledge: dict[str, list[Known]] | None = None
        by_peers: dict[frozenset[str], list[IkeSaRecord]] | None = None
        for sa in report.ike_sas:
            for ex in sa.exchanges:
                for m in ex.all_messages():
                    if "NO_PROPOSAL_CHOSEN" in m.notifies:
                        if knowledge is None:
                            knowledge = peer_knowledge(report)
                        yield self._no_proposal(knowledge, sa, ex, m)
                    if "INVALID_KE_PAYLOAD" in m.notifies:
                        if by_peers is None:
                            by_peers = {}
                            for o in report.ike_sas:
                                by_peers.setdefault(_peer_key(o), []).append(o)
                        yield self._invalid_ke(by_peers.get(_peer_key(sa), []), sa, ex, m)

    # -- NO_PROPOSAL_CHOSEN --------------------------------------------------------------
    def _no_proposal(
        self, knowledge: dict[str, list[Known]], sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord
    ) -> Finding:
        req_ex, req = _offer_for(sa, ex, m)
        offered = message_suites(req)
        phase1 = _is_phase1(sa, ex, m, offered)
        offered = [s for s in offered if _is_child(s) != phase1]
        if sa.version == 1 and phase1 and sa.state in ("established", "deleted"):
            # Phase 1 reached its last message (or Quick Mode ran on it): the notify, unprotected
            # this early (RFC 2409 §5.7) and so unauthenticated, did not end the negotiation.
            return self._no_proposal_ignored(sa, m, req, offered)
        ev = [f"{who(m)} sent NO_PROPOSAL_CHOSEN to {_addressee(m)} in {where(ex)}, frame {m.first_frame}"]
        frames = frames_of(m, req)
        rejecter = m.src
        known = [
            k
            for k in _dedupe(k for k in knowledge.get(rejecter, []) if k.exchange != id(req_ex))
            if _is_child(k.suite) != phase1 and (not phase1 or k.suite.version == sa.version)
        ][:MAX_KNOWN]
        for i, s in enumerate(offered, 1):
            ev.append(f"offered #{s.number or i}: {suite_line(s)}")
        if not offered:
            ev.append(
                "the offered proposals are inside the encrypted request: supply keys to see them"
                if hidden(req)
                else "the offered proposals are not in the capture"
            )
        for k in known:
            ev.append(f"{rejecter} accepts {k.suite.iana_text()} ({k.how}, frame {k.frame})")
        best = _closest(offered, [k.suite for k in known])
        refused = [] if phase1 else _refused_options(ex, offered, [k.suite for k in known])
        if best is not None:
            if best.matches:
                ev.append(
                    f"offered {best.offered.iana_text()} matches what {rejecter} accepted elsewhere: "
                    + (
                        "the algorithms are not what it refused"
                        if refused
                        else "it rejected this request under a different connection (identities, addresses)"
                    )
                )
            else:
                ev.append(f"closest match differs in {difference_text(best)}")
                common = "; ".join(
                    f"{KIND_NAMES.get(t, str(t))} {', '.join(a.label for a in algos)}"
                    for t, algos in best.common.items()
                    if any(a.id for a in algos)
                )
                if common:
                    ev.append(f"in common: {common}")
        hints = _child_hints(sa, ex, offered, [k.suite for k in known]) if not phase1 else []
        ev += hints
        fid = "ike-no-proposal-chosen" if phase1 else "child-no-proposal-chosen"
        kind = "IKE SA" if phase1 else "CHILD SA"
        proposer = req.src if req is not None else "the initiator"
        n_offered = f"{len(offered) or ''}{' ' if offered else ''}{kind} proposal(s)"
        if req is not None and m.src == req.src:
            # IKEv1 notifies travel on their own: the side that made the offer sent this one, so it
            # refused the answer it got (the choice of the peer), not its own offer.
            expl = sentence(
                f"{who(m)} made the offer ({n_offered} in {req_ex.type if req_ex else ex.type}) and itself "
                f"sent NO_PROPOSAL_CHOSEN to {_addressee(m)}: it refused the peer's answer, so no {kind} "
                "was created."
            )
        else:
            expl = sentence(
                f"{who(m)} accepted none of the {n_offered} {proposer} offered in "
                f"{req_ex.type if req_ex else ex.type} and answered NO_PROPOSAL_CHOSEN, so no {kind} was created."
            )
        if not phase1 and sa.state in ("established", "deleted"):
            expl += " The IKE SA itself was set up."
        remediation, config = _remediation(offered, [k.suite for k in known], rejecter, proposer, not phase1)
        if refused:  # the algorithms were accepted before: only the option needs changing
            remediation = next(h for h in hints if h.startswith("Mode"))
        elif hints:
            remediation += " " + " ".join(h for h in hints if h.startswith(("PFS", "ESN", "Mode")))
        data: Json = {
            "offered": [_suite_data(s) for s in offered],
            "acceptable": [_suite_data(k.suite) | {"frame": k.frame, "source": k.how} for k in known],
            "config": config,
        }
        if best is not None:
            data["differences"] = difference_text(best)
            data["common"] = {
                KIND_NAMES.get(t, str(t)): [a.label for a in algos]
                for t, algos in best.common.items()
                if any(a.id for a in algos)
            }
        what = _option_words(refused)
        if refused:
            data["refused_options"] = refused
        return self.finding(
            fid,
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            remediation=remediation,
            title=f"CHILD SA refused: {what} (the algorithms match)" if refused else None,
            cause=(
                f"The responder does not provide {what} for this CHILD SA (not configured, or its IPsec "
                "backend cannot install it), although it accepts these algorithms."
                if refused
                else None
            ),
            data=data,
        )

    def _no_proposal_ignored(
        self, sa: IkeSaRecord, m: MessageRecord, req: MessageRecord | None, offered: list[Suite]
    ) -> Finding:
        """An IKEv1 phase-1 NO_PROPOSAL_CHOSEN after which phase 1 still completed."""
        after = _frames_after(sa, m.ts)
        sender = who(m)
        answer = max(
            (mm for e in sa.exchanges if e.message_id == 0 for mm in e.messages if mm.src != m.src and mm.ts <= m.ts),
            key=lambda mm: mm.ts,
            default=None,
        )
        if req is not None and m.src == req.src:
            got = f"the answer it got (frame {answer.first_frame})" if answer is not None else "an answer"
            whose = f"{sender} made the offer itself (frame {req.first_frame}), so it refused {got}, not its own offer"
        else:
            whose = f"{sender} refused the offer of {_addressee(m)}"
        went_on = "; ".join(f"{kind} frames {_frame_span(fs)}" for kind, fs in after.items())
        ev = [
            f"{sender} sent NO_PROPOSAL_CHOSEN to {_addressee(m)} in an "
            f"{'encrypted' if m.encrypted else 'unprotected'} INFORMATIONAL, frame {m.first_frame}",
            f"after it: {went_on}" if went_on else "phase 1 had completed before it",
            f"the IKE SA is {sa.state}" + (f" ({sa.state_evidence})" if sa.state_evidence else ""),
        ]
        ev += [f"offered #{s.number or i}: {suite_line(s)}" for i, s in enumerate(offered, 1)]
        expl = sentence(
            f"{whose}; {'the negotiation went on afterwards' if went_on else 'it came after phase 1'} "
            "and phase 1 completed, so the notify did not end the negotiation and the IKE SA was created."
        )
        return self.finding(
            "ike-no-proposal-chosen",
            frames=frames_of(m, req, answer),
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            severity=Severity.WARNING,
            title="NO_PROPOSAL_CHOSEN sent, but the IKE SA was created",
            cause="The sender rejected one message of the negotiation (or sent the notify in error), and "
            "the peer went on"
            + (
                ": a notify sent before phase 1 completes is unprotected (RFC 2409 §5.7), so nothing obliges "
                "the peer to act on it."
                if not m.encrypted
                else "."
            ),
            remediation="Nothing to fix for this IKE SA: it came up. If such notifies recur, read the "
            f"log of {m.src} at that time for the message it refused (strongSwan: 'no acceptable "
            "proposal found', 'received proposals unacceptable').",
            data={"offered": [_suite_data(s) for s in offered], "ignored": True, "sent_by": role(m)},
        )

    # -- INVALID_KE_PAYLOAD --------------------------------------------------------------
    def _invalid_ke(
        self, neighbours: list[IkeSaRecord], sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord
    ) -> Finding:
        wanted = None
        for n in notifies_named(m, "INVALID_KE_PAYLOAD"):
            group = parse_invalid_ke(n.data)
            if group is not None:
                wanted = group
        ke = first_of(ex.request, v2.KePayload)
        guessed = ke.group if ke is not None else None
        wanted_s = name_of(KeGroup, wanted) if wanted is not None else "an unnamed group"
        guessed_s = name_of(KeGroup, guessed) if guessed is not None else "an unknown group"
        frames = frames_of(m, ex.request)
        ev = [
            f"{who(m)} sent INVALID_KE_PAYLOAD in {where(ex)}, frame {m.first_frame}",
            f"{ex.request.src if ex.request else 'the initiator'} sent a KE payload for {guessed_s}; "
            f"{m.src} asks for {wanted_s}",
        ]
        offered = [s for s in message_suites(ex.request) if s.of(KE)]
        groups = list(dict.fromkeys(a.id for s in offered for a in s.of(KE)))
        if groups:
            ev.append("groups offered: " + ", ".join(name_of(KeGroup, g) for g in groups))
        if wanted is not None and groups and wanted not in groups:
            ev.append(
                f"{wanted_s} is not among the offered groups: the responder asks for a group never offered"
            )
        child = ex.exchange_type == ExchangeType.CREATE_CHILD_SA and not any(
            s.protocol == "IKE" for s in offered
        )
        retry = _retry_outcome(neighbours, sa, ex, wanted)
        kw = strongswan_keyword(_ke_algo(wanted)) if wanted is not None else None
        data = {"requested": wanted_s, "guessed": guessed_s, "resolved": retry is not None}
        setting = "esp_proposals" if child else "proposals"
        if retry is not None:
            ev.append(f"the retry with {wanted_s} succeeded (frame {retry})")
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
                    f"Offer {wanted_s} first in the initiator's {setting} so the first guess is right "
                    f"(strongSwan: put `{kw or wanted_s}` before the other groups in `{setting}`; "
                    f"libreswan: list it first in `{'esp' if child else 'ike'}=`)."
                ),
                data=data,
            )
        expl = (
            f"The responder wants {wanted_s} but the initiator guessed {guessed_s}, and no successful "
            f"retry with {wanted_s} appears in the capture."
        )
        if child:
            expl += (
                " This is a CHILD SA key exchange (PFS): the two sides' esp_proposals name different groups."
            )
        return self.finding(
            "ke-group-mismatch",
            severity=Severity.ERROR,
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            remediation=(
                f"Add {wanted_s} to the initiator's {setting} (strongSwan `{kw or wanted_s}`, libreswan "
                f"`{'esp' if child else 'ike'}=...;{_ls_group(wanted)}`), or allow {guessed_s} on the responder."
            ),
            data=data,
        )


# -- helpers ---------------------------------------------------------------------------------


def _ke_algo(group: int) -> Algo:
    return Algo(KE, group)


def _ls_group(group: int | None) -> str:
    return (libreswan_keyword(_ke_algo(group)) if group is not None else None) or "dh19"


def _suite_data(s: Suite) -> Json:
    return {
        "protocol": s.protocol,
        "transforms": [a.label for a in s.algos],
        "iana": s.iana_text(),
        "strongswan": strongswan_proposal(s),
        "libreswan": libreswan_proposal(s),
    }


def _offer_for(
    sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord
) -> tuple[ExchangeRecord | None, MessageRecord | None]:
    """The exchange and message that carried the rejected offer."""
    if sa.version == 2:
        return ex, ex.request
    # IKEv1: the notify travels in its own INFORMATIONAL exchange; the offer is the first
    # message of the phase it refers to (phase 1, or the latest Quick Mode before it).
    if ex.type in ("MAIN_MODE", "AGGRESSIVE_MODE", "QUICK_MODE") and ex.messages:
        return ex, ex.messages[0]
    proto = next((n.protocol_id for n in notifies_named(m, "NO_PROPOSAL_CHOSEN")), None)
    before = [e for e in sa.exchanges if e.first_ts <= m.ts and e is not ex and e.messages]
    if proto not in (None, V1ProtocolId.PROTO_ISAKMP):
        qm = [e for e in before if e.type == "QUICK_MODE"]
        if qm:
            return qm[-1], qm[-1].messages[0]
    p1 = [e for e in before if e.message_id == 0]
    if p1:
        return p1[0], p1[0].messages[0]
    return None, None


def _addressee(m: MessageRecord) -> str:
    """``the responder (198.51.100.2:500)``: whom ``m`` was sent to."""
    return f"the {'responder' if m.from_initiator else 'initiator'} ({m.dst}:{m.dport})"


def _frames_after(sa: IkeSaRecord, ts: float) -> dict[str, list[int]]:
    """Exchange type -> frames of the SA's messages sent after ``ts`` (the notify), in time order."""
    out: dict[str, list[tuple[float, int]]] = {}
    for e in sa.exchanges:
        for mm in e.all_messages():
            for t in mm.transmissions:
                if t.ts > ts:
                    out.setdefault(e.type, []).extend((t.ts, f) for f in t.frames)
    return {k: [f for _, f in sorted(v)] for k, v in sorted(out.items(), key=lambda kv: min(kv[1]))}


def _frame_span(frames: list[int]) -> str:
    """``4-8`` for consecutive frames, else the list."""
    if frames == list(range(frames[0], frames[0] + len(frames))):
        return f"{frames[0]}" if len(frames) == 1 else f"{frames[0]}-{frames[-1]}"
    return ", ".join(map(str, frames))


def _is_phase1(sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord, offered: list[Suite]) -> bool:
    if sa.version == 2:
        if ex.exchange_type == ExchangeType.IKE_SA_INIT:
            return True
        # An IKE SA rekey in CREATE_CHILD_SA proposes protocol IKE.
        return bool(offered) and all(s.protocol == "IKE" for s in offered)
    proto = next((n.protocol_id for n in notifies_named(m, "NO_PROPOSAL_CHOSEN")), None)
    if proto is not None and proto != V1ProtocolId.PROTO_ISAKMP:
        return False
    if ex.type == "QUICK_MODE":
        return False
    if offered:
        return any(s.protocol == "IKE" for s in offered)
    return True


def _closest(offered: list[Suite], known: list[Suite]) -> Comparison | None:
    best: Comparison | None = None
    for k in known:
        for o in offered:
            c = compare(o, k)
            if best is None or len(c.missing) < len(best.missing):
                best = c
    return best


def _asked_options(ex: ExchangeRecord) -> list[str]:
    """The CHILD SA options beyond the algorithms that the request asked for."""
    asked = set(ex.request.notifies) if ex.request is not None else set()
    return [n for n in ("USE_TRANSPORT_MODE", "IPCOMP_SUPPORTED") if n in asked]


def _option_words(options: list[str]) -> str:
    return " and ".join("transport mode" if n == "USE_TRANSPORT_MODE" else "IPComp" for n in options)


def _refused_options(ex: ExchangeRecord, offered: list[Suite], known: list[Suite]) -> list[str]:
    """Options asked for when the offered algorithms are ones this responder accepted elsewhere:
    then the option, not the algorithms, is what it refused."""
    if any(set(o.algos) == set(k.algos) for o in offered for k in known):
        return _asked_options(ex)
    return []


def _child_hints(sa: IkeSaRecord, ex: ExchangeRecord, offered: list[Suite], known: list[Suite]) -> list[str]:
    """PFS and ESN explanations for CHILD SA rejections."""
    hints: list[str] = []
    if not offered:
        return hints
    pfs = [s for s in offered if s.has_ke]
    if pfs and len(pfs) == len(offered):
        groups = ", ".join(dict.fromkeys(a.label for s in pfs for a in s.of(KE) if a.id))
        known_nopfs = [k for k in known if not k.has_ke]
        where_ = "in CREATE_CHILD_SA" if ex.exchange_type == ExchangeType.CREATE_CHILD_SA else f"in {ex.type}"
        text = f"PFS: every offered CHILD SA proposal requires a key exchange ({groups}) {where_}"
        if known_nopfs:
            text += "; the CHILD SAs the responder accepted elsewhere have none: it is configured without PFS"
        else:
            text += (
                "; if the responder's ESP proposals name no group (no PFS) or another one, it rejects them"
            )
        if ex.exchange_type == ExchangeType.CREATE_CHILD_SA and any(
            c.created_in == "IKE_AUTH" for c in sa.child_sas
        ):
            text += (
                ". The first CHILD SA was created in IKE_AUTH, where no key exchange takes place "
                "(RFC 7296 §1.2), so a PFS mismatch shows only when the CHILD SA is rekeyed"
            )
        hints.append(
            text + ". Configure the same group on both sides (e.g. `esp_proposals = "
            f"{strongswan_proposal(pfs[0])}` on both) or none on both."
        )
    options = _asked_options(ex)
    what = _option_words(options)
    if options and not known:
        # Nothing shows what this responder accepts: the option is a suspect, not a certainty.
        hints.insert(
            0,
            f"Mode: the request also asked for {what} ({', '.join(options)}) and the capture shows no "
            f"CHILD SA this responder accepted, so either the algorithms or the {what} were refused. If "
            f"both sides list the same ESP proposals, it is the {what} (e.g. strongSwan's kernel-libipsec "
            "backend supports tunnel mode only): use `mode = tunnel` (libreswan `type=tunnel`) on the "
            "initiator, or allow/implement the option on the responder.",
        )
    elif _refused_options(ex, offered, known):
        # Same algorithms accepted elsewhere by this responder: what it refused is the option.
        hints.insert(
            0,
            f"Mode: the offered algorithms are the ones this responder accepts elsewhere, but the request "
            f"asked for {what} ({', '.join(options)}): the responder refused the {what}, not the algorithms "
            "(e.g. strongSwan's kernel-libipsec backend supports tunnel mode only). Use `mode = tunnel` "
            "(libreswan `type=tunnel`) on the initiator, or allow/implement the option on the responder.",
        )
    esn_only = {a.id for s in offered for a in s.of(ESN)}
    if esn_only == {1}:
        known_no = [k for k in known if {a.id for a in k.of(ESN)} == {0}]
        text = "ESN: the initiator offers extended sequence numbers only (`esn`)"
        if known_no:
            text += "; the responder accepted only `noesn` elsewhere"
        hints.append(text + ": offer both (`-esn-noesn`) or configure the same ESN setting on both sides.")
    elif esn_only == {0} and any({a.id for a in k.of(ESN)} == {1} for k in known):
        hints.append(
            "ESN: the initiator offers no extended sequence numbers (`noesn`), while the responder "
            "accepted only `esn` elsewhere: offer both (`-esn-noesn`) or align the setting."
        )
    return hints


def _remediation(
    offered: list[Suite], known: list[Suite], rejecter: str, proposer: str, child: bool
) -> tuple[str, Json]:
    setting = "esp_proposals" if child else "proposals"
    config: Json = {}
    if offered:
        config["offered"] = config_lines(offered, child=child)
    if known:
        config["accepted"] = config_lines(known[:1], child=child)
        acc = config["accepted"]
        text = (
            f"On {proposer}, offer what {rejecter} is known to accept: `{acc['strongswan']}` "
            f"(libreswan `{acc['libreswan']}`)"
        )
        if offered:
            off = config["offered"]
            text += f"; or on {rejecter}, also accept the offered `{off['strongswan'].split(' = ', 1)[1]}`"
        return text + ".", config
    if offered:
        off = config["offered"]
        return (
            f"The capture does not show what {rejecter} accepts. {proposer}'s offer is equivalent to "
            f"`{off['strongswan']}` (libreswan `{off['libreswan']}`): add one of these proposals to "
            f"{rejecter}'s {setting}, or configure {proposer} with a proposal {rejecter} accepts "
            "(`swanctl --list-conns` shows them; strongSwan logs 'configured proposals' at cfg level 2). "
            "Prefer updating the side with weak algorithms over weakening the other.",
            config,
        )
    return (
        f"Compare the {setting} of both peers; supply the IKE keys to see the proposals that were offered.",
        config,
    )


def _peer_key(sa: IkeSaRecord) -> frozenset[str]:
    return frozenset((sa.initiator[0], sa.responder[0]))


def _retry_outcome(
    neighbours: list[IkeSaRecord], sa: IkeSaRecord, ex: ExchangeRecord, wanted: int | None
) -> int | None:
    """Frame of a later successful exchange of the same kind that used the wanted group, in this
    IKE SA or another one between the same hosts (``neighbours``) started soon after."""
    t0 = ex.first_ts
    cands = [sa] + [
        o
        for o in neighbours
        if o is not sa
        and o.version == sa.version
        and same_peers(o, sa)
        and 0 <= o.first_ts - t0 < RETRY_WINDOW
    ]
    for o in cands:
        for e in o.exchanges:
            if e is ex or e.exchange_type != ex.exchange_type or e.first_ts < t0 or e.response is None:
                continue
            resp = e.response
            if any(n in _FAILURES for n in resp.notifies):
                continue
            if "SA" not in resp.payloads:
                continue
            ke = first_of(resp, v2.KePayload)
            if ke is None and ex.exchange_type == ExchangeType.IKE_SA_INIT:
                continue
            if wanted is None or ke is None or ke.group == wanted:
                return resp.first_frame
    return None
