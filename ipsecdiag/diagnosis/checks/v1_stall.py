"""IKEv1 exchanges that stop part way: a message that is never followed by the next one.

Main Mode has six messages, Aggressive Mode three, Quick Mode three (RFC 2409 §5, §5.5). When the
exchange is answered but then stops (for example Quick Mode message 3 never sent while the
responder retransmits message 2 until it gives up), no SA exists on either side, yet no request
is "unanswered" in the request/response sense; say which phase, which message is missing and
which side stopped. A side that said why (an error notify) is diagnosed by its own check.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.model import IN_FLIGHT_SECONDS, Finding
from ..base import Check, CheckContext
from ..common import role

EXPECTED = {"MAIN_MODE": 6, "AGGRESSIVE_MODE": 3, "QUICK_MODE": 3}
PHASE = {"MAIN_MODE": "Main Mode (phase 1)", "AGGRESSIVE_MODE": "Aggressive Mode (phase 1)", "QUICK_MODE": "Quick Mode (phase 2)"}


class V1StallCheck(Check):
    name = "v1-stall"
    finding_ids = ("ikev1-exchange-stopped",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        end = ctx.report.source.last_ts or 0.0
        for sa in ctx.report.ike_sas:
            if sa.version != 1 or sa.error_notifies:
                continue
            for ex in sa.exchanges:
                want = EXPECTED.get(ex.type)
                msgs = ex.messages
                if want is None or not msgs or len(msgs) >= want or ex.unanswered:
                    continue  # complete, or never answered at all (ike-unanswered says that)
                last = msgs[-1]
                waited = end - max(t.ts for t in last.transmissions)
                if last.retransmissions == 0 and waited < IN_FLIGHT_SECONDS:
                    continue  # the next message may still be on its way
                stopped = "responder" if last.from_initiator else "initiator"
                missing = len(msgs) + 1
                phase = PHASE[ex.type]
                ev = [
                    f"{phase}, message id {ex.message_id}: messages 1-{len(msgs)} seen, message {missing} "
                    f"(from the {stopped}) never sent",
                    f"message {len(msgs)} from the {role(last)} ({last.src}:{last.sport}) was sent "
                    f"{len(last.transmissions)}x, last {waited:.1f} s before the capture ends",
                ]
                yield self.finding(
                    "ikev1-exchange-stopped",
                    frames=[f for m in msgs for f in m.frames],
                    evidence=ev,
                    ike_sa=sa.key,
                    title=f"IKEv1 {phase} stopped: message {missing} never sent by the {stopped}",
                    explanation=(
                        f"The {stopped} received {phase} message {len(msgs)} but never sent message {missing}"
                        + (f"; the {role(last)} retransmitted it" if last.retransmissions else "")
                        + ". The exchange did not complete, so "
                        + ("no IPsec SA exists on either side." if ex.type == "QUICK_MODE" else "no ISAKMP SA exists.")
                    ),
                    data={"phase": ex.type, "messages": len(msgs), "missing": missing, "stopped": stopped},
                    explains=("ike-unanswered",),
                )
                break
