"""Whether the capture's record times go forward with its frames (see diagnosis/timeorder.py
for what the analysis judges on time and what it cannot). Here so the renderers, which read the
report only, can tell too: out of time order they print what follows frame order as not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..capture.timesteps import GAP_SECONDS, SHOWN, TOLERANCE
from .model import ExchangeRecord, MessageRecord, Report

# What the renderers print instead of what follows frame order in a capture out of time order.
NOT_JUDGED = "not judged: capture out of order"


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
    """Frames older than a frame captured before them, by more than :data:`TOLERANCE`.
    ``every_frame``: counted over every frame as the capture was read; otherwise over the
    frames the analysis keeps a time for (IKE messages, each ESP flow's first and last packet
    and its sequence events, NAT-T keepalives, ICMP errors)."""

    inversions: int = 0
    largest: float = 0.0  # seconds, the deepest step back
    first: tuple[Inversion, ...] = field(default_factory=tuple)  # the first SHOWN
    every_frame: bool = True

    @property
    def ordered(self) -> bool:
        return self.inversions == 0


def time_order(r: Report) -> TimeOrder:
    """The steps back the reader counted over every frame, or, when the capture was not read
    in one pass (byte ranges, live snapshots), those among the frames the report keeps a time
    for, compared with the latest time of the frames before them (frame order)."""
    steps = r.source.steps_back
    if steps is not None:
        return TimeOrder(steps.count, steps.largest, tuple(Inversion(*x) for x in steps.first))
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
    return TimeOrder(count, largest, tuple(first), every_frame=False)


def out_of_order(r: Report) -> bool:
    """Whether the capture is out of time order as capture-health reports it: ESP sequence
    reordering and each ESP flow's first and last packet (frame order) are then not judged."""
    return not time_order(r).ordered


def flow_times(first_ts: float, last_ts: float) -> tuple[float, float]:
    """An ESP flow's first and last packet times as an interval: the tracker records the first
    and last packet in frame order, which out of time order may be the other way round."""
    return (first_ts, last_ts) if first_ts <= last_ts else (last_ts, first_ts)


def capture_gap_after(r: Report, m: MessageRecord) -> str | None:
    """Why the capture cannot show the request ``m`` unanswered, or None: it was sent once and
    the capture holds no frame in the :data:`GAP_SECONDS` after it, longer than any sender waits
    before retransmitting (RFC 7296 §2.1). The capture was paused, stopped or stitched from
    snippets (in frame order the next frame comes much later, or steps back in time), so neither
    an answer nor a retransmission could show. None too when the capture was not read in one
    pass (byte ranges, live): its gaps are not known."""
    steps = r.source.steps_back
    if steps is None or m.retransmissions or not m.transmissions:
        return None
    sent = m.transmissions[-1]
    if steps.has_frame_within(sent.ts, sent.ts + GAP_SECONDS) is not False:
        return None
    after = steps.next_boundary(sent.frames[-1])
    if after is None:
        end = steps.end if steps.end is not None else sent.ts
        return f"the capture ends {end - sent.ts:.1f} s later"
    frame, before, ts = after
    if ts < before:
        return f"no frame in the {GAP_SECONDS:.0f} s after it (at frame {frame} the capture steps back {before - ts:.0f} s)"
    return f"no frame in the {GAP_SECONDS:.0f} s after it (the next, frame {frame}, comes {ts - sent.ts:.0f} s later)"


@dataclass(frozen=True)
class Unanswered:
    """What the capture shows of a request without a response, as the ike-unanswered check
    reads it: ``in-flight`` (sent once within ``IN_FLIGHT_SECONDS`` of the capture's end: an
    answer may still have been on its way), ``gap`` (sent once before a capture gap: the
    outcome is unknown) or ``lost`` (the capture went on and shows no answer). ``why`` says
    how far before the end (in-flight) or which gap (gap)."""

    kind: Literal["in-flight", "gap", "lost"]
    why: str = ""

    def words(self, request: str) -> str:
        """What the ladders (terminal and HTML) write for ``request`` ("IKE_AUTH #1"). Only a
        ``lost`` one reads "no response": the others are no evidence of a silent peer."""
        if self.kind == "in-flight":
            return f"{request}: capture ended before a response could arrive ({self.why})"
        if self.kind == "gap":
            return f"no response to {request} seen: capture gap after it (outcome unknown)"
        return f"no response to {request}"


def unanswered_outcome(r: Report, e: ExchangeRecord) -> Unanswered | None:
    """None when ``e`` is not :attr:`ExchangeRecord.unanswered`; otherwise the model's two
    readings in the check's order: not :meth:`ExchangeRecord.unanswered_at` the capture's end
    is ``in-flight``, then :func:`capture_gap_after` the request as last sent is ``gap``."""
    if not e.unanswered:
        return None
    last = e.last_sent
    assert last is not None  # unanswered implies a request / a message
    end = r.source.last_ts
    if end is not None and not e.unanswered_at(end):
        before = end - last.transmissions[-1].ts
        return Unanswered("in-flight", f"sent {before:.1f} s before the end" if before >= 0.05 else "sent at the end")
    gap = capture_gap_after(r, last)
    return Unanswered("lost") if gap is None else Unanswered("gap", gap)
