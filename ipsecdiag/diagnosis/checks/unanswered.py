"""Requests that never got a response: peer down, UDP 500/4500 filtered, or lost on the way."""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import ExchangeRecord, Finding, IkeSaRecord
from ...wire.registry import ExchangeType
from ..base import Check, CheckContext


class UnansweredCheck(Check):
    name = "unanswered"
    finding_ids = ("ike-unanswered", "natt-port-blocked")

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        end = ctx.report.source.last_ts or 0.0
        for sa in ctx.report.ike_sas:
            pending = [e for e in sa.exchanges if e.unanswered_at(end)]
            if not pending:
                continue
            yield self._finding(sa, pending)

    def _finding(self, sa: IkeSaRecord, pending: list[ExchangeRecord]) -> Finding:
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
                )
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
            expl = f"{peer} never answered {len(pending)} request(s) of this IKE SA."
        return self.finding(
            "ike-unanswered",
            frames=frames,
            evidence=ev,
            ike_sa=sa.key,
            explanation=expl,
            data={"exchanges": [f"{e.type}#{e.message_id}" for e in pending]},
        )
