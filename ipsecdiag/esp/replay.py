"""A model of the receiver's anti-replay window (RFC 4303 §3.4.3, ESN per Appendix A).

Used by diagnosis to say which packets a receiver would drop and how large a window would have
been needed. The window is a sliding bitmap (an int) whose right edge is the highest sequence
number accepted so far: bit ``i`` set means ``top - i`` was seen. Memory is constant per SA.

The RFC updates the window only after the ICV verifies; :meth:`ReplayWindow.check` and
:meth:`ReplayWindow.update` allow that order, :meth:`ReplayWindow.check_and_update` does both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

_MASK32 = 0xFFFFFFFF


class ReplayStatus(IntEnum):
    NEW = 0  # not seen before and inside or right of the window: accepted
    DUPLICATE = 1  # seen before: a replay (or a capture duplicate)
    TOO_OLD = 2  # left of the window: dropped although never seen


@dataclass(frozen=True, slots=True)
class Verdict:
    """``seq`` is the full (64-bit with ESN) sequence number judged; ``window_needed`` the
    smallest window that would have held it (``top - seq + 1``; 0 when it moved the right edge)."""

    status: ReplayStatus
    seq: int
    window_needed: int

    @property
    def accepted(self) -> bool:
        return self.status == ReplayStatus.NEW


class ReplayWindow:
    """Anti-replay window of ``size`` packets; ``esn`` turns on 64-bit sequence numbers with the
    high half inferred from the 32 bits on the wire exactly as a receiver does (Appendix A2.1)."""

    __slots__ = ("_bits", "_mask", "esn", "size", "top")

    def __init__(self, size: int = 64, esn: bool = False, top: int = 0) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self.size = size
        self.esn = esn
        self.top = top
        self._bits = 0
        self._mask = (1 << size) - 1

    def full_seq(self, seq: int) -> int:
        """The 64-bit sequence number a receiver with this window assigns to a 32-bit ``seq``
        (RFC 4303 Appendix A2.1); without ESN, ``seq`` itself."""
        if not self.esn or seq > _MASK32:
            return seq
        w = self.size
        th, tl = self.top >> 32, self.top & _MASK32
        if tl >= w - 1:  # case A: the window lies within one sub-space
            seqh = th if seq >= tl - w + 1 else th + 1
        else:  # case B: the window spans two sub-spaces
            seqh = th - 1 if seq >= (tl - w + 1) & _MASK32 else th
        return (max(seqh, 0) << 32) | seq

    def check(self, seq: int) -> Verdict:
        """Judge ``seq`` without changing the window."""
        full = self.full_seq(seq)
        if full > self.top:
            return Verdict(ReplayStatus.NEW, full, 0)
        diff = self.top - full
        if diff >= self.size:
            return Verdict(ReplayStatus.TOO_OLD, full, diff + 1)
        if (self._bits >> diff) & 1:
            return Verdict(ReplayStatus.DUPLICATE, full, diff + 1)
        return Verdict(ReplayStatus.NEW, full, diff + 1)

    def update(self, full_seq: int) -> None:
        """Mark ``full_seq`` (as returned in a :class:`Verdict`) received."""
        if full_seq > self.top:
            shift = full_seq - self.top
            self._bits = ((self._bits << shift) | 1) & self._mask if shift < self.size else 1
            self.top = full_seq
        else:
            diff = self.top - full_seq
            if diff < self.size:
                self._bits |= 1 << diff

    def check_and_update(self, seq: int) -> Verdict:
        """Judge ``seq`` and, when accepted, slide or mark the window."""
        v = self.check(seq)
        if v.status == ReplayStatus.NEW:
            self.update(v.seq)
        return v
