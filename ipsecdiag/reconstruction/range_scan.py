"""The worker side of one capture analysed in byte ranges (issue 12; merge.py joins the results).

A worker (:func:`scan_range`) reads one :class:`~ipsecdiag.capture.split.ByteRange` and keeps
only the ESP accounting: its own :class:`EspTracker` (and ESP decryption, keys inherited by
fork) sees every ESP packet of the range. A frame whose decoding did anything but hand over
exactly one ESP packet (IKE, ICMP, keepalives, malformed or truncated frames, IP fragments and
TCP segments, which touch the decoder's reassembly state) goes back raw, with the ESP packets
the worker accounted from it; frames that are not IPsec and touch no decoder state are only
counted. The tracker runs with a probe (esp_probe.py) and snapshots each flow after its
``SNAP_AT``-th packet, and the range's last ESP packets go back for the dup ring.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..capture.decode import Decoder
from ..capture.model import FragmentGroup, IcmpError, IkeDatagram
from ..capture.split import ByteRange, open_range, range_problem
from ..capture.timesteps import StepsBack
from .cut_replay import TailEntry
from .esp_probe import FlowProbe, FlowSnap
from .esp_tracker import EspHook, EspTracker, FlowState
from .options import AnalysisOptions

# Frames a worker hands back to the main pass, at most (bytes): a capture mostly of IKE, TCP or
# fragments gains nothing from ranges and is analysed in one pass instead of held in memory.
MAX_FORWARD_BYTES = 24 * 1024 * 1024
# A worker snapshots each flow after this many of its packets in the range; a cut the direct
# join cannot take is replayed that far (cut_replay.py).
SNAP_AT = 256

# inner.inner_code of a decrypted IPv4 / IPv6 packet carrying ESP (decryption feeds it back).
_ESP_INNER = ((4 << 8) | 50, (41 << 8) | 50)

FlowKey = tuple[bytes, bytes, bytes, int, int]
EspCall = tuple[bytes, bytes, int, int, bytes]  # src, dst, sport, dport, ESP bytes
# local frame, ts, linktype, data, orig_len, latest frame time up to it, ESP it carried
Forwarded = tuple[int, float, int, bytes, int, float, tuple[EspCall, ...]]
# Builds the ESP decryption hook of a worker's tracker (None: no keys / no ESP keys).
EspHookFactory = Callable[[EspTracker], EspHook | None]


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


# Frames of each range whose time order the main process judges itself (merge.merge_times).
TIME_PREFIX = 1024


def time_params() -> tuple[float, float, int, int] | None:
    """capture/timesteps.py's TOLERANCE, GAP_SECONDS, SHOWN, MAX_BOUNDARIES; None when the
    reader keeps no time-order record."""
    try:
        from ..capture import timesteps
    except ImportError:
        return None
    return timesteps.TOLERANCE, timesteps.GAP_SECONDS, timesteps.SHOWN, timesteps.MAX_BOUNDARIES


@dataclass
class RangeTimes:
    """A range's time order: its first TIME_PREFIX frames (frame, ts), and over the frames
    after them (judged against the range's own latest time, which the main process checks is
    the capture's) the steps back and time jumps as capture/timesteps.StepsBack counts them."""

    prefix: list[tuple[int, float]] = field(default_factory=list)
    prefix_top: float = float("-inf")  # the latest time among the prefix frames
    count: int = 0
    largest: float = 0.0
    first: list[tuple[int, float, int, float]] = field(default_factory=list)
    jumps: list[tuple[int, float, float]] = field(default_factory=list)
    top: float = float("-inf")  # the latest time in the range, and its last frame
    top_frame: int = 0


class _AfterPrefix(StepsBack):
    """The decoder's time-order record of a range, kept only after its first ``mark`` frames
    (those go to the main process as they are): steps back and jumps as the worker's own
    loop counted them, jumps up to one past MAX_BOUNDARIES so that the merge sees the cap."""

    def __init__(self, mark: int, params: tuple[float, float, int, int]) -> None:
        super().__init__()
        self.mark = mark
        _, _, self.shown, self.most = params
        self.jumps: list[tuple[int, float, float]] = []

    def add(self, frame: int, ts: float, top_frame: int, top_ts: float) -> None:
        if frame > self.mark:
            self.count += 1
            self.largest = max(self.largest, top_ts - ts)
            if len(self.first) < self.shown:
                self.first.append((frame, ts, top_frame, top_ts))

    def jump(self, frame: int, prev_ts: float, ts: float) -> None:
        if frame > self.mark and len(self.jumps) <= self.most:
            self.jumps.append((frame, prev_ts, ts))


def _prefix(path: str | Path, rng: ByteRange) -> list[tuple[int, float]]:
    """(frame, ts) of the range's first TIME_PREFIX frames: read again, one buffer's worth."""
    out: list[tuple[int, float]] = []
    with open_range(path, rng) as cap:
        for frame, ts, *_ in cap.frames():
            out.append((frame, ts))
            if len(out) >= TIME_PREFIX:
                break
    return out


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
    tail_tick: float = float("-inf")  # the range's latest frame time
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
    nested: bool = False  # decrypted packets carried ESP of their own (fed back to the tracker)
    times: RangeTimes | None = None


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
        replay_window=options.replay_window,
        dup_seconds=options.dup_seconds,
        idle_gap=options.natt_idle_timeout,
        timeline=options.esp_timeline,
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
        # The latest frame time so far, this frame's included: the main pass expires fragments
        # at it before feeding the frame, as feed() does first (parallel: tick, tail_tick).
        tick = decoder.time_top()[0]
        forwarded.append((frame, ts, linktype, bytes(data), orig_len, tick, esp))
        held += len(data) + 100
        if held > MAX_FORWARD_BYTES:
            raise _TooMuch
        return outcome

    decoder._decode = decode  # type: ignore[method-assign]
    sink.on_esp = tracker.on_esp  # type: ignore[method-assign]  # what the fast path calls
    params = time_params()
    if params is not None:
        # The reader's time-order record (capture/timesteps.py): the first frames go to the
        # main process, which knows the times before the range; after them the steps back and
        # jumps are counted here, as the decoder finds them (merge.merge_times).
        out.times = RangeTimes()
        decoder.steps_back = _AfterPrefix(TIME_PREFIX, params)  # type: ignore[assignment]
    feed = decoder.feed = decoder._compile_feed()  # type: ignore[method-assign]
    sink.on_esp = recorder  # type: ignore[method-assign]  # what decode's paths call
    with open_range(path, rng) as cap:
        out.format = cap.format
        try:
            out.first_ts, out.last_ts = cap.push(feed, decoder.record_walker)
        except _TooMuch:
            out.problem = f"range {rng.index}: over {MAX_FORWARD_BYTES >> 20} MiB of frames other than ESP"
            out.forwarded.clear()
            return out
        out.problem = range_problem(cap, rng)
        out.bytes = cap.stats.bytes
        out.linktypes = set(cap.linktypes)
        out.frames = cap.stats.frames
    top, top_frame = decoder.time_top()
    out.tail_tick = top
    if not out.frames:
        out.times = None
    elif out.times is not None:
        steps = decoder.steps_back
        assert isinstance(steps, _AfterPrefix)
        times = out.times
        times.prefix = _prefix(path, rng)
        times.prefix_top = max(ts for _, ts in times.prefix)
        times.count, times.largest, times.first, times.jumps = steps.count, steps.largest, steps.first, steps.jumps
        times.top, times.top_frame = top, out.frames if top_frame is None else top_frame
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
    out.nested = any(code in _ESP_INNER for f in out.flows.values() for code in f.inner)
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
