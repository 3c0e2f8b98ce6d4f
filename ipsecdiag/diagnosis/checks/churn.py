"""SA churn: DELETE storms and tunnels that are set up again and again.

A healthy tunnel negotiates once and rekeys at its lifetimes. Many DELETEs (decrypted), or
many fresh IKE_SA_INITs between the same two hosts, in a short time mean the peers keep
tearing SAs down: duplicate or conflicting configurations (two connections for the same
peers), a peer rejecting what the other installs, flapping DPD, or an initiator in a loop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ...reconstruction.model import Finding
from ...wire import ikev1 as v1
from ...wire import ikev2 as v2
from ...wire.registry import ExchangeType
from ..base import Check, CheckContext

DELETE_STORM = 10  # DELETE payloads between two hosts within options.churn_window
SETUP_STORM = 5  # new IKE SAs between two hosts within options.churn_window


def _densest(times: list[tuple[float, int]], window: float) -> tuple[int, float, float, list[int]]:
    """Largest number of events inside any ``window`` (count, start, end, frames)."""
    times.sort()
    best = (0, 0.0, 0.0, [])
    j = 0
    for i in range(len(times)):
        while times[i][0] - times[j][0] > window:
            j += 1
        if i - j + 1 > best[0]:
            best = (i - j + 1, times[j][0], times[i][0], [f for _, f in times[j : i + 1]])
    return best


class ChurnCheck(Check):
    name = "churn"
    finding_ids = ("delete-storm",)

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        window = ctx.options.churn_window
        deletes: dict[frozenset[str], list[tuple[float, int]]] = defaultdict(list)
        setups: dict[frozenset[str], list[tuple[float, int]]] = defaultdict(list)
        for sa in r.ike_sas:
            hosts = frozenset((sa.initiator[0], sa.responder[0]))
            for e in sa.exchanges:
                # Only setups the responder answered: requests never answered are not tunnels torn
                # down and set up again (they are ike-unanswered, or a half-open flood).
                if (
                    e.exchange_type == ExchangeType.IKE_SA_INIT
                    and e.request is not None
                    and e.response is not None
                    and sa.version == 2
                ):
                    if not any(
                        x.exchange_type == ExchangeType.IKE_SA_INIT and x.first_ts < e.first_ts
                        for x in sa.exchanges
                    ):
                        setups[hosts].append((e.request.ts, e.request.first_frame))
                for m in e.all_messages():
                    if m.is_response and sa.version == 2:
                        continue  # a DELETE response only confirms the request's DELETE
                    n = sum(
                        len(p.spis) or 1
                        for p in m.inner
                        if isinstance(p, v2.DeletePayload | v1.V1DeletePayload)
                    )
                    deletes[hosts].extend([(m.ts, m.first_frame)] * n)
        for hosts, ev in deletes.items():
            n, t0, t1, frames = _densest(ev, window)
            if n >= DELETE_STORM:
                yield self.finding(
                    "delete-storm",
                    frames=frames,
                    evidence=[
                        f"{n} SAs deleted between {' and '.join(sorted(hosts))} within {t1 - t0:.1f} s "
                        f"(frames {frames[0]}..{frames[-1]})"
                    ],
                    explanation=(
                        f"{n} SAs were deleted between {' and '.join(sorted(hosts))} within "
                        f"{t1 - t0:.0f} seconds: the peers keep tearing SAs down instead of using them."
                    ),
                    data={"deletes": n, "seconds": round(t1 - t0, 3), "kind": "delete"},
                )
        for hosts, ev in setups.items():
            n, t0, t1, frames = _densest(ev, window)
            if n >= SETUP_STORM:
                yield self.finding(
                    "delete-storm",
                    frames=frames,
                    title="IKE SAs set up again and again",
                    evidence=[
                        f"{n} new IKE SAs (IKE_SA_INIT) between {' and '.join(sorted(hosts))} within "
                        f"{t1 - t0:.1f} s (frames {frames[0]}..{frames[-1]})"
                    ],
                    explanation=(
                        f"{n} IKE SAs were started between {' and '.join(sorted(hosts))} within "
                        f"{t1 - t0:.0f} seconds: the tunnel is torn down and negotiated again instead "
                        "of staying up."
                    ),
                    data={"setups": n, "seconds": round(t1 - t0, 3), "kind": "setup"},
                )
