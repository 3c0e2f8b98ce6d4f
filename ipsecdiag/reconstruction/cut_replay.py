"""The first packets after a cut, replayed through the true state (merge.py's slow path).

When a flow that continues across a cut cannot be joined directly (a packet after the cut
reorders, repeats or resets below the sequence numbers before it), the main process reads the
range again from its start, only until the flow's first ``upto`` packets in it
(EspTracker.snap_at), and runs them through the real tracker seeded with the flow's serial state
at the cut and with the serial ring of recent packets (other flows' packets enter that ring but
are not tracked). After those packets the worker's flow state is provably on the serial track
again when: no reset is pending or tried, the highest sequence number is the same, every
seen-flag the worker read after them lies above the earlier top, and the ESN epochs agree; the
worker's counters and evidence after its snapshot are then added to the replayed state.
"""

from __future__ import annotations

from pathlib import Path

from ..capture.decode import Decoder
from ..capture.model import FragmentGroup, IcmpError, IkeDatagram
from ..capture.split import ByteRange, open_range
from .esp_tracker import (
    MAX_EVENTS,
    MAX_IDLE,
    UNDO_PACKETS,
    EspTracker,
    FlowProbe,
    FlowSnap,
    FlowState,
    contiguous_ring,
)
from .options import AnalysisOptions

FlowKey = tuple[bytes, bytes, bytes, int, int]
TailEntry = tuple[float, FlowKey | None, int, bytes]  # ts, flow, global frame, ESP bytes


class CutProblem(Exception):
    """The replayed state and the worker's do not provably agree."""


class _EspOnly:
    """A Sink that passes ESP on and ignores the rest (the main pass has it already)."""

    def __init__(self, on_esp: object) -> None:
        self.on_esp = on_esp

    def on_ike(self, msg: IkeDatagram) -> None: ...
    def on_ah(self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, off: int, end: int) -> None: ...
    def on_keepalive(self, frame: int, ts: float, src: str, dst: str, sport: int, dport: int) -> None: ...
    def on_icmp_error(self, err: IcmpError) -> None: ...
    def on_fragment_group(self, group: FragmentGroup) -> None: ...
    def on_malformed(self, frame: int, ts: float, layer: str, offset: int, reason: str) -> None: ...
    def on_truncated(self, frame: int, ts: float, caplen: int, origlen: int) -> None: ...


def replay_prefix(
    path: str | Path,
    rng: ByteRange,
    base: int,
    options: AnalysisOptions,
    flows: dict[FlowKey, FlowState],
    tail: list[TailEntry],
    upto: int,
) -> tuple[dict[FlowKey, FlowProbe], dict[FlowKey, int]]:
    """Advance ``flows`` (serial states at the cut, rings materialised) through their first
    ``upto`` packets of ``rng`` (frames numbered from ``base`` + 1). Returns the probes of the
    replayed packets and how many packets each flow had replayed."""
    tracker = EspTracker(
        replay_window=options.replay_window, dup_seconds=options.dup_seconds, idle_gap=options.natt_idle_timeout
    )
    tracker.probe = {}
    tracker.flows.update(flows)
    other = FlowState(-1, b"", b"", 0, 0)  # stands for every flow not replayed
    ring = tracker._ring
    for ts, key, frame, data in tail:
        ring.append((ts, flows.get(key, other) if key is not None else other, frame, data, 0, len(data)))
    counts = dict.fromkeys(flows, 0)
    left = len(flows)
    track = tracker.on_esp
    remember = ring.append

    def on_esp(
        frame: int, ts: float, src: bytes, dst: bytes, sport: int, dport: int, data: bytes, off: int, end: int
    ) -> None:
        nonlocal left
        if end - off < 8:
            return  # malformed: in no flow and not remembered
        key = (data[off : off + 4], src, dst, sport, dport)
        n = counts.get(key)
        if n is not None and n < upto:
            counts[key] = n + 1
            left -= n + 1 == upto
            track(frame, ts, src, dst, sport, dport, data, off, end)
        else:
            remember((ts, other, frame, data, off, end))

    decoder = Decoder(_EspOnly(on_esp), ike_ports=frozenset(options.ike_ports), natt_ports=frozenset(options.natt_ports))  # type: ignore[arg-type]
    feed = decoder.feed
    with open_range(path, rng) as cap:
        for frame, ts, linktype, data, orig_len in cap.frames():
            feed(base + frame, ts, linktype, data, orig_len)
            if not left:
                break
    for f in flows.values():
        tracker._ring_of(f)  # a ring of its own, not this tracker's scratch one
    probes = {key: tracker.probe.get(f) or FlowProbe() for key, f in flows.items()}
    return probes, counts


