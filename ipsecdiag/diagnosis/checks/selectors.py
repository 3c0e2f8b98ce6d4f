"""Traffic selectors: TS_UNACCEPTABLE / SINGLE_PAIR_REQUIRED (IKEv1: INVALID_ID_INFORMATION in
Quick Mode) with both sides' selectors and their overlap, and narrowing that drops part of the
requested range (RFC 7296 §2.9).

Selectors are address intervals with a protocol and a port range. What the rejecting peer
serves is learnt from other CHILD SAs in the capture: as a responder its response TSr is its
local side and TSi its remote side; as an initiator its request TSi is its local side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...protocol.selectors import Sel, config_text, intersect, sel_from_ts, sel_from_v1_id, texts, uncovered
from ...reconstruction.model import ExchangeRecord, Finding, IkeSaRecord, MessageRecord, Report
from ...wire import ikev1 as v1
from ...wire import ikev2 as v2
from ...wire.jsontypes import Json
from ...wire.registry import CfgType, ExchangeType
from ..base import Check, CheckContext
from ..common import frames_of, hidden, payloads_of, quick_modes_before, sentence, where, who

_REJECTIONS_V2 = ("TS_UNACCEPTABLE", "SINGLE_PAIR_REQUIRED")
_FAILURES = {"TS_UNACCEPTABLE", "SINGLE_PAIR_REQUIRED", "NO_PROPOSAL_CHOSEN", "INVALID_KE_PAYLOAD"}


def _host_to_host(sa: IkeSaRecord, req: MessageRecord | None, tsi: list[Sel], tsr: list[Sel], ev: list[str]) -> str:
    """Selectors that are exactly the two IKE peers' addresses: a transport-mode (host-to-host)
    request, or a tunnel covering the peers themselves, which a tunnel-mode responder may refuse
    to route. Adds the evidence and returns the fix ('' when the selectors are something else)."""
    peers = {f"{sa.initiator[0]}/{b}" for b in (32, 128)} | {f"{sa.responder[0]}/{b}" for b in (32, 128)}
    if not (tsi and tsr) or not {s.text() for s in tsi + tsr} <= peers:
        return ""
    transport = req is not None and "USE_TRANSPORT_MODE" in req.notifies
    ev.append(
        "the selectors are the two IKE peers' own addresses (host-to-host)"
        + (" and the request asked for transport mode (USE_TRANSPORT_MODE)" if transport else "")
    )
    return (
        "A responder set up for tunnel mode may refuse selectors that cover its own IKE address "
        "(strongSwan logs \"can't install route ... conflicts with IKE traffic\"): "
        + (
            "configure `mode = transport` on the responder too (on an IPsec backend that supports it; "
            "strongSwan's kernel-libipsec does not), or "
            if transport
            else ""
        )
        + "protect the inner subnets in tunnel mode instead (`local_ts`/`remote_ts`, libreswan "
        "`leftsubnet`/`rightsubnet`)."
    )


def ts_of(m: MessageRecord | None, which: int) -> list[Sel]:
    """Selectors of TSi (44) or TSr (45) in a (decrypted) IKEv2 message."""
    out: list[Sel] = []
    for p in payloads_of(m, v2.TsPayload):
        if p.which == which:
            out += [s for s in (sel_from_ts(t) for t in p.selectors) if s is not None]
    return out


def _creates_child(ex: ExchangeRecord) -> bool:
    return ex.exchange_type in (ExchangeType.IKE_AUTH, ExchangeType.CREATE_CHILD_SA)


@dataclass
class SidePolicy:
    """What a host is seen to protect: its local and remote selectors, each with the frame and
    the id() of the exchange that showed it."""

    local: list[tuple[Sel, int, int]]
    remote: list[tuple[Sel, int, int]]

    def without(self, ex: ExchangeRecord) -> SidePolicy:
        return SidePolicy(
            [x for x in self.local if x[2] != id(ex)], [x for x in self.remote if x[2] != id(ex)]
        )


def policies(report: Report) -> dict[str, SidePolicy]:
    out: dict[str, SidePolicy] = {}
    seen: set[tuple[str, str, Sel]] = set()

    def add(host: str, side: str, sels: list[Sel], frame: int, ex: ExchangeRecord) -> None:
        pol = out.setdefault(host, SidePolicy([], []))
        for s in sels:
            if (host, side, s) in seen:
                continue  # one sighting per selector keeps many repeated SAs linear
            seen.add((host, side, s))
            getattr(pol, side).append((s, frame, id(ex)))

    for sa in report.ike_sas:
        if sa.version != 2:
            continue
        for ex in sa.exchanges:
            if not _creates_child(ex) or ex.request is None:
                continue
            req, resp = ex.request, ex.response
            if resp is not None and not (_FAILURES & set(resp.notifies)) and ts_of(resp, 45):
                add(resp.src, "local", ts_of(resp, 45), resp.first_frame, ex)
                add(resp.src, "remote", ts_of(resp, 44), resp.first_frame, ex)
            if ts_of(req, 44):
                add(req.src, "local", ts_of(req, 44), req.first_frame, ex)
                add(req.src, "remote", ts_of(req, 45), req.first_frame, ex)
    return out


class SelectorCheck(Check):
    name = "selectors"
    finding_ids = ("ts-unacceptable", "ts-narrowed")

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        report = ctx.report
        self._policies: dict[str, SidePolicy] | None = None
        for sa in report.ike_sas:
            for ex in sa.exchanges:
                if sa.version == 2:
                    resp = ex.response
                    if (
                        resp is None
                        or not _creates_child(ex)
                        and not (set(_REJECTIONS_V2) & set(resp.notifies))
                    ):
                        continue
                    rejected = [n for n in _REJECTIONS_V2 if n in resp.notifies]
                    if rejected:
                        yield self._rejected(report, sa, ex, resp, rejected[0])
                    else:
                        f = self._narrowed(sa, ex)
                        if f is not None:
                            yield f
                else:
                    f = self._v1(sa, ex)
                    if f is not None:
                        yield f

    # -- TS_UNACCEPTABLE -----------------------------------------------------------------
    def _rejected(
        self, report: Report, sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord, n: str
    ) -> Finding:
        req = ex.request
        tsi, tsr = ts_of(req, 44), ts_of(req, 45)
        rejecter = m.src
        ev = [f"{who(m)} sent {n} in {where(ex)}, frame {m.first_frame}"]
        data: Json = {"notify": n}
        if tsi or tsr:
            ev.append(f"{req.src if req else 'initiator'} proposed TSi (its side) {texts(tsi)}")
            ev.append(f"{req.src if req else 'initiator'} proposed TSr (the far side) {texts(tsr)}")
            data.update(tsi=[s.text() for s in tsi], tsr=[s.text() for s in tsr])
        elif hidden(req):
            ev.append("the proposed selectors are inside the encrypted request: supply keys to see them")
        if self._policies is None:
            self._policies = policies(report)
        pol = self._policies.get(rejecter)
        pol = pol.without(ex) if pol is not None else None
        rem_lines: list[str] = []
        if pol is not None and (pol.local or pol.remote):
            loc = list(dict.fromkeys(s for s, _, _ in pol.local))
            rem = list(dict.fromkeys(s for s, _, _ in pol.remote))
            frames = sorted({f for _, f, _ in pol.local + pol.remote})
            ev.append(
                f"{rejecter} protects {texts(loc)} on its side and {texts(rem)} on the far side "
                f"in other CHILD SAs (frames {', '.join(map(str, frames[:6]))})"
            )
            ov_r = [x for a in tsr for b in loc if (x := intersect(a, b)) is not None]
            ov_i = [x for a in tsi for b in rem if (x := intersect(a, b)) is not None]
            if tsr and loc:
                ev.append(f"overlap of the requested TSr with {rejecter}'s side: {texts(ov_r)}")
            if tsi and rem:
                ev.append(f"overlap of the requested TSi with {rejecter}'s far side: {texts(ov_i)}")
            data.update(
                peer_local=[s.text() for s in loc],
                peer_remote=[s.text() for s in rem],
                overlap_tsr=[s.text() for s in ov_r],
                overlap_tsi=[s.text() for s in ov_i],
            )
            if tsr and loc and not ov_r:
                rem_lines.append(
                    f"the initiator asks for {texts(tsr)} behind {rejecter}, which serves {texts(loc)}: "
                    f"set the initiator's `remote_ts = {config_text(loc)}` (libreswan `rightsubnet={config_text(loc)}`) "
                    f"or add {config_text(tsr)} to {rejecter}'s `local_ts`"
                )
            if tsi and rem and not ov_i:
                rem_lines.append(
                    f"the initiator offers {texts(tsi)} as its side, {rejecter} expects {texts(rem)}: "
                    f"set the initiator's `local_ts = {config_text(rem)}` (libreswan `leftsubnet=`) or add "
                    f"{config_text(tsi)} to {rejecter}'s `remote_ts`"
                )
        if n == "SINGLE_PAIR_REQUIRED":
            expl = sentence(
                f"{who(m)} only accepts a single pair of addresses as traffic selectors and rejected the "
                "ranges proposed, so no CHILD SA was created."
            )
        else:
            expl = sentence(
                f"{who(m)} found no overlap between the proposed traffic selectors and its own policy, "
                "so no CHILD SA was created."
            )
            if ex.exchange_type == ExchangeType.IKE_AUTH:
                expl += " The IKE SA itself may stay up (RFC 7296 §2.9)."
        host_hint = _host_to_host(sa, req, tsi, tsr, ev)
        if rem_lines:
            remediation = "; ".join(rem_lines) + "."
        elif host_hint:
            remediation = host_hint
        elif tsi or tsr:
            remediation = (
                f"Make the responder's policy cover the proposal: its `local_ts` must include {config_text(tsr)} and "
                f"its `remote_ts` {config_text(tsi)} (libreswan `leftsubnet`/`rightsubnet`), or change the "
                "initiator's selectors to what the responder serves; the responder's log names the "
                "selectors it has configured ('no acceptable traffic selectors found')."
            )
        else:
            remediation = (
                "Make `local_ts`/`remote_ts` (strongSwan) or `leftsubnet`/`rightsubnet` (libreswan) mirror "
                "each other on the two gateways."
            )
        return self.finding(
            "ts-unacceptable",
            frames=frames_of(m, req),
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            remediation=remediation,
            data=data,
        )

    # -- narrowing -----------------------------------------------------------------------
    def _narrowed(self, sa: IkeSaRecord, ex: ExchangeRecord) -> Finding | None:
        req, resp = ex.request, ex.response
        if req is None or resp is None or not (req.decrypted and resp.decrypted):
            return None
        if "SA" not in resp.payloads:
            return None
        virtual_ip = any(p.cfg_type == CfgType.CFG_REQUEST for p in payloads_of(req, v2.CpPayload))
        lost: list[tuple[str, Sel, list[Sel], list[Sel]]] = []
        for which, label in ((44, "TSi"), (45, "TSr")):
            if which == 44 and virtual_ip:
                continue  # narrowing TSi to the assigned virtual IP is the point of the request
            got = ts_of(resp, which)
            for s in ts_of(req, which):
                gone = uncovered(s, got)
                if gone:
                    lost.append((label, s, gone, got))
        if not lost:
            return None
        only_any = all(s.is_any for _, s, _, _ in lost)
        ev = [
            f"{where(ex)}: the request (frame {req.first_frame}) and the response (frame {resp.first_frame}); "
            "the CHILD SA was created"
        ]
        for label, s, gone, got in lost:
            ev.append(f"{label}: asked {s.text()}, got {texts(got)}; not covered: {texts(gone)}")
        expl = sentence(
            f"{who(resp)} narrowed the traffic selectors (RFC 7296 §2.9): the CHILD SA was created but "
            "covers less than the initiator asked for, so traffic to or from the dropped ranges is not "
            "tunnelled (it is dropped or sent in the clear, depending on the initiator's policy)."
        )
        if only_any:
            expl += " The initiator asked for everything (0.0.0.0/0 or ::/0) and let the responder narrow: expected."
        # Narrowing is a successful negotiation, never TS_UNACCEPTABLE (a failure id people grep for):
        # it keeps the catalogue's INFO severity.
        return self.finding(
            "ts-narrowed",
            frames=frames_of(req, resp),
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            cause=(
                "The initiator asked for everything and let the responder narrow (intended)."
                if only_any
                else "The initiator's selectors are wider than the responder's policy serves."
            ),
            data={
                "narrowed": [
                    {
                        "payload": label,
                        "requested": s.text(),
                        "accepted": [g.text() for g in got],
                        "dropped": [g.text() for g in gone],
                    }
                    for label, s, gone, got in lost
                ]
            },
        )

    # -- IKEv1 Quick Mode ----------------------------------------------------------------
    def _v1(self, sa: IkeSaRecord, ex: ExchangeRecord) -> Finding | None:
        for m in ex.all_messages():
            if "INVALID_ID_INFORMATION" not in m.notifies:
                continue
            qms = quick_modes_before(sa, m)
            if not qms:
                continue  # phase 1: the identity itself was refused, not a proxy ID
            ids = [
                (mm, p) for e in qms[-1:] for mm in e.messages[:1] for p in payloads_of(mm, v1.V1IdPayload)
            ]
            ev = [f"{who(m)} sent INVALID_ID_INFORMATION in {where(ex)}, frame {m.first_frame}"]
            names = ("IDci (initiator side)", "IDcr (responder side)")
            for i, (_, p) in enumerate(ids[:2]):
                s = sel_from_v1_id(p)
                ev.append(f"Quick Mode {names[i]}: {s.text() if s else p.display()}")
            if not ids:
                ev.append("the Quick Mode identities are encrypted: supply keys to see them")
            return self.finding(
                "ts-unacceptable",
                frames=frames_of(m, *(mm for mm, _ in ids[:1])),
                evidence=ev,
                ike_sa=sa.key,
                title="Quick Mode identities rejected (INVALID_ID_INFORMATION)",
                explanation=sentence(
                    f"{who(m)} rejected the Quick Mode client identities (proxy IDs): the subnets do not "
                    "match its policy, so no IPsec SA was created."
                ),
                data={"notify": "INVALID_ID_INFORMATION"},
            )
        return None


