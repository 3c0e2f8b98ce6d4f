"""Requests that never got a response: peer down, UDP 500/4500 filtered, or lost on the way."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ...capture.timesteps import GAP_SECONDS
from ...reconstruction.model import ExchangeRecord, Finding, IkeSaRecord, MessageRecord, Severity
from ...reconstruction.time_order import unanswered_outcome
from ...wire.registry import ExchangeType
from ..base import Check, CheckContext
from ..repeats import _time as time_text

SHOWN = 5  # peers named one by one when one side answered none of several


class UnansweredCheck(Check):
    name = "unanswered"
    finding_ids = ("ike-unanswered", "natt-port-blocked")
    severity_overrides = {
        "ike-unanswered": "info when every request was sent once and the capture holds no frame in "
        "the retransmission interval after it (a capture gap): the title says the outcome is unknown",
    }

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        silent: list[IkeSaRecord] = []  # first requests that got nothing back at all
        for sa in ctx.report.ike_sas:
            # The model's reading, the one the ladders print too: in flight at the end is no
            # evidence; sent before a capture gap is an unknown outcome; otherwise lost.
            outcomes = [(e, unanswered_outcome(ctx.report, e)) for e in sa.exchanges]
            read = [(e, o) for e, o in outcomes if o is not None and o.kind != "in-flight"]
            pending = [e for e, _ in read]
            gaps = {id(e): o.why for e, o in read if o.kind == "gap"}
            if gaps:
                yield self._unknown(sa, [e for e in pending if id(e) in gaps], gaps)
                pending = [e for e in pending if id(e) not in gaps]
            if not pending:
                continue
            if _never_answered(sa, pending):
                silent.append(sa)
                continue
            yield self._finding(sa, pending)
        yield from self._silent(silent)

    def _silent(self, sas: list[IkeSaRecord]) -> Iterable[Finding]:
        """SAs whose first request got no answer, grouped: one finding for a responder that
        answered none of several initiators, one for an initiator that none of several
        responders answered; the rest one per SA (diagnosis.repeats merges those between the same
        two peers)."""
        by_resp: dict[tuple[str, int], list[IkeSaRecord]] = {}
        for sa in sas:
            by_resp.setdefault(sa.responder, []).append(sa)
        rest: list[IkeSaRecord] = []
        for (addr, port), group in by_resp.items():
            if len({sa.initiator[0] for sa in group}) > 1:
                yield self._group(group, f"{addr}:{port} answered none of", "initiators", lambda sa: sa.initiator[0])
            else:
                rest.extend(group)
        by_init: dict[str, list[IkeSaRecord]] = {}
        for sa in rest:
            by_init.setdefault(sa.initiator[0], []).append(sa)
        for addr, group in by_init.items():
            if len({sa.responder for sa in group}) > 1:
                yield self._group(group, "none of", f"responders answered {addr}", _responder_text)
            else:
                for sa in group:
                    yield self._finding(sa, sa.exchanges[:1])

    def _group(
        self, group: list[IkeSaRecord], lead: str, what: str, other: Callable[[IkeSaRecord], str]
    ) -> Finding:
        group = sorted(group, key=lambda sa: sa.first_ts)
        peers = list(dict.fromkeys(other(sa) for sa in group))
        first = [_first_request(sa) for sa in group]
        frames = [f for m in first for f in m.frames]
        times = [t.ts for m in first for t in m.transmissions]
        sent = sum(len(m.transmissions) for m in first)
        retried = sum(len(m.transmissions) > 1 for m in first)
        names = ", ".join(peers[:SHOWN]) + (f" and {len(peers) - SHOWN} more" if len(peers) > SHOWN else "")
        # Most of them retransmitting (RFC 7296 §2.1): clients waiting for an answer, worded as
        # the many-clients summary of diagnosis.checks.half_open is.
        title = f"{lead} {len(peers)} {what}" + (", which retried" if 2 * retried > len(first) else "")
        return self.finding(
            "ike-unanswered",
            frames=frames,
            evidence=[
                f"{lead} {len(peers)} {what} ({names}): {len(group)} IKE SA setup(s), {sent} request(s) "
                f"sent, first {time_text(min(times))}, last {time_text(max(times))}",
            ],
            title=title[0].upper() + title[1:],
            explanation=(
                f"{title}: no response to any first request. One silent side and several peers: that "
                "side is down, not listening on that port, or filtered (or, for a responder, it ignores "
                "them all); the peers themselves are not the likely cause."
            ),
            data={"exchanges": [group[0].exchanges[0].type + "#0"], "ike_sas": [sa.key for sa in group]},
        )

    def _unknown(self, sa: IkeSaRecord, pending: list[ExchangeRecord], why: dict[int, str]) -> Finding:
        """Requests sent once and followed by a gap in the capture: no verdict either way."""
        frames, ev = _requests(sa, pending, why)
        req = pending[0].last_sent
        peer = f"{req.dst}:{req.dport}" if req is not None else "the peer"
        types = ", ".join(dict.fromkeys(e.type for e in pending))
        return self.finding(
            "ike-unanswered",
            severity=Severity.INFO,
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            title="IKE request outcome unknown: capture gap",
            explanation=(
                f"{types} request(s) to {peer} were sent once, and the capture holds no frame in the "
                f"{GAP_SECONDS:.0f} s after them. A sender retransmits an unanswered request within seconds "
                "(RFC 7296 §2.1), so the capture stopped, paused or was stitched from snippets there: "
                "whether the peer answered is unknown, and this is no evidence of a silent peer."
            ),
            cause=(
                "A capture stitched from snippets, paused, or stopped right after the request (a ring "
                "buffer, files merged, a capture filter changed)."
            ),
            remediation="Nothing to fix from this capture; capture without gaps across the exchange to judge it.",
            data={"exchanges": [f"{e.type}#{e.message_id}" for e in pending], "outcome": "unknown: capture gap"},
        )

    def _finding(self, sa: IkeSaRecord, pending: list[ExchangeRecord]) -> Finding:
        frames, ev = _requests(sa, pending, {})
        answered_on_500 = any(
            e.response is not None and e.exchange_type == ExchangeType.IKE_SA_INIT and e.response.sport == 500
            for e in sa.exchanges
        )
        first = pending[0]
        req = first.request if sa.version == 2 else (first.messages[0] if first.messages else None)
        on_4500 = req is not None and 4500 in (req.sport, req.dport) and req.dport != 500
        fragmented = req is not None and req.ip_fragmented
        if (
            sa.version == 2
            and answered_on_500
            and on_4500
            and not fragmented
            and all(e.exchange_type != ExchangeType.IKE_SA_INIT for e in pending)
            and not any(e.response is not None and e.response.sport == 4500 for e in sa.exchanges)
        ):
            ev.append("IKE_SA_INIT on UDP 500 was answered; nothing ever came back on UDP 4500")
            return self.finding("natt-port-blocked", frames=frames, evidence=ev, ike_sa=sa.key)
        peer = f"{req.dst}:{req.dport}" if req is not None else "the peer"
        if (
            sa.version == 2
            and all(e.exchange_type == ExchangeType.IKE_SA_INIT for e in pending)
            and not any(e.response is not None for e in sa.exchanges)
        ):
            expl = (
                f"{peer} never answered IKE_SA_INIT: the peer is down or not listening, or UDP "
                f"{req.dport if req else 500} is filtered between the peers."
            )
        elif fragmented:
            expl = (
                f"{peer} never answered {first.type}, which was sent in IP fragments; smaller messages "
                "were answered, so IP fragments are probably dropped on the path."
            )
        else:
            # No count and no "this IKE SA": diagnosis.repeats keeps these words for a group.
            expl = f"{peer} never answered {', '.join(dict.fromkeys(e.type for e in pending))} request(s) sent to it."
        return self.finding(
            "ike-unanswered",
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            data={"exchanges": [f"{e.type}#{e.message_id}" for e in pending]},
        )


def _requests(sa: IkeSaRecord, pending: list[ExchangeRecord], why: dict[int, str]) -> tuple[list[int], list[str]]:
    """The frames and one evidence line per unanswered request (with ``why`` for its exchange)."""
    frames: list[int] = []
    ev = []
    for e in pending:
        msgs = e.messages if sa.version == 1 else [e.request]
        for m in msgs:
            if m is None:
                continue
            frames += m.frames
            times = [t.ts for t in m.transmissions]
            gaps = ", ".join(f"{b - a:.1f}s" for a, b in zip(times, times[1:], strict=False))
            ev.append(
                f"{e.type} request (message id {e.message_id}) {m.src}:{m.sport} -> {m.dst}:{m.dport}, "
                f"sent {len(m.transmissions)}x"
                + (f" (retransmitted after {gaps})" if gaps else "")
                + f", {m.size} bytes, frames {', '.join(map(str, m.frames[:12]))}"
                + ("…" if len(m.frames) > 12 else "")
                + (f"; {why[id(e)]}" if id(e) in why else "")
            )
    return frames, ev


def _never_answered(sa: IkeSaRecord, pending: list[ExchangeRecord]) -> bool:
    """The SA's first request (IKE_SA_INIT, or IKEv1 phase 1) is all it has and got nothing back."""
    ex = sa.exchanges[0] if sa.exchanges else None
    return (
        ex is not None
        and pending == [ex]
        and len(sa.exchanges) == 1
        and (ex.exchange_type == ExchangeType.IKE_SA_INIT if sa.version == 2 else ex.message_id == 0)
    )


def _first_request(sa: IkeSaRecord) -> MessageRecord:
    ex = sa.exchanges[0]
    m = ex.request if sa.version == 2 else ex.messages[0]
    assert m is not None  # _never_answered: an unanswered request
    return m


def _responder_text(sa: IkeSaRecord) -> str:
    return f"{sa.responder[0]}:{sa.responder[1]}"
