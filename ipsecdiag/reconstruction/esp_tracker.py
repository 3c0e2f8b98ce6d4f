"""Per-SPI ESP accounting on the hot path: counters, sequence analysis, optional decryption.

Sequence analysis models what a receiver's anti-replay window (RFC 4303 §3.4.3) would do with
the packets as captured, and tells the causes of a repeated sequence number apart:

* a *capture duplicate* is a byte-identical copy of a packet captured within ``dup_seconds``
  (mirror ports, capturing on two interfaces): an artefact, not traffic;
* a *replay* is the same sequence number again later, or with different bytes;
* a *reset* is a sequence that starts again near 1 on the same SPI after having gone higher
  (a sender that lost its SA state but kept the SPI);
* an *ESN wrap* is the 32-bit counter passing 2^32 - 1 (RFC 4303 Appendix A: the high-order
  half is inferred and kept as ``epoch``).

Memory is bounded by the number of flows: a flow with a gap, reordering or a repeat keeps a
``track``-byte ring of "seen" flags for the last ``track`` sequence numbers (slot
``seq & (track - 1)``; ``track`` divides 2^32, so the ring runs on across an ESN wrap); a
flow whose numbering has been contiguous needs none (all of seq_min..top were seen) and shares
a scratch ring until then. Event lists are capped and allocated on their first entry. One ring of the last
``RECENT`` packets (references to the frames, no copies) serves the duplicate classification.
The in-order packet costs one dict lookup, one ``bytearray`` store and a few compares.
The ring is :class:`ipsecdiag.esp.replay.RingWindow`'s (the one definition of the RFC 4303
window): its size and sliding come from there; only the in-order step is inlined here.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from math import floor
from typing import TypeVar

from ..esp.replay import ring_advance, ring_size
from ..wire.jsontypes import Json
from .esp_probe import FlowProbe, FlowSnap, contiguous_ring
from .model import EspFlow, EspTransformInfo, SequenceStats, addr_text
from .options import DEFAULT_OPTIONS
from .timeline import Timeline

SEQ_WINDOW = 4096  # default tracking window: reordering deeper than this is "too old"
MAX_TRACK = 1 << 16
RECENT = 1024  # recent packets remembered to recognise byte-identical capture duplicates
RESET_LOW = 16  # a sequence number this low after ...
RESET_DROP = 32  # ... the SA had gone at least this much higher: the sender started again
UNDO_PACKETS = 4  # a "reset" followed within this many packets by the old numbering was a stale packet
RESET_CONFIRM = 2  # a reset counts once at least one packet continued the new numbering
MAX_EVENTS = 64  # evidence entries kept per kind and flow
MAX_IDLE = 256
# Flows (SPI and addresses) tracked one by one; packets of further SPIs are added up per address
# pair (issue 14: a capture of 100k SPIs took 1.27 GiB), at most MAX_OVERFLOW_PAIRS pairs.
MAX_FLOWS = 10_000
MAX_OVERFLOW_PAIRS = 1_000
MAX_OVERFLOW_SPIS = 100_000  # distinct SPIs remembered over all pairs, to count them
_M32 = 0xFFFFFFFF
_HALF = 1 << 31
_WRAP_NEAR = 1 << 20  # a forward step across 2^32 of less than this is an ESN wrap
_SPI_SEQ = struct.Struct("!II")

# Called for every ESP packet when decryption is active:
# (flow_state, frame, ts, data, off, end) -> None
EspHook = Callable[["FlowState", int, float, bytes, int, int], None]
EspSink = Callable[[int, float, bytes, bytes, int, int, bytes, int, int], None]


E = TypeVar("E")
# An evidence list: () until its first entry, then a list (see _push).
Events = list[E] | tuple[()]


def _push(events: Events[E], item: E) -> list[E]:
    if isinstance(events, list):
        events.append(item)
        return events
    return [item]


# FlowState.saved: full top, seen ring, epoch, packets, seq_min, peak, covered, how, frame.
_Saved = tuple[int, bytearray, int, int, int, int, int, str, int]


def _track_size(replay_window: int) -> int:
    """Tracking ring size: a power of two (so it divides 2^32), at least twice the window."""
    return ring_size(replay_window, SEQ_WINDOW, MAX_TRACK)


class FlowState:
    """Mutable per-flow counters (slots: this object is touched for every packet)."""

    __slots__ = (
        "spi",
        "src",
        "dst",
        "sport",
        "dport",
        "packets",
        "bytes",
        "max_len",
        "seq_first",
        "seq_last",
        "seq_min",
        "top",
        "epoch",
        "peak",
        "covered",
        "first_ts",
        "last_ts",
        "first_frame",
        "last_frame",
        "seen",
        "duplicates",
        "replays",
        "capture_dups",
        "dup_unverified",
        "reordered",
        "too_old",
        "out_of_window",
        "truncated",
        "decryptor",
        "decrypted",
        "integrity_failed",
        "undecryptable",
        "inner",
        "resets",
        "max_reorder_depth",
        "deepest_frame",
        "replay_events",
        "dup_events",
        "oow_events",
        "reset_events",
        "wrap_events",
        "idle",
        "idle_dropped",
        "saved",
        "decrypt_problem",
        "key_matched_by_spi_only",
        "overflow_spis",
        "key_source",
        "failed_frames",
        "timeline",
    )

    def __init__(self, spi: int, src: bytes, dst: bytes, sport: int, dport: int) -> None:
        self.spi = spi
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.packets = 0
        self.bytes = 0
        self.max_len = 0  # longest ESP packet (SPI to end), for the tunnel MTU estimate
        self.seq_first = -1
        self.seq_last = 0
        self.seq_min = 0  # lowest sequence number of the current numbering (since the last reset)
        self.top = 0  # highest sequence number so far, low 32 bits
        self.epoch = 0  # inferred ESN high-order bits (wraps seen)
        self.peak = 0  # highest full sequence number before the last reset
        self.covered = 0  # sequence numbers spanned by numberings closed by resets
        self.first_ts = 0.0
        self.last_ts = 0.0
        self.first_frame = 0
        self.last_frame = 0
        self.seen = bytearray()
        self.duplicates = 0  # sequence number seen before (any cause)
        self.replays = 0
        self.capture_dups = 0
        self.dup_unverified = 0  # repeated within dup_seconds but the original left the ring
        self.reordered = 0  # arrived below the highest seen, not seen before
        self.too_old = 0  # below the tracking ring: duplicate or reordering cannot be told
        self.out_of_window = 0  # a receiver with the modelled window would drop it
        self.truncated = 0
        self.decryptor: object = None  # opaque here: set and read by decryption/
        self.decrypted = 0
        self.integrity_failed = 0
        self.undecryptable = 0
        self.inner: dict[str, int] = {}
        self.resets = 0
        self.max_reorder_depth = 0
        self.deepest_frame = 0
        # Evidence, capped at MAX_EVENTS each; the shared empty tuple until the first entry
        # (issue 14: six empty lists were a fifth of an in-order flow's memory).
        self.replay_events: Events[tuple[int, float, int, str]] = ()  # frame, ts, seq, why
        self.dup_events: Events[tuple[int, int, int, float]] = ()  # frame, original frame, seq, dt
        self.oow_events: Events[tuple[int, int, int]] = ()  # frame, seq, depth
        self.reset_events: Events[tuple[int, float, int, int]] = ()  # frame, ts, from (full), to
        self.wrap_events: Events[tuple[int, float]] = ()
        self.idle: Events[tuple[float, float, int, int]] = ()  # gap start ts, end ts, frames
        self.idle_dropped = 0
        # State kept right after a suspected reset, to undo it when the old numbering goes on.
        self.saved: _Saved | None = None
        self.decrypt_problem: str | None = None  # set by the decryptor: why the key is unusable
        self.key_matched_by_spi_only = False
        self.key_source = ""  # set by the decryptor: the key record's source
        self.failed_frames: list[tuple[int, float]] = []  # set by the decryptor: first ICV failures (frame, ts)
        self.timeline: Timeline | None = None  # packets over time, only when the report draws them
        self.overflow_spis: set[int] | None = None  # SPIs added up in a summarised (overflow) flow

    @property
    def seq_max(self) -> int:
        """Highest full (ESN-inferred) sequence number the flow reached."""
        return max(self.peak, (self.epoch << 32) | self.top)


class EspTracker:
    """Per-flow ESP state. ``replay_window`` is the receiver window modelled for
    :attr:`FlowState.out_of_window`; ``dup_seconds`` the capture-duplicate horizon."""

    def __init__(
        self,
        replay_window: int = DEFAULT_OPTIONS.replay_window,
        dup_seconds: float = DEFAULT_OPTIONS.dup_seconds,
        idle_gap: float = DEFAULT_OPTIONS.natt_idle_timeout,
        timeline: bool = DEFAULT_OPTIONS.esp_timeline,
    ) -> None:
        self.flows: dict[tuple[bytes, bytes, bytes, int, int], FlowState] = {}
        self.max_flows = MAX_FLOWS
        self.overflow: dict[tuple[bytes, bytes, int, int], FlowState] = {}
        self._overflow_spis = 0
        self.hook: EspHook | None = None
        self.malformed: list[tuple[int, int, str]] = []  # frame, offset-in-esp, reason
        self.window = max(1, int(replay_window))
        self.track = _track_size(self.window)
        self._mask = self.track - 1
        self.dup_seconds = dup_seconds
        self.idle_gap = idle_gap
        self._ring: deque[tuple[float, FlowState, int, bytes, int, int]] = deque(maxlen=RECENT)
        # The seen-ring of every flow whose numbering has been contiguous (seq_min..top, all
        # seen): in-order stores land here and nobody reads them; the flow gets a ring of its
        # own (_ring_of) on its first gap, reordering or repeat (issue 14: 4 KiB per flow less).
        self._scratch = bytearray(self.track)
        # The first flow in ``flows`` seen with each SPI, keyed by the SPI as an int: a packet of
        # that flow is matched by comparing four fields, without building and hashing the
        # table's bytes key. A cache only: ``flows`` stays the table (others fill it directly).
        self._by_spi: dict[int, FlowState] = {}
        # Set (to {}) by a byte-range worker: per-flow notes for the exact merge; None: off.
        self.probe: dict[FlowState, FlowProbe] | None = None
        # With a probe, each flow's state after its snap_at-th packet (and its probe up to
        # there) is kept in snaps; the probe then notes what follows only. 0: never.
        self.snap_at = 0
        self.snaps: dict[FlowState, tuple[FlowSnap, FlowProbe]] = {}
        # Duplicates whose search for the original ran out of remembered packets before either
        # dup_seconds or RECENT: in a byte range the original may lie before the cut.
        self.ring_exhausted = 0
        self.timeline = timeline  # keep each flow's packets-over-time histogram (timeline.py)
        # on_esp(frame, ts, src, dst, sport, dport, data, off, end): the capture Sink method;
        # data[off:end] is the ESP packet, sport/dport 0 for IP protocol 50.
        self.on_esp: EspSink = self._compile()

    @property
    def packets(self) -> int:
        flows = sum(f.packets for f in self.flows.values()) + sum(f.packets for f in self.overflow.values())
        return flows + len(self.malformed)

    def _compile(self) -> EspSink:
        """The per-packet function. What it touches is bound in closure cells, which saves an
        attribute lookup per use on a path that runs for every ESP packet."""
        flows_get = self.flows.get
        by_spi = self._by_spi
        by_spi_get = by_spi.get
        unpack = _SPI_SEQ.unpack_from
        mask, track, idle_gap = self._mask, self.track, self.idle_gap
        remember = self._ring.append
        scratch = self._scratch
        snap_at = self.snap_at
        tracker = self

        def on_esp(
            frame: int,
            ts: float,
            src: bytes,
            dst: bytes,
            sport: int,
            dport: int,
            data: bytes,
            off: int,
            end: int,
        ) -> FlowState | None:
            n = end - off
            if n < 8:
                tracker.malformed.append((frame, off, f"ESP header needs 8 bytes, {n} present"))
                return None
            spi, seq = unpack(data, off)
            f = by_spi_get(spi)
            if f is None or f.src != src or f.dst != dst or f.sport != sport or f.dport != dport:
                key = (data[off : off + 4], src, dst, sport, dport)
                f = flows_get(key)
                if f is not None and spi not in by_spi:
                    by_spi[spi] = f
            if f is None:
                f = tracker._new_flow(key, spi, seq, frame, ts)
            else:
                top = f.top
                if seq > top:
                    if seq - top == 1:  # in order: the common case
                        f.seen[seq & mask] = 1
                        f.top = seq
                    else:
                        tracker._forward(f, frame, ts, seq, data, off, end)
                else:
                    d = top - seq
                    if d < track:
                        if tracker.probe is not None:
                            tracker._probe_lookup(f, d)
                        seen = f.seen
                        if seen is scratch:
                            seen = tracker._ring_of(f)
                        i = seq & mask
                        if seen[i]:
                            tracker._duplicate(f, frame, ts, seq, d, data, off, end)
                        else:
                            seen[i] = 1
                            tracker._reordered(f, frame, seq, d)
                    else:
                        tracker._far_below(f, frame, ts, seq, d, data, off, end)
                if ts - f.last_ts >= idle_gap:
                    tracker._idle(f, frame, ts)
            packets = f.packets + 1
            f.packets = packets
            f.bytes += n
            if n > f.max_len:
                f.max_len = n
            f.seq_last = seq
            f.last_ts = ts
            f.last_frame = frame
            remember((ts, f, frame, data, off, end))
            hook = tracker.hook
            if hook is not None:
                hook(f, frame, ts, data, off, end)
            if packets == snap_at:
                tracker._snap(f)
            return f

        if not self.timeline:
            return on_esp  # type: ignore[return-value]  # returns the flow for on_esp_timed only
        return self._timed(on_esp)

    @staticmethod
    def _timed(untimed: Callable[..., FlowState | None]) -> EspSink:
        """The per-packet function that also adds each packet to its flow's histogram: a call
        more per packet, paid only when the report draws the histograms."""

        def on_esp_timed(
            frame: int, ts: float, src: bytes, dst: bytes, sport: int, dport: int, data: bytes, off: int, end: int
        ) -> None:
            f = untimed(frame, ts, src, dst, sport, dport, data, off, end)
            if f is None:
                return
            tl = f.timeline
            if tl is None:
                f.timeline = Timeline(ts, end - off)
                return
            i = floor(ts * tl.scale) - tl.lo  # Timeline.add's common case, inlined
            if 0 <= i < len(tl.packets):
                tl.packets[i] += 1
                tl.bytes[i] += end - off
            else:
                tl.add(ts, end - off)

        return on_esp_timed

    # -- rare paths ---------------------------------------------------------------------------
    def _new_flow(
        self, key: tuple[bytes, bytes, bytes, int, int], spi: int, seq: int, frame: int, ts: float
    ) -> FlowState:
        _, src, dst, sport, dport = key
        if len(self.flows) >= self.max_flows:
            return self._overflow_flow(src, dst, sport, dport, spi, frame, ts)
        f = FlowState(spi, src, dst, sport, dport)
        self.flows[key] = f
        f.seen = self._scratch
        f.seq_first = f.seq_min = f.top = seq
        f.first_ts = f.last_ts = ts
        f.first_frame = frame
        return f

    def _probe_lookup(self, f: FlowState, d: int) -> None:
        """Note the full sequence number (top minus ``d``) whose seen-flag is read."""
        p = self._flow_probe(f)
        full = ((f.epoch << 32) | f.top) - d
        if p.low_lookup is None or full < p.low_lookup:
            p.low_lookup = full

    def _flow_probe(self, f: FlowState) -> FlowProbe:
        assert self.probe is not None
        p = self.probe.get(f)
        if p is None:
            p = self.probe[f] = FlowProbe()
        return p

    def _reordered(self, f: FlowState, frame: int, seq: int, d: int) -> None:
        f.reordered += 1
        if self.probe is not None:
            p = self._flow_probe(f)
            if p.low_reordered is None or seq < p.low_reordered:
                p.low_reordered = seq
            if d > p.max_depth:
                p.max_depth, p.deepest_frame = d, frame
        if seq < f.seq_min:
            f.seq_min = seq
        if d > f.max_reorder_depth:
            f.max_reorder_depth = d
            f.deepest_frame = frame
        if d >= self.window:
            self._outside(f, frame, seq, d)

    def _outside(self, f: FlowState, frame: int, seq: int, d: int) -> None:
        f.out_of_window += 1
        if len(f.oow_events) < MAX_EVENTS:
            f.oow_events = _push(f.oow_events, (frame, seq, d))

    def _forward(
        self, f: FlowState, frame: int, ts: float, seq: int, data: bytes, off: int, end: int
    ) -> None:
        """``seq`` above the top by more than one: a gap, a straggler from before an ESN wrap,
        or the old numbering going on after a stale low packet was taken for a reset."""
        saved = f.saved
        if saved is not None:
            f.saved = None
            old_top = saved[0] & _M32
            if f.packets - saved[3] <= UNDO_PACKETS and seq + self.track > old_top and seq - old_top < _HALF:
                self._undo_reset(f, saved)
                self._place(f, frame, ts, seq, data, off, end)
                return
        d = seq - f.top
        if d >= _HALF and self.probe is not None and f.epoch == 0:
            self._flow_probe(f).half_jumps += 1
        if d >= _HALF and f.epoch > 0:
            # Numerically far ahead but just behind modulo 2^32: sent before the wrap.
            self._behind(f, frame, ts, seq, (f.top - seq) & _M32, data, off, end)
            return
        self._advance(f, seq)

    def _ring_of(self, f: FlowState) -> bytearray:
        """The flow's own seen-ring, built on first need from its contiguous numbering."""
        seen = f.seen
        if seen is not self._scratch:
            return seen
        seen = f.seen = contiguous_ring(self.track, f.seq_min, f.top)
        return seen

    def _snap(self, f: FlowState) -> None:
        assert self.probe is not None
        self.snaps[f] = (FlowSnap(f, self._scratch), self.probe.pop(f, None) or FlowProbe())

    def _advance(self, f: FlowState, seq: int) -> None:
        ring_advance(self._ring_of(f), f.top, seq)
        f.top = seq

    def _place(self, f: FlowState, frame: int, ts: float, seq: int, data: bytes, off: int, end: int) -> None:
        """The general classification of ``seq`` against the flow's state."""
        top = f.top
        if seq > top:
            if seq - top == 1:
                f.seen[seq & self._mask] = 1
                f.top = seq
            else:
                self._forward(f, frame, ts, seq, data, off, end)
        else:
            self._behind(f, frame, ts, seq, top - seq, data, off, end)

    def _behind(
        self, f: FlowState, frame: int, ts: float, seq: int, d: int, data: bytes, off: int, end: int
    ) -> None:
        if d < self.track:
            if self.probe is not None:
                self._probe_lookup(f, d)
            seen = self._ring_of(f)
            i = seq & self._mask
            if seen[i]:
                self._duplicate(f, frame, ts, seq, d, data, off, end)
            else:
                seen[i] = 1
                self._reordered(f, frame, seq, d)
        else:
            self._far_below(f, frame, ts, seq, d, data, off, end)

    def _far_below(
        self, f: FlowState, frame: int, ts: float, seq: int, d: int, data: bytes, off: int, end: int
    ) -> None:
        """Below the tracking ring: an ESN wrap, a reset, or a very late packet."""
        fwd = (seq - f.top) & _M32
        if f.top > _M32 - _WRAP_NEAR and fwd < _WRAP_NEAR:
            f.epoch += 1
            if len(f.wrap_events) < MAX_EVENTS:
                f.wrap_events = _push(f.wrap_events, (frame, ts))
            self._advance(f, seq)
            return
        if seq <= RESET_LOW:
            self._reset(f, frame, ts, seq, "far")
            return
        f.too_old += 1
        self._outside(f, frame, seq, d)

    def _duplicate(
        self, f: FlowState, frame: int, ts: float, seq: int, d: int, data: bytes, off: int, end: int
    ) -> None:
        f.duplicates += 1
        orig = self._original(f, seq, ts, data, off, end)
        if orig is not None and orig[1]:
            f.capture_dups += 1
            if len(f.dup_events) < MAX_EVENTS:
                f.dup_events = _push(f.dup_events, (frame, orig[0], seq, ts - orig[2]))
            return
        if seq <= RESET_LOW and d >= RESET_DROP:
            f.duplicates -= 1
            self._reset(f, frame, ts, seq, "dup")
            return
        if orig is None:
            why = "later"
        elif orig[0] < 0:
            why = "unverified"
            f.dup_unverified += 1
        else:
            why = "different-bytes"
        f.replays += 1
        if len(f.replay_events) < MAX_EVENTS:
            f.replay_events = _push(f.replay_events, (frame, ts, seq, why))

    def _original(
        self, f: FlowState, seq: int, ts: float, data: bytes, off: int, end: int
    ) -> tuple[int, bool, float] | None:
        """The earlier copy of ``seq`` among the recent packets within ``dup_seconds``:
        (its frame, byte-identical?, its ts); None when it is older than that; frame -1 when
        the ring only reaches back less than ``dup_seconds`` and did not hold it."""
        horizon = ts - self.dup_seconds
        n = 0
        for t0, f0, fr0, d0, o0, e0 in reversed(self._ring):
            if t0 < horizon:
                return None
            n += 1
            if f0 is f and _SPI_SEQ.unpack_from(d0, o0)[1] == seq:
                same = e0 - o0 == end - off and d0[o0:e0] == data[off:end]
                return fr0, same, t0
        if n >= RECENT:
            return -1, False, ts
        self.ring_exhausted += 1
        if self.probe is not None:
            self._flow_probe(f).exhausted += 1
        return None

    def _reset(self, f: FlowState, frame: int, ts: float, seq: int, how: str) -> None:
        if self.probe is not None:
            self._flow_probe(f).reset_calls += 1
        full_top = (f.epoch << 32) | f.top
        f.saved = (full_top, self._ring_of(f), f.epoch, f.packets, f.seq_min, f.peak, f.covered, how, frame)
        f.resets += 1
        if len(f.reset_events) < MAX_EVENTS:
            f.reset_events = _push(f.reset_events, (frame, ts, full_top, seq))
        f.covered += full_top - f.seq_min + 1  # seq_min counts from the numbering's first epoch
        f.peak = max(f.peak, full_top)
        f.seen = self._scratch  # a new contiguous numbering from seq
        f.top = f.seq_min = seq
        f.epoch = 0

    def _undo_reset(self, f: FlowState, saved: _Saved) -> None:
        """The low packet was a stale one and the old numbering goes on: restore the state."""
        full_top, seen, epoch, _, seq_min, peak, covered, how, frame = saved
        f.top = full_top & _M32
        f.seen = seen
        f.epoch = epoch
        f.seq_min = seq_min
        f.peak = peak
        f.covered = covered
        f.resets -= 1
        if f.reset_events and f.reset_events[-1][0] == frame:
            _, ts, _, seq = f.reset_events.pop()  # type: ignore[union-attr]  # non-empty: a list
        else:
            ts, seq = 0.0, 0
        if how == "dup":  # it repeated a sequence number seen before: a replay
            f.duplicates += 1
            f.replays += 1
            if len(f.replay_events) < MAX_EVENTS:
                f.replay_events = _push(f.replay_events, (frame, ts, seq, "later"))
        else:
            f.too_old += 1
            f.out_of_window += 1
            if len(f.oow_events) < MAX_EVENTS:
                f.oow_events = _push(f.oow_events, (frame, seq, full_top - seq))

    def _idle(self, f: FlowState, frame: int, ts: float) -> None:
        if len(f.idle) < MAX_IDLE:
            f.idle = _push(f.idle, (f.last_ts, ts, f.last_frame, frame))
        else:
            f.idle_dropped += 1

    # -- results ------------------------------------------------------------------------------
    def _overflow_flow(
        self, src: bytes, dst: bytes, sport: int, dport: int, spi: int, frame: int, ts: float
    ) -> FlowState:
        """One FlowState adding up the packets of every SPI past ``max_flows`` between two
        endpoints (all further pairs share one, with empty addresses). Never in the flow table,
        so each packet comes here; never decrypted (``decryptor`` is the no-key value)."""
        pair = (src, dst, sport, dport)
        f = self.overflow.get(pair)
        if f is None:
            if len(self.overflow) >= MAX_OVERFLOW_PAIRS:
                pair = (b"", b"", 0, 0)
                f = self.overflow.get(pair)
            if f is None:
                f = self.overflow[pair] = FlowState(-1, *pair)
                f.decryptor = False
                f.first_ts = ts
                f.first_frame = frame
                f.overflow_spis = set()
        spis = f.overflow_spis
        assert spis is not None
        if spi not in spis and self._overflow_spis < MAX_OVERFLOW_SPIS:
            spis.add(spi)
            self._overflow_spis += 1
        return f

    def overflow_out(self) -> list[Json]:
        """The summarised flows: per address pair, how many SPIs (at least), packets, bytes."""
        out = []
        for (src, dst, sport, dport), f in self.overflow.items():
            out.append(
                {
                    "src": addr_text(src) if src else "other hosts",
                    "dst": addr_text(dst) if dst else "",
                    "sport": sport,
                    "dport": dport,
                    "spis": len(f.overflow_spis or ()),
                    "spis_exact": self._overflow_spis < MAX_OVERFLOW_SPIS,
                    "packets": f.packets,
                    "bytes": f.bytes,
                    "first_frame": f.first_frame,
                    "first_ts": f.first_ts,
                    "last_ts": f.last_ts,
                }
            )
        return sorted(out, key=lambda d: -d["packets"])

    def flows_out(self, *, final: bool = True) -> list[EspFlow]:
        """The flows as report data. ``final=False`` (a snapshot mid-capture) leaves a suspected
        sequence reset pending instead of deciding it: more packets may still confirm it."""
        out: list[EspFlow] = []
        for f in sorted(self.flows.values(), key=lambda x: (x.first_frame, x.spi)):
            if final and f.saved is not None and f.packets - f.saved[3] < RESET_CONFIRM:
                self._undo_reset(f, f.saved)  # nothing followed the low packet: not a restart
                f.saved = None
            full_top = (f.epoch << 32) | f.top
            span = f.covered + full_top - f.seq_min + 1
            unique = f.packets - f.duplicates - f.too_old
            flow = EspFlow(
                spi=f.spi,
                src=addr_text(f.src),
                dst=addr_text(f.dst),
                encap="udp" if f.sport or f.dport else "none",
                sport=f.sport,
                dport=f.dport,
                packets=f.packets,
                bytes=f.bytes,
                seq_first=f.seq_first,
                seq_last=f.seq_last,
                seq_min=f.seq_min,
                seq_max=f.seq_max,
                first_ts=f.first_ts,
                last_ts=f.last_ts,
                first_frame=f.first_frame,
                last_frame=f.last_frame,
                duplicates=f.duplicates,
                reordered=f.reordered,
                gaps=max(0, span - unique) if f.too_old == 0 else 0,
                decrypted=f.decrypted,
                integrity_failed=f.integrity_failed,
                undecryptable=f.undecryptable,
                truncated=f.truncated,
                keys=f.decryptor is not None and f.decryptor is not False,
            )
            flow.inner_protocols.update(f.inner)
            t = getattr(f.decryptor, "transform", None) if f.decryptor else None
            spec = getattr(t, "spec", None)
            flow.seq = SequenceStats(
                replay_window=self.window,
                tracking_window=self.track,
                too_old=f.too_old,
                max_reorder_depth=f.max_reorder_depth,
                deepest_frame=f.deepest_frame,
                out_of_window=f.out_of_window,
                oow_events=list(f.oow_events),
                replays=f.replays,
                replay_events=list(f.replay_events),
                capture_duplicates=f.capture_dups,
                dup_events=list(f.dup_events),
                dup_unverified=f.dup_unverified,
                resets=f.resets,
                reset_events=list(f.reset_events),
                esn_wraps=f.epoch,
                wrap_events=list(f.wrap_events),
                idle_gaps=list(f.idle),
                idle_gaps_dropped=f.idle_dropped,
                idle_gap_min=self.idle_gap,
            )
            flow.max_esp_len = f.max_len
            flow.decrypt_problem = f.decrypt_problem
            flow.key_matched_by_spi_only = f.key_matched_by_spi_only
            flow.key_source = f.key_source
            flow.failed_frames = [fr for fr, _ in f.failed_frames]
            flow.failed_ts = [ts for _, ts in f.failed_frames]
            if f.timeline is not None:
                flow.timeline = f.timeline.view()
            if spec is not None:
                flow.esp_transform = EspTransformInfo(spec.name, t.iv_size, t.icv_size, t.align)
            out.append(flow)
        return out
