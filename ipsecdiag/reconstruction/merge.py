"""Exact merge of byte-range partial analyses of one capture (issue 12).

A worker (:func:`scan_range`) reads one :class:`~ipsecdiag.capture.split.ByteRange` and keeps
only the ESP accounting: its own :class:`EspTracker` (and ESP decryption, keys inherited by
fork) sees every ESP packet of the range. A frame whose decoding did anything but hand over
exactly one ESP packet (IKE, ICMP, keepalives, malformed or truncated frames, IP fragments and
TCP segments, which touch the decoder's reassembly state) goes back raw, with the ESP packets
the worker accounted from it. The main process (ipsecdiag.parallel) feeds those frames, in
global order, through the ordinary decoder and Reconstructor, checking that they give exactly
the ESP packets the workers accounted; between two of them it advances the reassembler's
clock to the latest pure-ESP frame (fragment expiry is driven by every frame's time).

:class:`FlowMerger` then joins the per-range flow states. A flow first seen in a range is
exactly the serial one (frame numbers offset). A flow that continues one of an earlier range
is joined when the serial tracker provably takes the same branch for every packet of the range
as the worker did (from a fresh flow): no pending or attempted sequence reset on either side,
the range's first sequence number above the earlier top, every seen-flag the worker read lies
above the earlier top (flags at or below it differ: the worker never saw those packets), no
2^31 jump that would read the ESN epoch differently, and the ESP decryptor is not carrying ESN
state. Counters add, evidence lists are concatenated under the same caps, the first packet's
idle gap is inserted. Anything else raises :class:`Unmergeable` and the caller analyses the
capture serially: never a merged report that could differ from the serial one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..capture.decode import Decoder
from ..capture.model import FragmentGroup, IcmpError, IkeDatagram
from ..capture.split import ByteRange, open_range, range_problem
from .cut_replay import CutProblem, TailEntry, join_after_prefix
from .esp_tracker import (
    MAX_EVENTS,
    MAX_FLOWS,
    MAX_IDLE,
    RECENT,
    EspHook,
    EspTracker,
    FlowProbe,
    FlowSnap,
    FlowState,
    contiguous_ring,
)
from .options import AnalysisOptions

# decryption.esp.MAX_FAILED_FRAMES (reconstruction may not import decryption; a test holds them equal).
MAX_FAILED_FRAMES = 20
# Frames a worker hands back to the main pass, at most (bytes): a capture mostly of IKE, TCP or
# fragments gains nothing from ranges and is analysed in one pass instead of held in memory.
MAX_FORWARD_BYTES = 24 * 1024 * 1024
_M32 = 0xFFFFFFFF
_HALF = 1 << 31

FlowKey = tuple[bytes, bytes, bytes, int, int]
EspCall = tuple[bytes, bytes, int, int, bytes]  # src, dst, sport, dport, ESP bytes
# local frame, ts, linktype, data, orig_len, latest pure-ESP time before it, ESP it carried
Forwarded = tuple[int, float, int, bytes, int, float, tuple[EspCall, ...]]
# Builds the ESP decryption hook of a worker's tracker (None: no keys / no ESP keys).
EspHookFactory = Callable[[EspTracker], EspHook | None]
# (range, frame base, flows at the cut, recent-packet ring, packets) -> (probes, counts)
Replay = Callable[
    [ByteRange, int, dict[FlowKey, FlowState], list[TailEntry], int], tuple[dict[FlowKey, FlowProbe], dict[FlowKey, int]]
]
# A worker snapshots each flow after this many of its packets in the range; a cut the direct
# join cannot take is replayed that far (cut_replay.py).
SNAP_AT = 256


class Unmergeable(Exception):
    """The partial results cannot be joined exactly; the message says why."""


class _TooMuch(Exception):
    """A worker holds more frames for the main pass than MAX_FORWARD_BYTES."""


class _Spec:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class TransformInfo:
    """What a report reads of an ESP transform (no key material: it crosses a pipe)."""

    __slots__ = ("align", "icv_size", "iv_size", "spec")

    def __init__(self, name: str, iv_size: int, icv_size: int, align: int) -> None:
        self.spec = _Spec(name)
        self.iv_size = iv_size
        self.icv_size = icv_size
        self.align = align


class DecryptorInfo:
    """FlowState.decryptor of a flow decrypted in a range worker: the transform for the report
    and the decryptor's ESN knowledge (None: not yet known), which decides whether a later
    range, decrypted from a fresh decryptor, decrypted exactly as the serial pass."""

    __slots__ = ("esn", "transform")

    def __init__(self, transform: TransformInfo | None, esn: bool | None) -> None:
        self.transform = transform
        self.esn = esn


@dataclass
class RangeResult:
    """What a worker hands back for one range (picklable, no key bytes)."""

    index: int
    format: str = ""
    frames: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    bytes: int = 0
    linktypes: set[int] = field(default_factory=set)
    problem: str | None = None
    forwarded: list[Forwarded] = field(default_factory=list)
    tail_tick: float = float("-inf")  # latest pure-ESP frame time after the last forwarded frame
    pure: int = 0  # frames that carried exactly one ESP packet and nothing else
    flows: dict[FlowKey, FlowState] = field(default_factory=dict)
    probes: dict[FlowKey, FlowProbe] = field(default_factory=dict)
    malformed: list[tuple[int, int, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # frames not IPsec, by reason
    overflow: bool = False
    ring_exhausted: int = 0
    range: ByteRange | None = None
    snaps: dict[FlowKey, FlowSnap] = field(default_factory=dict)
    prefix_probes: dict[FlowKey, FlowProbe] = field(default_factory=dict)
    tail: list[TailEntry] = field(default_factory=list)  # the range's last RECENT ESP packets
    scratch: bytearray | None = None  # the worker's shared ring of in-order flows
    decrypting: bool = False


class RangeSink:
    """The capture Sink of a worker: ESP to the tracker (noted per frame), anything else only
    marks the frame as one the main process must decode itself."""

    def __init__(self, tracker: EspTracker) -> None:
        self.calls: list[tuple[bytes, bytes, int, int, bytes, int, int]] = []
        self.other = False
        track = tracker.on_esp
        note = self.calls.append

        def on_esp(
            frame: int, ts: float, src: bytes, dst: bytes, sport: int, dport: int, data: bytes, off: int, end: int
        ) -> None:
            note((src, dst, sport, dport, data, off, end))
            track(frame, ts, src, dst, sport, dport, data, off, end)

        self.on_esp = on_esp

    def on_ike(self, msg: IkeDatagram) -> None:
        self.other = True

    def on_ah(self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, off: int, end: int) -> None:
        self.other = True

    def on_keepalive(self, frame: int, ts: float, src: str, dst: str, sport: int, dport: int) -> None:
        self.other = True

    def on_icmp_error(self, err: IcmpError) -> None:
        self.other = True

    def on_fragment_group(self, group: FragmentGroup) -> None:
        self.other = True

    def on_malformed(self, frame: int, ts: float, layer: str, offset: int, reason: str) -> None:
        self.other = True

    def on_truncated(self, frame: int, ts: float, caplen: int, origlen: int) -> None:
        self.other = True


def _marking(fn: Callable[..., object], sink: RangeSink) -> Callable[..., object]:
    def wrapped(*args: object, **kw: object) -> object:
        sink.other = True  # decoder state (reassembly, TCP streams) the main pass must rebuild
        return fn(*args, **kw)

    return wrapped


def scan_range(
    path: str | Path, rng: ByteRange, options: AnalysisOptions, esp_hook: EspHookFactory | None = None
) -> RangeResult:
    """One worker's pass over ``rng``: ESP accounted here, every other frame handed back."""
    tracker = EspTracker(
        replay_window=options.replay_window, dup_seconds=options.dup_seconds, idle_gap=options.natt_idle_timeout
    )
    tracker.probe = {}
    tracker.snap_at = SNAP_AT
    tracker.on_esp = tracker._compile()  # with snap_at
    if esp_hook is not None:
        tracker.hook = esp_hook(tracker)
    sink = RangeSink(tracker)
    recorder = sink.on_esp
    # The decoder's fast path (plain IPv4 ESP / ESP-in-UDP: one ESP packet, nothing else) hands
    # its packets straight to the tracker; every other frame goes through ``decode`` below,
    # which notes what it gave (the recorder) and hands the frame back unless it was the same.
    decoder = Decoder(sink, ike_ports=frozenset(options.ike_ports), natt_ports=frozenset(options.natt_ports))  # type: ignore[arg-type]
    # Fragments and TCP segments change decoder state: such frames always go to the main pass.
    decoder._frag.add = _marking(decoder._frag.add, sink)  # type: ignore[method-assign]
    decoder._tcp.segment = _marking(decoder._tcp.segment, sink)  # type: ignore[method-assign]
    general = decoder._decode
    out = RangeResult(rng.index, range=rng)
    calls = sink.calls
    forwarded = out.forwarded
    tick = float("-inf")  # latest frame time so far (fragment expiry in the main pass)
    slow_pure = 0
    held = 0  # bytes of frames handed back
    skipped = out.skipped

    def decode(frame: int, ts: float, linktype: int, data: bytes, orig_len: int) -> str | None:
        nonlocal slow_pure, held
        sink.other = False  # what expiry in feed() reported is the main pass's to redo
        calls.clear()
        outcome = general(frame, ts, linktype, data, orig_len)
        if not sink.other:
            if outcome is None and len(calls) == 1:
                slow_pure += 1  # one ESP packet (IPv6, IP options, VLAN...): accounted here
                return outcome
            if outcome and not calls:
                skipped[outcome] += 1  # not IPsec, nothing reported, no decoder state: counted here
                return outcome
        esp = tuple((c[0], c[1], c[2], c[3], bytes(c[4][c[5] : c[6]])) for c in calls)
        forwarded.append((frame, ts, linktype, bytes(data), orig_len, tick, esp))
        held += len(data) + 100
        if held > MAX_FORWARD_BYTES:
            raise _TooMuch
        return outcome

    decoder._decode = decode  # type: ignore[method-assign]
    sink.on_esp = tracker.on_esp  # type: ignore[method-assign]  # what the fast path calls
    feed = decoder.feed = decoder._compile_feed()  # type: ignore[method-assign]
    sink.on_esp = recorder  # type: ignore[method-assign]  # what decode's paths call
    fr = None
    with open_range(path, rng) as cap:
        out.format = cap.format
        frames = cap.frames()
        fr = next(frames, None)
        try:
            if fr is not None:
                out.first_ts = fr[1]
                feed(*fr)
                tick = fr[1]
                for fr in frames:  # the last one stays in fr
                    feed(*fr)
                    if fr[1] > tick:
                        tick = fr[1]
        except _TooMuch:
            out.problem = f"range {rng.index}: over {MAX_FORWARD_BYTES >> 20} MiB of frames other than ESP"
            out.forwarded.clear()
            return out
        out.problem = range_problem(cap, rng)
        out.bytes = cap.stats.bytes
        out.linktypes = set(cap.linktypes)
    out.frames = fr[0] if fr is not None else 0
    out.last_ts = fr[1] if fr is not None else None
    out.tail_tick = tick
    out.pure = decoder.ipsec_frames - decoder._ipsec + slow_pure  # the fast path's frames
    out.flows = dict(tracker.flows)
    probe = tracker.probe
    out.probes = {k: probe[f] for k, f in tracker.flows.items() if f in probe}
    snaps = tracker.snaps
    out.snaps = {k: snaps[f][0] for k, f in tracker.flows.items() if f in snaps}
    out.prefix_probes = {k: snaps[f][1] for k, f in tracker.flows.items() if f in snaps}
    key_of = {id(f): k for k, f in tracker.flows.items()}
    out.tail = [(ts, key_of.get(id(f)), fr, bytes(d[o:e])) for ts, f, fr, d, o, e in tracker._ring]
    out.scratch = tracker._scratch
    out.decrypting = tracker.hook is not None
    for f in out.flows.values():
        f.decryptor = _portable(f.decryptor)
    out.malformed = list(tracker.malformed)
    out.overflow = bool(tracker.overflow)
    out.ring_exhausted = tracker.ring_exhausted
    return out


