"""Where the capture's record times do not go forward: frames whose time steps back (a capture
merged from several files with ``mergecap -a``, taken on several interfaces at once, or whose
clock was stepped) and gaps with no frame at all (a capture paused, or stitched from snippets).

The decoder sees every record's time, so it counts these over every frame of the capture (a few
comparisons per frame), not only over the frames the analysis keeps a time for.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# Two interfaces (or a bond) stamped by different clocks or queues jitter by a few ms: a frame
# this much older than one captured before it is no evidence of a merged capture.
TOLERANCE = 0.010
SHOWN = 3  # steps back kept for the evidence
# A silence longer than this between two frames splits the capture into segments. It is longer
# than the first retransmission interval of IKE implementations (strongSwan 4 s by default,
# charon.retransmit_timeout; libreswan 0.5 s, doubling; RFC 7296 §2.1 leaves it to them), so a
# request followed by such a silence could not have shown its retransmission.
GAP_SECONDS = 10.0
MAX_BOUNDARIES = 20_000  # beyond this many the segments are not kept (``complete`` False)


@dataclass
class StepsBack:
    """Frames older, by more than :data:`TOLERANCE`, than the latest time of the frames read
    before them (``count``, ``largest``; ``first`` holds the first :data:`SHOWN` as (frame, ts,
    the earlier frame with the latest time so far, its ts)), and the boundaries where the
    capture's time jumps (forward by more than :data:`GAP_SECONDS`, or back by more than
    :data:`TOLERANCE`) as (frame after the jump, time of the frame before it, its own time)."""

    count: int = 0
    largest: float = 0.0  # seconds, the deepest step back
    first: list[tuple[int, float, int, float]] = field(default_factory=list)
    boundaries: list[tuple[int, float, float]] = field(default_factory=list)
    complete: bool = True  # every boundary kept
    end: float | None = None  # the last frame's time
    _union: list[tuple[float, float]] | None = field(default=None, repr=False, compare=False)

    def add(self, frame: int, ts: float, top_frame: int, top_ts: float) -> None:
        self.count += 1
        self.largest = max(self.largest, top_ts - ts)
        if len(self.first) < SHOWN:
            self.first.append((frame, ts, top_frame, top_ts))

    def jump(self, frame: int, prev_ts: float, ts: float) -> None:
        if len(self.boundaries) < MAX_BOUNDARIES:
            self.boundaries.append((frame, prev_ts, ts))
        else:
            self.complete = False

    def segments(self) -> list[tuple[float, float]]:
        """The time span of each run of frames between two boundaries, in frame order."""
        out = []
        for i, (_frame, _prev, start) in enumerate(self.boundaries):
            stop = self.boundaries[i + 1][1] if i + 1 < len(self.boundaries) else self.end
            out.append((start, start if stop is None else stop))
        return out

    def has_frame_within(self, lo: float, hi: float) -> bool | None:
        """Whether any frame's time falls in (lo, hi] (hi - lo at least GAP_SECONDS: a segment
        crossing lo has a frame within GAP_SECONDS after it); None when not every boundary was
        kept."""
        if not self.complete:
            return None
        if self._union is None:
            union: list[tuple[float, float]] = []
            for a, b in sorted((min(s), max(s)) for s in self.segments()):
                if union and a <= union[-1][1]:
                    union[-1] = (union[-1][0], max(union[-1][1], b))
                else:
                    union.append((a, b))
            self._union = union
        at = bisect.bisect_left(self._union, (lo, float("inf")))
        # the interval starting at or before lo reaches past it, or the next one starts by hi
        if at and self._union[at - 1][1] > lo:
            return True
        return at < len(self._union) and self._union[at][0] <= hi

    def next_boundary(self, frame: int) -> tuple[int, float, float] | None:
        """The first boundary after ``frame`` (where the capture's time jumps), if kept."""
        at = bisect.bisect_right(self.boundaries, (frame, float("inf"), float("inf")))
        return self.boundaries[at] if at < len(self.boundaries) else None
