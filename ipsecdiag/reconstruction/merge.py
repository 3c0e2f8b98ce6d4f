"""Exact merge of byte-range partial analyses of one capture (issue 12).

Workers (range_scan.py) account the ESP of their range and hand back every other frame. The
main process (ipsecdiag.parallel) feeds those frames, in global order, through the ordinary
decoder and Reconstructor, checking with :class:`EspCheck` that they give exactly the ESP
packets the workers accounted; between two of them it advances the reassembler's clock to the
latest pure-ESP frame (fragment expiry is driven by every frame's time).

:class:`FlowMerger` then joins the per-range flow states. A flow first seen in a range is
exactly the serial one (frame numbers offset). A flow that continues one of an earlier range
is joined when the serial tracker provably takes the same branch for every packet of the range
as the worker did (from a fresh flow): no pending or attempted sequence reset on either side,
the range's first sequence number above the earlier top, every seen-flag the worker read lies
above the earlier top (flags at or below it differ: the worker never saw those packets), no
2^31 jump that would read the ESN epoch differently, and the ESP decryptor is not carrying ESN
state. Counters add, evidence lists are concatenated under the same caps, the first packet's
idle gap is inserted. Otherwise the flow's first packets after the cut are replayed through
its serial state (cut_replay.py). Anything else raises :class:`Unmergeable` and the caller
analyses the capture serially: never a merged report that could differ from the serial one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..capture.split import ByteRange
from .cut_replay import CutProblem, TailEntry, join_after_prefix
from .esp_probe import FlowProbe, contiguous_ring
from .esp_tracker import MAX_EVENTS, MAX_FLOWS, MAX_IDLE, RECENT, FlowState
from .range_scan import SNAP_AT, DecryptorInfo, EspCall, FlowKey, RangeResult, scan_range, time_params
from .timeline import merged

# RangeResult and scan_range are the workers' (range_scan.py), named here for the mappers.
__all__ = ["EspCheck", "FlowMerger", "RangeResult", "Unmergeable", "scan_range"]

# decryption.esp.MAX_FAILED_FRAMES (reconstruction may not import decryption; a test holds them equal).
MAX_FAILED_FRAMES = 20
_M32 = 0xFFFFFFFF
_HALF = 1 << 31

# (range, frame base, flows at the cut, recent-packet ring, packets) -> (probes, counts)
Replay = Callable[
    [ByteRange, int, dict[FlowKey, FlowState], list[TailEntry], int], tuple[dict[FlowKey, FlowProbe], dict[FlowKey, int]]
]


class Unmergeable(Exception):
    """The partial results cannot be joined exactly; the message says why."""


class EspCheck:
    """The main pass's ``on_esp``: the ESP packets decoding a forwarded frame yields must be the
    ones its worker accounted (same order, same bytes); they are not accounted again."""

    def __init__(self) -> None:
        self.expected: list[EspCall] = []
        self.frame = 0
        self.mismatch: str | None = None

    def expect(self, frame: int, calls: tuple[EspCall, ...]) -> None:
        self.end_frame()
        self.frame = frame
        self.expected = list(reversed(calls))

    def end_frame(self) -> None:
        if self.expected and self.mismatch is None:
            self.mismatch = f"frame {self.frame}: ESP accounted in a range worker is not in the serial decode"
        self.expected = []

    def __call__(
        self, frame: int, ts: float, src: bytes, dst: bytes, sport: int, dport: int, data: bytes, off: int, end: int
    ) -> None:
        want = self.expected.pop() if self.expected and frame == self.frame else None
        if want != (src, dst, sport, dport, bytes(data[off:end])) and self.mismatch is None:
            self.mismatch = f"frame {frame}: ESP from decoding across a cut (fragments, TCP) the workers did not see"


def _offset_flow(f: FlowState, base: int) -> None:
    """Range-local frame numbers -> global ones."""
    if not base:
        return
    f.first_frame += base
    f.last_frame += base
    if f.max_reorder_depth:
        f.deepest_frame += base
    f.replay_events = [(fr + base, ts, s, why) for fr, ts, s, why in f.replay_events]
    f.dup_events = [(fr + base, o + base, s, dt) for fr, o, s, dt in f.dup_events]
    f.oow_events = [(fr + base, s, d) for fr, s, d in f.oow_events]
    f.reset_events = [(fr + base, ts, a, b) for fr, ts, a, b in f.reset_events]
    f.wrap_events = [(fr + base, ts) for fr, ts in f.wrap_events]
    f.idle = [(t0, t1, a + base, b + base) for t0, t1, a, b in f.idle]
    f.failed_frames = [(fr + base, ts) for fr, ts in f.failed_frames]
    if f.saved is not None:
        s = f.saved
        f.saved = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8] + base)


def _capped(a: list, b: list, cap: int) -> list:  # type: ignore[type-arg]
    """Serial appends while the list has room: the first ``cap`` of both, in order (either may
    be the tracker's empty tuple)."""
    return [*a, *b][:cap]


class FlowMerger:
    """Joins the ranges' flow states in range order into the serial end state.

    ``replay(result, base, flows, tail, upto)`` (cut_replay.replay_prefix bound to the file)
    re-runs a flow's first packets after a cut that cannot be joined directly; without it
    such a cut is Unmergeable."""

    def __init__(
        self, idle_gap: float, max_flows: int = MAX_FLOWS, track: int = 0, replay: Replay | None = None
    ) -> None:
        self.flows: dict[FlowKey, FlowState] = {}
        self.malformed: list[tuple[int, int, str]] = []
        self.idle_gap = idle_gap
        self.max_flows = max_flows
        self.track = track
        self.replay = replay
        self.joined = 0  # flows continued across a cut
        self.replayed = 0  # of those, joined after replaying their first packets
        # Per flow: the full sequence number at or below which its seen-ring may lack flags (it
        # was the worker's, which never saw the packets before its range), and the first number
        # of a contiguous numbering when the ring is the worker's shared scratch one.
        self.valid_above: dict[FlowKey, int] = {}
        self.lazy_lo: dict[FlowKey, int | None] = {}
        self.tail: list[TailEntry] = []  # the last RECENT ESP packets so far (the dup ring)

    def add(self, r: RangeResult, base: int) -> None:
        if r.overflow:
            raise Unmergeable(f"range {r.index}: more than {self.max_flows} ESP flows (summarised flows)")
        self.malformed += [(fr + base, off, why) for fr, off, why in r.malformed]
        failing: dict[FlowKey, str] = {}
        for key, w in r.flows.items():
            _offset_flow(w, base)
            snap = r.snaps.get(key)
            if snap is not None and base:
                for name in ("last_frame", "deepest_frame"):
                    if snap.values[name]:
                        snap.values[name] += base
            pre, post = r.prefix_probes.get(key), r.probes.get(key) or FlowProbe()
            for probe in (pre, post):
                if probe is not None and probe.max_depth:
                    probe.deepest_frame += base
            p = pre.joined(post) if pre is not None else post
            lazy = w.seq_min if w.seen is r.scratch else None
            m = self.flows.get(key)
            if m is None:
                if r.index and p.exhausted:
                    raise Unmergeable(f"range {r.index}: a repeated packet's original may lie before the cut")
                self.flows[key] = w
                self.valid_above[key], self.lazy_lo[key] = -1, lazy
                if len(self.flows) > self.max_flows:
                    raise Unmergeable(f"more than {self.max_flows} ESP flows in all (summarised flows)")
                continue
            self.joined += 1
            why = _join_problem(m, w, p)
            if why is None and p.exhausted:
                why = "a repeated packet's original may lie before the cut"
            if why is not None:
                failing[key] = f"range {r.index}: SPI {w.spi:#010x}: {why}"
                continue
            old = (m.seen, self.lazy_lo[key], (m.epoch << 32) | m.top)
            self._join(m, w, p)
            self._ring_after(key, m, old, lazy)
        if failing:
            self._replay(r, base, failing)
        self.tail = [*self.tail, *((ts, k, fr + base, b) for ts, k, fr, b in r.tail)][-RECENT:]

    def _replay(self, r: RangeResult, base: int, failing: dict[FlowKey, str]) -> None:
        """The failing flows' first packets of ``r`` through their serial state (cut_replay)."""
        if self.replay is None or r.range is None or r.nested:
            raise Unmergeable(next(iter(failing.values())))
        seeded: dict[FlowKey, FlowState] = {}
        before: dict[FlowKey, tuple[int, int]] = {}  # full top, resets at the cut
        for key in failing:
            m = self.flows[key]
            lo = self.lazy_lo[key]
            if lo is not None:
                m.seen = contiguous_ring(self.track, lo, m.top)
                self.lazy_lo[key] = None
            seeded[key] = m
            before[key] = ((m.epoch << 32) | m.top, m.resets)
        probes, counts = self.replay(r.range, base, seeded, self.tail, SNAP_AT)
        for key, why in failing.items():
            m, w = seeded[key], r.flows[key]
            problem = _decryptor_problem(m, w)
            if problem is not None:
                raise Unmergeable(f"{why}; {problem}")
            _add_decryption(m, w)  # the replay does not decrypt: the worker's results for the range
            m.timeline = merged(m.timeline, w.timeline)  # nor histogram: order-independent sums
            if probes[key].low_lookup is not None and probes[key].low_lookup <= self.valid_above[key]:
                raise Unmergeable(f"{why}; the replay reaches below what the flow's ring knows")
            snap = r.snaps.get(key)
            try:
                if snap is None:  # every packet of the range was replayed
                    if counts[key] != w.packets:
                        raise CutProblem("the replay saw other packets than the worker")
                else:
                    if counts[key] != SNAP_AT:
                        raise CutProblem("the replay saw other packets than the worker")
                    cut, resets = before[key]
                    if m.resets > resets:  # a new numbering since: no flag from before the range
                        cut = -1
                        self.valid_above[key] = -1
                    old = (m.seen, None, cut)
                    join_after_prefix(m, w, snap, r.probes.get(key) or FlowProbe(), cut)
                    self._ring_after(key, m, old, w.seq_min if w.seen is r.scratch else None)
            except CutProblem as exc:
                raise Unmergeable(f"{why}; {exc}") from None
            self.replayed += 1

    def _ring_after(
        self, key: FlowKey, m: FlowState, old: tuple[bytearray, int | None, int], lazy: int | None
    ) -> None:
        """The joined flow's seen-ring: the worker's (now ``m.seen``; ``lazy``: its contiguous
        numbering's start when it is the worker's scratch ring) with the flags of the numbers
        up to the cut (``old``: ring, its lazy start, the full top then) that are still in the
        window, so that a later cut can replay against it."""
        ring, old_lo, cut = old
        top = (m.epoch << 32) | m.top
        if top - self.track >= cut:  # nothing before the cut is in the window any more
            self.lazy_lo[key] = lazy
            return
        if old_lo is not None and lazy is not None and lazy == (cut + 1) & _M32 and top >> 32 == cut >> 32:
            self.lazy_lo[key] = old_lo  # one contiguous numbering across the cut
            return
        track = self.track
        if old_lo is not None:
            ring = contiguous_ring(track, old_lo, cut & _M32)
        new = contiguous_ring(track, lazy, m.top) if lazy is not None else m.seen
        # Slots of numbers up to the cut from the ring before it (the worker's are not the serial
        # flags there), the others from the worker's.
        keep = int.from_bytes(contiguous_ring(track, top - track + 1, cut))
        both = (int.from_bytes(new) & ~keep) | (int.from_bytes(ring) & keep)
        m.seen = bytearray(both.to_bytes(track))
        self.lazy_lo[key] = None

    def _join(self, m: FlowState, w: FlowState, p: FlowProbe) -> None:
        # The serial pass checks the idle gap on the range's first packet of the flow.
        idle = list(m.idle)
        dropped = m.idle_dropped + w.idle_dropped
        if w.first_ts - m.last_ts >= self.idle_gap:
            idle.append((m.last_ts, w.first_ts, m.last_frame, w.first_frame))
        idle += w.idle
        if len(idle) > MAX_IDLE:
            dropped += len(idle) - MAX_IDLE
            idle = idle[:MAX_IDLE]
        m.idle, m.idle_dropped = idle, dropped
        for name in (
            "packets", "bytes", "duplicates", "replays", "capture_dups", "dup_unverified", "reordered",
            "too_old", "out_of_window",
        ):  # fmt: skip
            setattr(m, name, getattr(m, name) + getattr(w, name))
        _add_decryption(m, w)
        m.max_len = max(m.max_len, w.max_len)
        m.timeline = merged(m.timeline, w.timeline)
        if w.max_reorder_depth > m.max_reorder_depth:
            m.max_reorder_depth, m.deepest_frame = w.max_reorder_depth, w.deepest_frame
        if p.low_reordered is not None and p.low_reordered < m.seq_min:
            m.seq_min = p.low_reordered
        m.replay_events = _capped(m.replay_events, w.replay_events, MAX_EVENTS)
        m.dup_events = _capped(m.dup_events, w.dup_events, MAX_EVENTS)
        m.oow_events = _capped(m.oow_events, w.oow_events, MAX_EVENTS)
        m.wrap_events = _capped(m.wrap_events, w.wrap_events, MAX_EVENTS)
        m.epoch += w.epoch
        m.top, m.seen = w.top, w.seen
        m.seq_last, m.last_ts, m.last_frame = w.seq_last, w.last_ts, w.last_frame


def _add_decryption(m: FlowState, w: FlowState) -> None:
    """The worker's decryption results for the range (they do not depend on sequence state
    when _decryptor_problem is None), after the serial ones before it."""
    for name in ("truncated", "decrypted", "integrity_failed", "undecryptable"):
        setattr(m, name, getattr(m, name) + getattr(w, name))
    m.failed_frames = _capped(m.failed_frames, w.failed_frames, MAX_FAILED_FRAMES)
    for code, n in w.inner.items():
        m.inner[code] = m.inner.get(code, 0) + n
    if isinstance(m.decryptor, DecryptorInfo) and m.decryptor.esn is None:
        m.decryptor = w.decryptor  # nothing decrypted before: the worker's state is the serial one


def _join_problem(m: FlowState, w: FlowState, p: FlowProbe) -> str | None:
    """None when the serial tracker takes the worker's branch for every packet of the range."""
    if m.saved is not None:
        return "a sequence reset is pending at the cut"
    if w.resets or w.saved is not None or p.reset_calls:
        return "a sequence reset after the cut"
    s0 = w.seq_first
    if s0 <= m.top:
        return "the first sequence number after the cut is not above the one before"
    if s0 - m.top >= _HALF and m.epoch:
        return "a 2^31 jump at the cut after an ESN wrap"
    if p.low_lookup is not None and p.low_lookup <= m.top:
        return "reordering or a repeat reaches below the cut"
    if p.half_jumps and m.epoch:
        return "a 2^31 jump after an ESN wrap before the cut"
    return _decryptor_problem(m, w)


def _decryptor_problem(m: FlowState, w: FlowState) -> str | None:
    """None when the worker's fresh decryptor decrypted the range as the serial one would."""
    md, wd = m.decryptor, w.decryptor
    if (md is None) != (wd is None) or (md is False) != (wd is False):
        return "the flow's key lookup differs across the cut"
    # esn None before the cut: the serial decryptor is still a fresh one, like the worker's.
    # esn False: stateless; the worker's fresh one tried non-ESN first too and must not have
    # settled on ESN. esn True: the high-order bits carried across the cut are unknown here.
    if isinstance(md, DecryptorInfo) and (md.esn or (md.esn is False and getattr(wd, "esn", None))):
        return "ESN state of a decrypted SA crosses the cut"
    return None


def merge_times(results: list[RangeResult], make: Callable[[], Any]) -> Any:
    """The reader's time-order record (capture/timesteps.StepsBack, built by ``make``) of the
    whole capture from its ranges: each range's first frames judged here against the latest
    time before them, the rest taken from the worker when the range's own latest time had
    caught up with the capture's by then (else Unmergeable)."""
    params = time_params()
    if params is None:
        raise Unmergeable("the worker and main process disagree on the time-order record")
    tol, gap, shown, _ = params
    sb = make()
    top, top_frame, prev = float("-inf"), 0, float("-inf")
    base = 0
    for r in results:
        t = r.times
        if t is None:
            if r.frames:
                raise Unmergeable(f"range {r.index}: no time-order record")
            continue
        before_range = top
        for frame, ts in t.prefix:
            frame += base
            if ts >= top:
                top, top_frame = ts, frame
            elif ts < top - tol:
                sb.add(frame, ts, top_frame, top)
            if not -tol <= ts - prev <= gap:
                sb.jump(frame, prev, ts)
            prev = ts
        if r.frames > len(t.prefix):
            if t.prefix_top < before_range:
                raise Unmergeable(f"range {r.index}: its first frames are older than the capture before it")
            sb.count += t.count
            sb.largest = max(sb.largest, t.largest)
            for frame, ts, tf, tt in t.first:
                if len(sb.first) < shown:
                    sb.first.append((frame + base, ts, tf + base, tt))
            for frame, p, ts in t.jumps:
                sb.jump(frame + base, p, ts)
            top, top_frame = t.top, t.top_frame + base
            prev = r.last_ts if r.last_ts is not None else prev
        base += r.frames
    sb.end = None if prev == float("-inf") else prev
    return sb