def _portable(dec: object) -> object:
    """A decryptor as a picklable stand-in without key material (None/False kept)."""
    if dec is None or dec is False:
        return dec
    t = getattr(dec, "transform", None)
    spec = getattr(t, "spec", None)
    info = TransformInfo(spec.name, t.iv_size, t.icv_size, t.align) if spec is not None else None  # type: ignore[union-attr]
    return DecryptorInfo(info, getattr(dec, "esn", None))


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
    f.failed_frames = [fr + base for fr in f.failed_frames]
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
        if self.replay is None or r.decrypting or r.range is None:
            raise Unmergeable(next(iter(failing.values())))
        seeded: dict[FlowKey, FlowState] = {}
        before: dict[FlowKey, tuple[int, int]] = {}
        for key in failing:
            m = self.flows[key]
            lo = self.lazy_lo[key]
            if lo is not None:
                m.seen = contiguous_ring(self.track, lo, m.top)
                self.lazy_lo[key] = None
            seeded[key] = m
            before[key] = (m.top, m.epoch)
        probes, counts = self.replay(r.range, base, seeded, self.tail, SNAP_AT)
        for key, why in failing.items():
            m, w = seeded[key], r.flows[key]
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
                    top, epoch = before[key]
                    old = (m.seen, None, (epoch << 32) | top)
                    join_after_prefix(m, w, snap, r.probes.get(key) or FlowProbe(), top, epoch)
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
            "too_old", "out_of_window", "truncated", "decrypted", "integrity_failed", "undecryptable",
        ):  # fmt: skip
            setattr(m, name, getattr(m, name) + getattr(w, name))
        m.max_len = max(m.max_len, w.max_len)
        if w.max_reorder_depth > m.max_reorder_depth:
            m.max_reorder_depth, m.deepest_frame = w.max_reorder_depth, w.deepest_frame
        if p.low_reordered is not None and p.low_reordered < m.seq_min:
            m.seq_min = p.low_reordered
        m.replay_events = _capped(m.replay_events, w.replay_events, MAX_EVENTS)
        m.dup_events = _capped(m.dup_events, w.dup_events, MAX_EVENTS)
        m.oow_events = _capped(m.oow_events, w.oow_events, MAX_EVENTS)
        m.wrap_events = _capped(m.wrap_events, w.wrap_events, MAX_EVENTS)
        m.failed_frames = _capped(m.failed_frames, w.failed_frames, MAX_FAILED_FRAMES)
        for code, n in w.inner.items():
            m.inner[code] = m.inner.get(code, 0) + n
        m.epoch += w.epoch
        m.top, m.seen = w.top, w.seen
        m.seq_last, m.last_ts, m.last_frame = w.seq_last, w.last_ts, w.last_frame
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
    md, wd = m.decryptor, w.decryptor
    if (md is None) != (wd is None) or (md is False) != (wd is False):
        return "the flow's key lookup differs across the cut"
    # esn None before the cut: the serial decryptor is still a fresh one, like the worker's.
    # esn False: stateless; the worker's fresh one tried non-ESN first too and must not have
    # settled on ESN. esn True: the high-order bits carried across the cut are unknown here.
    if isinstance(md, DecryptorInfo) and (md.esn or (md.esn is False and getattr(wd, "esn", None))):
        return "ESN state of a decrypted SA crosses the cut"
    return None
