"""One live session: capture feed -> (kept on disk) -> the analyze pipeline -> snapshots.

:class:`LiveSession` turns the capture feed into the frame source of
:func:`ipsecdiag.pipeline.analyze_frames` (the same pass ``analyze`` runs over a file), yielding
``None`` while no packet comes so that snapshots keep arriving. It owns the stop conditions
(Ctrl-C, ``--duration``, ``--count``, the capture ending by itself) and stops the capture so
that everything the tool had buffered is still read and analysed. :class:`FindingTracker` and
:class:`RateMeter` turn successive snapshots into "new finding" events and ESP rates; their
state is per finding and per ESP flow, nothing per packet.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import FrameType

from ..capture.feed import FrameFeed
from ..capture.live import STOP_TIMEOUT
from ..capture.reader import Frame
from ..capture.ring import CaptureKeeper
from ..reconstruction.model import EspFlow, Finding

IDLE_POLL = 0.1  # seconds the frame source waits for a batch before yielding None


class LiveSession:
    """The frame source of a live analysis, with its stop conditions."""

    def __init__(
        self,
        feed: FrameFeed,
        *,
        keeper: CaptureKeeper | None = None,
        duration: float | None = None,
        count: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.feed = feed
        self.keeper = keeper
        self.duration = duration
        self.count = count
        self.clock = clock
        self.frames_seen = 0
        self.last_ts: float | None = None  # capture time of the newest frame
        self.started = clock()
        self.stop_reason = ""
        self.stopping = False
        self._stop_requested = threading.Event()
        self._forced = False

    # -- stopping -------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Stop after the frames the capture tool still holds (safe from a signal handler)."""
        if not self.stop_reason:
            self.stop_reason = reason
        if self._stop_requested.is_set():
            self._forced = True  # a second Ctrl-C: do not wait for the tool's last frames
        self._stop_requested.set()

    def install_sigint(self) -> Callable[[], None]:
        """Ctrl-C (and SIGTERM) end the session cleanly; returns a function restoring the old handlers."""

        def handler(signum: int, frame: FrameType | None) -> None:
            self.request_stop("interrupted" if signum == signal.SIGINT else "terminated")

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)

        return restore

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    # -- the frame source -----------------------------------------------------------------
    def frames(self) -> Iterator[Frame | None]:
        feed, keeper = self.feed, self.keeper
        drain_until: float | None = None
        try:
            while True:
                if drain_until is None and self._should_stop():
                    self.stopping = True
                    feed.stop()
                    drain_until = self.clock() + STOP_TIMEOUT
                if drain_until is not None and (self._forced or self.clock() > drain_until):
                    break
                batch = feed.get(IDLE_POLL)
                if batch is None:
                    if not self.stop_reason:
                        self.stop_reason = "capture ended"
                    break
                if not batch:
                    yield None
                    continue
                if self.count is not None:
                    room = self.count - self.frames_seen
                    if room <= 0:
                        continue  # draining after --count: the rest is not part of the session
                    batch = batch[:room]
                self.frames_seen += len(batch)
                self.last_ts = batch[-1][1]
                if keeper is not None:
                    for fr in batch:
                        keeper.write(fr)
                yield from batch
        finally:
            feed.close()
            if keeper is not None:
                keeper.close()
        if feed.error is not None:
            raise feed.error

    def _should_stop(self) -> bool:
        if self._stop_requested.is_set():
            return True
        if self.duration is not None and self.elapsed >= self.duration:
            self.stop_reason = self.stop_reason or f"--duration {self.duration:g}s reached"
            return True
        if self.count is not None and self.frames_seen >= self.count:
            self.stop_reason = self.stop_reason or f"--count {self.count} reached"
            return True
        return False


def finding_key(f: Finding) -> tuple[str, str, int]:
    """What makes a finding "the same" across snapshots: its id, IKE SA and first frame
    (frames are appended as evidence accumulates; the first one stays)."""
    return (f.id, f.ike_sa or "", f.frames[0] if f.frames else 0)


class FindingTracker:
    """Which findings of a snapshot are new, and which earlier ones the analysis withdrew (a
    request counted as unanswered whose response then arrived)."""

    def __init__(self) -> None:
        self.current: dict[tuple[str, str, int], Finding] = {}

    def update(self, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
        now = {finding_key(f): f for f in findings}
        new = [f for k, f in now.items() if k not in self.current]
        gone = [f for k, f in self.current.items() if k not in now]
        self.current = now
        return new, gone


def replacements(new: list[Finding], gone: list[Finding]) -> dict[int, Finding]:
    """The gone findings that a new one of the same id replaces, by ``id()`` of the new one: the
    analysis refined them as the exchange went on (an IKE SA whose SPIr became known, an earlier
    first frame), so they share frames. A refinement is not a withdrawal (review 3, item 13)."""
    out: dict[int, Finding] = {}
    left = list(gone)
    for f in new:
        old = next((g for g in left if g.id == f.id and set(g.frames) & set(f.frames)), None)
        if old is not None:
            left.remove(old)
            out[id(f)] = old
    return out


class RateMeter:
    """ESP packet and byte rates per flow from successive snapshots: the counts now against
    those of about ``window`` seconds ago. Keeps a few samples per flow that is still present."""

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._hist: dict[tuple[int, str, str], deque[tuple[float, int, int]]] = {}

    def update(self, flows: list[EspFlow], wall: float) -> dict[tuple[int, str, str], tuple[float, float]]:
        rates: dict[tuple[int, str, str], tuple[float, float]] = {}
        hist: dict[tuple[int, str, str], deque[tuple[float, int, int]]] = {}
        for f in flows:
            key = (f.spi, f.src, f.dst)
            h = self._hist.get(key) or deque(maxlen=16)
            h.append((wall, f.packets, f.bytes))
            while len(h) > 2 and wall - h[1][0] >= self.window:
                h.popleft()
            t0, p0, b0 = h[0]
            dt = wall - t0
            rates[key] = ((f.packets - p0) / dt, (f.bytes - b0) / dt) if dt > 0 else (0.0, 0.0)
            hist[key] = h
        self._hist = hist  # flows gone from the snapshot take their samples with them
        return rates
