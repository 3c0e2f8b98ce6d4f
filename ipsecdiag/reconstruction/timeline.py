"""A bounded per-flow histogram of packets and bytes over time, for the ESP plots (issue 13).

Bins lie on an absolute grid ``2^k`` seconds wide: a packet at ``ts`` falls in bin
``floor(ts / 2^k)``. At most :data:`BINS` consecutive bins are kept; a packet outside them
raises ``k`` (each raise merges neighbouring bins pairwise: bin ``i`` becomes ``i >> 1``)
until the lowest and the highest occupied bins are fewer than BINS apart. ``k`` is therefore
the smallest level (from :data:`K_MIN`) at which all of the flow's packets fit, whatever the
order they came in: two histograms of parts of a flow merge exactly into the histogram of
the whole (raise both to the larger level, add, raise further while needed), which the
byte-range merge relies on (split == serial).

Dividing by a power of two is exact in binary floating point, so ``floor(ts * 2^-k)`` is the
exact bin index at every level and ``floor(ts * 2^-(k+1)) == floor(ts * 2^-k) >> 1``.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from math import floor

from ..wire.jsontypes import Json

BINS = 64
K_MIN = -10  # the finest bins: 2^-10 s (about a millisecond)


@dataclass(frozen=True)
class EspTimeline:
    """A flow's histogram as report data: bin ``i`` covers ``start + i * bin_seconds`` for
    ``bin_seconds``; the first and the last bin hold packets."""

    bin_seconds: float
    start: float
    packets: tuple[int, ...]
    bytes: tuple[int, ...]

    def to_json(self) -> Json:
        return {"bin_seconds": self.bin_seconds, "start": self.start, "packets": list(self.packets), "bytes": list(self.bytes)}


class Timeline:
    """The histogram being built. ``add`` is the per-packet call (only when the report will
    draw it: AnalysisOptions.esp_timeline)."""

    __slots__ = ("k", "scale", "lo", "packets", "bytes")

    def __init__(self, ts: float, n: int) -> None:
        self.k = K_MIN
        self.scale = 2.0**-K_MIN
        self.lo = floor(ts * self.scale)  # index of packets[0] at level k
        # Bins lo .. the highest occupied one only: most flows need few (issue 14: memory per flow).
        self.packets = array("q", [1])
        self.bytes = array("q", [n])

    def add(self, ts: float, n: int) -> None:
        i = floor(ts * self.scale) - self.lo
        have = len(self.packets)
        if 0 <= i < BINS:
            if i >= have:  # a later bin within the window: grow up to it
                self.packets.frombytes(bytes(8 * (i + 1 - have)))
                self.bytes.frombytes(bytes(8 * (i + 1 - have)))
            self.packets[i] += 1
            self.bytes[i] += n
        else:
            sparse = self._sparse()
            j = i + self.lo
            p, b = sparse.get(j, (0, 0))
            sparse[j] = (p + 1, b + n)
            self._set(self.k, sparse)

    def _sparse(self) -> dict[int, tuple[int, int]]:
        """Occupied bins: absolute index at level k -> (packets, bytes)."""
        lo, pk, by = self.lo, self.packets, self.bytes
        return {lo + i: (pk[i], by[i]) for i in range(len(pk)) if pk[i]}

    def _set(self, k: int, sparse: dict[int, tuple[int, int]]) -> None:
        """Take ``sparse`` (at level ``k``), raised until its bins span fewer than BINS."""
        while max(sparse) - min(sparse) >= BINS:
            k += 1
            up: dict[int, tuple[int, int]] = {}
            for i, (p, b) in sparse.items():
                p0, b0 = up.get(i >> 1, (0, 0))
                up[i >> 1] = (p0 + p, b0 + b)
            sparse = up
        self.k, self.scale, self.lo = k, 2.0**-k, min(sparse)
        size = max(sparse) - self.lo + 1
        pk, by = array("q", bytes(8 * size)), array("q", bytes(8 * size))
        for i, (p, b) in sparse.items():
            pk[i - self.lo], by[i - self.lo] = p, b
        self.packets, self.bytes = pk, by

    def merge(self, other: Timeline) -> None:
        """Add ``other`` (the same flow's packets elsewhere in the capture) to this one."""
        k = max(self.k, other.k)
        sparse: dict[int, tuple[int, int]] = {}
        for t in (self, other):
            shift = k - t.k
            for i, (p, b) in t._sparse().items():
                p0, b0 = sparse.get(i >> shift, (0, 0))
                sparse[i >> shift] = (p0 + p, b0 + b)
        self._set(k, sparse)

    def view(self) -> EspTimeline:
        w = 2.0**self.k
        return EspTimeline(w, self.lo * w, tuple(self.packets), tuple(self.bytes))


def merged(a: Timeline | None, b: Timeline | None) -> Timeline | None:
    """``a`` with ``b`` added (either may be None: a flow part without a histogram)."""
    if a is None:
        return b
    if b is not None:
        a.merge(b)
    return a
