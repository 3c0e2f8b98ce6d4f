"""Whether the capture's record times go forward with its frames.

A capture merged from several files, or taken on several interfaces at once (``-i any``, a
bond, a mirror of two ports), may hold frames out of time order. The reconstruction puts each
IKE SA's messages and transmissions in time order (reconstruction.ike_sas.in_time_order) and the
capture's span is its earliest and latest time, so spans, retransmission intervals and liveness
checks are judged on time. What follows frame order is the ESP tracker's per-flow view: a
flow's first and last packet, sequence reordering and replays, idle gaps. The checks that read
those say what they cannot judge when the capture is out of order; capture-health says it once.

Only the frames the analysis keeps a time for are compared (IKE messages, each ESP flow's first
and last packet and its sequence events, NAT-T keepalives, ICMP errors): they are the times the
diagnoses use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..reconstruction.model import MessageRecord, Report

# Two interfaces (or a bond) stamped by different clocks or queues jitter by a few ms: a frame
# this much older than one captured before it is no evidence of a merged capture.
TOLERANCE = 0.010
SHOWN = 3  # inversions named in the evidence


@dataclass(frozen=True)
class Inversion:
    frame: int
    ts: float
    before_frame: int  # the earlier frame with the latest time so far
    before_ts: float

    @property
    def back(self) -> float:
        return self.before_ts - self.ts


@dataclass(frozen=True)
class TimeOrder:
    """Frames older than a frame captured before them, by more than :data:`TOLERANCE`."""

    inversions: int = 0
    largest: float = 0.0  # seconds, the deepest step back
    first: tuple[Inversion, ...] = field(default_factory=tuple)  # the first :data:`SHOWN`

    @property
    def ordered(self) -> bool:
        return self.inversions == 0


def time_order(r: Report) -> TimeOrder:
    """Compare the record time of every frame the report keeps a time for with the latest time
    of the frames before it (frame order)."""
    events: dict[int, float] = {}
    for sa in r.ike_sas:
        for ex in sa.exchanges:
            for m in ex.all_messages():
                for t in m.transmissions:
                    events.setdefault(t.frames[0], t.ts)
    for f in r.esp_flows:
        events.setdefault(f.first_frame, f.first_ts)
        events.setdefault(f.last_frame, f.last_ts)
        for fr, ts, *_ in (*f.seq.replay_events, *f.seq.reset_events, *f.seq.wrap_events):
            events.setdefault(fr, ts)
    for k in r.keepalives:
        events.setdefault(k.frame, k.ts)
    for e in r.icmp_errors:
        events.setdefault(e.frame, e.ts)
    count, largest, first = 0, 0.0, []
    top_frame, top_ts = 0, float("-inf")
    for fr in sorted(events):
        ts = events[fr]
        if ts < top_ts - TOLERANCE:
            count += 1
            largest = max(largest, top_ts - ts)
            if len(first) < SHOWN:
                first.append(Inversion(fr, ts, top_frame, top_ts))
        elif ts > top_ts:
            top_frame, top_ts = fr, ts
    return TimeOrder(count, largest, tuple(first))


def flow_times(first_ts: float, last_ts: float) -> tuple[float, float]:
    """An ESP flow's first and last packet times as an interval: the tracker records the first
    and last packet in frame order, which out of time order may be the other way round."""
    return (first_ts, last_ts) if first_ts <= last_ts else (last_ts, first_ts)


def sent_times(m: MessageRecord, dup_seconds: float) -> list[float]:
    """When a message was sent, its transmissions in time order without the capture's own
    copies: a copy within ``dup_seconds`` of the previous one (the same packet seen on two
    interfaces or a mirror port) is not a retransmission."""
    out: list[float] = []
    for t in sorted(t.ts for t in m.transmissions):
        if not out or t - out[-1] > dup_seconds:
            out.append(t)
    return out