_ADDED = ("packets", "bytes", "duplicates", "replays", "capture_dups", "dup_unverified", "reordered", "too_old",
          "out_of_window")  # fmt: skip
_LISTS = ("replay_events", "dup_events", "oow_events", "reset_events", "wrap_events")


def join_after_prefix(s: FlowState, w: FlowState, snap: FlowSnap, post: FlowProbe, cut: int) -> None:
    """``s`` (the replayed serial state after the flow's first snap_at packets of the range)
    followed by what the worker did after its snapshot (``w`` minus ``snap``). ``cut`` is the
    full sequence number at or below which the serial seen-ring holds flags from before the
    range (its top before the range; -1 when a reset since started a new numbering and ring).
    Raises CutProblem."""
    v = snap.values
    if s.saved is not None and s.packets - s.saved[3] > UNDO_PACKETS:
        # A reset confirmed by more packets than an undo looks back: the saved state is only
        # dropped by the next forward jump and never read (the worker's likewise).
        s.saved = None
    pending = snap.pending_reset and v["packets"] - snap.reset_packets <= UNDO_PACKETS
    if s.saved is not None or pending or post.reset_calls or w.resets != v["resets"]:
        raise CutProblem("a sequence reset is pending or tried after the replayed packets")
    if s.top != v["top"]:
        raise CutProblem("the replayed state and the worker's differ in their highest sequence number")
    # Above the cut both rings must hold the same flags (the worker reached the same top by the
    # same packets, but a different path, e.g. a bogus 2^31 jump and wrap, can clear some).
    track = len(s.seen)
    full = (s.epoch << 32) | s.top
    if cut < full:
        theirs = snap.ring if snap.ring is not None else contiguous_ring(track, v["seq_min"], v["top"])
        above = contiguous_ring(track, cut + 1, full)
        if (int.from_bytes(s.seen) ^ int.from_bytes(theirs)) & int.from_bytes(above):
            raise CutProblem("the replayed ring and the worker's differ above the cut")
    # The worker counted ESN epochs from its range; the serial numbers are ``delta`` epochs on.
    delta = s.epoch - v["epoch"]
    if post.low_lookup is not None and post.low_lookup + (delta << 32) <= cut:
        raise CutProblem("reordering or a repeat reaches below the cut after the replayed packets")
    if post.half_jumps and (s.epoch > 0) != (v["epoch"] > 0):
        raise CutProblem("a 2^31 jump read against different ESN epochs")
    if post.exhausted:
        raise CutProblem("a repeated packet's original may lie before the cut")
    for name in _LISTS:
        _extend(s, w, name, snap.lengths[name], MAX_EVENTS)
    kept = w.idle[snap.lengths["idle"] :]
    post_dropped = w.idle_dropped - v["idle_dropped"]
    if post_dropped and len(s.idle) + len(kept) < MAX_IDLE:
        raise CutProblem("idle periods after the replayed packets were dropped by the worker only")
    idle = [*s.idle, *kept]
    s.idle_dropped += post_dropped + max(0, len(idle) - MAX_IDLE)
    s.idle = idle[:MAX_IDLE]
    for name in _ADDED:
        setattr(s, name, getattr(s, name) + getattr(w, name) - v[name])
    s.max_len = max(s.max_len, w.max_len)
    if post.max_depth > s.max_reorder_depth:  # the probe saw the packets after the snapshot only
        s.max_reorder_depth, s.deepest_frame = post.max_depth, post.deepest_frame
    if post.low_reordered is not None and post.low_reordered < s.seq_min:
        s.seq_min = post.low_reordered
    s.epoch += w.epoch - v["epoch"]
    s.top, s.seen = w.top, w.seen
    if w.packets > v["packets"]:
        s.seq_last, s.last_ts, s.last_frame = w.seq_last, w.last_ts, w.last_frame


def _extend(s: FlowState, w: FlowState, name: str, at: int, cap: int) -> None:
    mine, theirs = getattr(s, name), getattr(w, name)
    kept = theirs[at:]
    if len(theirs) >= cap and len(mine) + len(kept) < cap:
        raise CutProblem(f"{name} after the replayed packets were dropped by the worker only")
    setattr(s, name, [*mine, *kept][:cap])
