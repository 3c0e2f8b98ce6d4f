"""SA churn: DELETE storms and tunnels that are set up again and again.

A healthy tunnel negotiates once and rekeys at its lifetimes. Many DELETEs (decrypted), or
many fresh IKE_SA_INITs between the same two hosts, in a short time mean the peers keep
tearing SAs down: duplicate or conflicting configurations (two connections for the same
peers), a peer rejecting what the other installs, flapping DPD, or an initiator in a loop.
Many setups with no DELETE in the capture (and no INFORMATIONAL exchange that could hide one)
show no tear-down at all: an initiator starting new IKE SAs beside the old ones, many clients
behind one address, or a load generator, which the capture cannot tell apart.
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
        informational: dict[frozenset[str], int] = defaultdict(int)  # exchanges that may carry a DELETE
        for sa in r.ike_sas:
            hosts = frozenset((sa.initiator[0], sa.responder[0]))
            for e in sa.exchanges:
                informational[hosts] += "INFORMATIONAL" in e.type
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
                yield self._setups(hosts, n, t1 - t0, frames, len(deletes.get(hosts, ())), informational[hosts])

    def _setups(
        self, hosts: frozenset[str], n: int, span: float, frames: list[int], deleted: int, informational: int
    ) -> Finding:
        """Many IKE SAs set up between two hosts; torn down only if the capture shows it."""
        pair = " and ".join(sorted(hosts))
        seen = (
            f"{deleted} SA(s) deleted between them in the capture"
            if deleted
            else f"no DELETE seen ({informational} INFORMATIONAL exchange(s) between them, encrypted)"
            if informational
            else "no DELETE seen: no INFORMATIONAL exchange between them in the capture"
        )
        torn = (
            "the tunnel is torn down and negotiated again instead of staying up"
            if deleted
            else "each is set up beside the earlier ones; whether those were torn down cannot be seen"
            if informational
            else "each is set up beside the earlier ones and none is torn down in the capture: many "
            "clients behind one address, a load generator, or an initiator starting again without "
            "closing what it had, which the capture cannot tell apart"
        )
        no_delete = {} if deleted else {
            "cause": "An initiator starting new IKE SAs without closing the earlier ones (a loop after a "
            "failure it does not report), many clients behind one address (NAT), or a load or test "
            "generator.",
            "remediation": "Find out whether the address is one host or many (NAT, test generator); if "
            "it is one initiator, check its log for why it starts again and the responder's list of "
            "IKE SAs for that peer (`swanctl --list-sas`, `ipsec trafficstatus`); keep one connection "
            "per peer pair (strongSwan `unique = replace`, libreswan `uniqueids=yes`).",
        }
        return self.finding(
            "delete-storm",
            frames=frames,
            title="IKE SAs set up again and again" + ("" if deleted else ", no DELETE seen"),
            evidence=[f"{n} new IKE SAs (IKE_SA_INIT) between {pair} within {span:.1f} s "
                      f"(frames {frames[0]}..{frames[-1]}); {seen}"],
            explanation=f"{n} IKE SAs were started between {pair} within {span:.0f} seconds: {torn}.",
            data={"setups": n, "seconds": round(span, 3), "kind": "setup", "deletes_seen": deleted},
            **no_delete,
        )
