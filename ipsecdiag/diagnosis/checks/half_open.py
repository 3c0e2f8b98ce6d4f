"""Half-open floods and scans (issue 14): the never-answered first requests that the
reconstruction summarised instead of keeping one IKE SA each (reconstruction.halfopen).

One finding per flooded responder, per scanning initiator and for the overflow, with the count,
the rate, the first and last time and the initiators (or responders) sending most, worded for
what the pattern most likely is; and one capture-health finding that says what was summarised.

Many initiators that each retransmit their request unchanged (same SPI, with back-off: RFC 7296
§2.1) are clients of a responder they cannot reach, not a flood: forged-source floods and
scanners send each SPI once. They give ``ike-unanswered`` (an error, as for a handful of such
clients), not a flood warning.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...reconstruction.halfopen import HalfOpenSummary
from ...reconstruction.model import Finding, Report
from ..base import Check, CheckContext
from ..repeats import _time

SHOWN = 5  # summaries named one by one in the capture-health finding
RETRY_RATE = 1.0  # one initiator below this many requests per second: a client retrying
FLOOD_RATE = 10.0  # many initiators at or above this rate: a flood rather than clients retrying


def clients_retrying(s: HalfOpenSummary) -> bool:
    """Several initiators toward one responder, most of whose requests were retransmitted."""
    return s.kind == "flood" and _initiators(s) > 1 and 2 * s.retried > s.requests - s.counted_only


def _what(s: HalfOpenSummary) -> str:
    return (
        "IKE_SA_INIT requests"
        if not s.ikev1
        else "IKEv1 Main/Aggressive Mode first messages"
        if s.ikev1 == s.requests
        else f"IKE_SA_INIT requests and IKEv1 first messages ({s.ikev1} IKEv1)"
    )


def _initiators(s: HalfOpenSummary) -> int:
    return len(s.initiators) + (1 if s.other_initiators else 0)


def _responders_text(s: HalfOpenSummary) -> str:
    n = len(s.responders)
    return f"more than {n} responders" if s.other_responders else f"{n} responder{'s' if n != 1 else ''}"


def _initiators_text(s: HalfOpenSummary) -> str:
    n = len(s.initiators)
    return f"more than {n} initiators" if s.other_initiators else f"{n} initiator{'s' if n > 1 else ''}"


def _reading(s: HalfOpenSummary) -> tuple[str, str]:
    """(title, what the pattern most likely is) for a summary."""
    rate = s.rate
    if s.kind == "scan":
        return (
            f"IKE scan from {s.initiator}: {s.requests} unanswered requests to {len(s.responders)} responders",
            f"one initiator, {s.initiator}, sent first requests with fresh SPIs to {len(s.responders)} "
            "different responders and none answered: the pattern of a scan for IKE responders (ike-scan "
            "and the like), or a client configured with many peers it cannot reach",
        )
    if s.kind == "overflow":
        return (
            f"{s.requests} more unanswered IKE requests toward {_responders_text(s)} summarised",
            "more never-answered first requests than the analysis shows as IKE SAs one by one; each "
            "responder had too few of them to call it a flood",
        )
    who = f"{s.responder}:{s.port}"
    n = _initiators(s)
    if n == 1:
        (ini,) = s.initiators or {"an initiator beyond the limit": 0}
        if rate is None or rate < RETRY_RATE:
            every = f", about every {1 / rate:.0f} s" if rate else ""
            return (
                f"{ini} retried IKE SA setup toward {who} {s.requests} times, never answered",
                f"one initiator, {ini}, kept starting new IKE SAs (a fresh SPI each time{every}) and "
                f"{who} never answered: a client retrying while the responder is down, not listening on "
                "that port, filtered on the path, or ignoring this client",
            )
        return (
            f"IKE flood from {ini} toward {who}: {s.requests} half-open IKE SAs",
            f"one host sent {s.requests} first requests with fresh SPIs at {rate:.0f} per second: a client "
            "looping without back-off, or a denial-of-service attempt from a single source",
        )
    if rate is not None and rate >= FLOOD_RATE:
        counted = sum(s.initiators.values())
        spoofed = counted <= 2 * len(s.initiators)  # about one request per initiator
        return (
            f"IKE flood toward {who}: {s.requests} half-open IKE SAs",
            f"{s.requests} first requests from {_initiators_text(s)} at {rate:.0f} per second"
            + (
                ", most sending a single one: the pattern of a denial-of-service flood with forged "
                "(random) source addresses"
                if spoofed
                else ": a denial-of-service flood from several hosts, or many clients retrying in a loop"
            ),
        )
    return (
        f"{n} initiators never answered by {who} ({s.requests} requests)",
        f"{n} initiators sent first requests that {who} never answered, at a low rate: clients "
        "that cannot reach a responder that is down or filtered, or a slow scan or flood",
    )


class HalfOpenCheck(Check):
    name = "half-open"
    finding_ids = ("ike-half-open-flood", "ike-unanswered", "capture-health")

    def run(self, ctx: CheckContext) -> Iterable[Finding]:
        r = ctx.report
        for s in r.half_open:
            yield self._unreachable(s) if clients_retrying(s) else self._flood(s)
        yield from self._summarised(r)

    def _unreachable(self, s: HalfOpenSummary) -> Finding:
        who = f"{s.responder}:{s.port}"
        n = _initiators(s)
        title = f"{who} answered none of {n} initiators, which retried"
        names = ", ".join(list(s.initiators)[:SHOWN]) + (f" and {n - SHOWN} more" if n > SHOWN else "")
        return self.finding(
            "ike-unanswered",
            frames=[s.first_frame, s.last_frame],
            evidence=[
                f"{title} ({names}): {s.requests} IKE SA setup(s) ({_what(s)}), {s.retried} of them "
                f"retransmitted unchanged (same SPI), {s.requests + s.retransmissions} request(s) sent, "
                f"first {_time(s.first_ts)} (frame {s.first_frame}), last {_time(s.last_ts)}",
                "clients retransmitting with the same SPI are waiting for an answer (RFC 7296 §2.1); "
                "a flood with forged sources or a scan sends each SPI once",
            ],
            title=title,
            explanation=(
                f"{title}: no response to any first request. One silent side and many clients: that "
                "side is down, not listening on that port, or filtered (or it ignores them all); the "
                "clients themselves are not the likely cause."
            ),
            data={
                "kind": "clients-retrying",
                "responder": s.responder,
                "port": s.port,
                "half_open": s.requests,
                "retried": s.retried,
                "retransmissions": s.retransmissions,
                "initiators": n,
                "first_time": _time(s.first_ts),
                "last_time": _time(s.last_ts),
            },
        )

    def _flood(self, s: HalfOpenSummary) -> Finding:
        title, reading = _reading(s)
        rate = f", {s.rate:.1f} per second" if s.rate else ""
        where = f"to {s.responder}:{s.port}" if s.kind == "flood" else f"to {_responders_text(s)}"
        top = ", ".join(f"{a} ({n})" for a, n in s.top())
        more = f"; {s.other_initiators} more from further initiators" if s.other_initiators else ""
        ev = [
            f"{s.requests} {_what(s)} {where} never answered, from {_initiators_text(s)}{rate}, first "
            f"{_time(s.first_ts)} (frame {s.first_frame}), last {_time(s.last_ts)}",
            f"most requests from: {top}{more}"
            if max(s.initiators.values(), default=0) > 1
            else f"{'none of the first ' + str(len(s.initiators)) if s.other_initiators else 'no'} initiator"
            f"{'s' if s.other_initiators else ''} started more than one IKE SA (the first: "
            f"{', '.join(list(s.initiators)[:SHOWN])})",
            f"{s.retried} of the {s.requests} requests retransmitted unchanged (same SPI)"
            if s.retried
            else "no request was retransmitted (each SPI sent once, unlike a client waiting for an answer)",
        ]
        if s.responders:
            ev.append("most requests to: " + ", ".join(f"{a} ({n})" for a, n in s.responders.most_common(SHOWN)))
        return self.finding(
            "ike-half-open-flood",
            frames=[s.first_frame],
            evidence=ev,
            title=title,
            explanation=reading[0].upper() + reading[1:] + ".",
            data={
                "kind": s.kind,
                "responder": s.responder or None,
                "port": s.port or None,
                "initiator": s.initiator or None,
                "half_open": s.requests,
                "rate": s.rate,
                "ikev1": s.ikev1,
                "initiators": _initiators(s),
                "responders": len(s.responders) or (1 if s.responder else 0),
                "first_time": _time(s.first_ts),
                "last_time": _time(s.last_ts),
                "top_initiators": [{"address": a, "requests": n} for a, n in s.top()],
            },
        )

    def _summarised(self, r: Report) -> Iterable[Finding]:
        if not r.half_open:
            return
        total = sum(s.requests for s in r.half_open)
        counted = sum(s.counted_only for s in r.half_open)
        ev = [
            f"{s.requests} toward {s.responder}:{s.port}" if s.kind == "flood" else
            f"{s.requests} from {s.initiator} toward {len(s.responders)} responders" if s.kind == "scan" else
            f"{s.requests} beyond the IKE SAs shown, toward {_responders_text(s)}"
            for s in r.half_open[:SHOWN]
        ]  # fmt: skip
        if len(r.half_open) > SHOWN:
            ev.append(f"… and {len(r.half_open) - SHOWN} more summaries")
        if counted:
            ev.append(
                f"{counted} of them only counted (beyond the compact limit): retransmissions among them "
                "are counted as requests"
            )
        yield self.finding(
            "capture-health",
            # no frames: the flood and scan findings carry them (and so come first in the report)
            evidence=ev,
            title=f"Unanswered IKE requests summarised, not shown as IKE SAs ({total})",
            explanation=(
                f"{total} first requests of IKE SAs that were never answered are counted in the findings "
                "above (flood, scan, clients retrying) instead of one IKE SA each; a request that was answered is "
                "reconstructed in full."
            ),
            cause=(
                "Many clients whose requests a responder never answered"
                if all(clients_retrying(s) for s in r.half_open)
                else "A flood or scan of IKE requests"
            )
            + ": more never-answered first requests than the analysis shows one by one.",
            remediation="See the flood, scan and unanswered-request findings; to look at the requests one by one, filter the "
            "capture to the peers of interest (`tcpdump -r in.pcap -w out.pcap host A and host B`).",
            data={"kind": "half-open-summarised", "summarised": total, "counted_only": counted},
        )
