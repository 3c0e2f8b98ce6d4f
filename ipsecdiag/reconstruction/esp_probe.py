"""What a byte-range worker notes about its ESP flows for the exact merge (merge.py,
cut_replay.py), beside the tracker that fills it in: a probe of the branches that read state
from before the range, a snapshot after a flow's first packets, and the seen-ring of a
contiguous numbering."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .esp_tracker import FlowState


class FlowProbe:
    """What a byte-range worker notes about one flow for the exact merge (merge.py): the
    lowest full sequence number (in the flow's own epochs) looked up in the seen-ring, the lowest
    sequence number taken as reordered, sequence resets tried (undone ones too), and forward jumps
    of 2^31 or more taken while the flow had no ESN wrap (the one branch that reads ``epoch``)."""

    __slots__ = ("deepest_frame", "exhausted", "half_jumps", "low_lookup", "low_reordered", "max_depth", "reset_calls")

    def __init__(self) -> None:
        self.low_lookup: int | None = None
        self.low_reordered: int | None = None
        self.reset_calls = 0
        self.half_jumps = 0
        self.exhausted = 0  # repeats whose original search ran out of remembered packets
        self.max_depth = 0  # the deepest reordering (its first frame), as FlowState's
        self.deepest_frame = 0

    def joined(self, later: FlowProbe) -> FlowProbe:
        """This probe followed by ``later``'s packets."""
        out = FlowProbe()
        for name in ("low_lookup", "low_reordered"):
            a, b = getattr(self, name), getattr(later, name)
            setattr(out, name, b if a is None else a if b is None else min(a, b))
        out.reset_calls = self.reset_calls + later.reset_calls
        out.half_jumps = self.half_jumps + later.half_jumps
        out.exhausted = self.exhausted + later.exhausted
        deeper = later if later.max_depth > self.max_depth else self
        out.max_depth, out.deepest_frame = deeper.max_depth, deeper.deepest_frame
        return out


# What the merge needs of a flow's state at one point: the sequence state, the counters and
# how long each evidence list was (its entries then are the list's first ones).
_SNAP_FIELDS = (
    "packets", "bytes", "top", "epoch", "seq_min", "resets", "duplicates", "replays", "capture_dups",
    "dup_unverified", "reordered", "too_old", "out_of_window", "max_reorder_depth", "deepest_frame",
    "idle_dropped", "seq_last", "last_ts", "last_frame",
)  # fmt: skip
_SNAP_LISTS = ("replay_events", "dup_events", "oow_events", "reset_events", "wrap_events", "idle")


class FlowSnap:
    """A flow's state after its ``snap_at``-th packet: _SNAP_FIELDS, the lengths of the
    _SNAP_LISTS, and whether a reset was pending."""

    def __init__(self, f: FlowState, scratch: bytearray) -> None:
        self.values = {name: getattr(f, name) for name in _SNAP_FIELDS}
        # The seen-flags then (None: contiguous from seq_min to top, the scratch ring).
        self.ring = None if f.seen is scratch else bytes(f.seen)
        self.lengths = {name: len(getattr(f, name)) for name in _SNAP_LISTS}
        self.pending_reset = f.saved is not None
        self.reset_packets = f.saved[3] if f.saved is not None else 0


def contiguous_ring(track: int, lo: int, top: int) -> bytearray:
    """The seen-ring of a numbering in which every sequence number lo..top was seen."""
    seen = bytearray(track)
    n = min(top - lo + 1, track)
    start = (top - n + 1) & (track - 1)
    head = min(n, track - start)
    seen[start : start + head] = b"\x01" * head
    seen[: n - head] = b"\x01" * (n - head)
    return seen
