"""A model of the receiver's anti-replay window (RFC 4303 §3.4.3, ESN per Appendix A).

Used by diagnosis to say which packets a receiver would drop and how large a window would have
been needed. The window is a sliding bitmap (an int) whose right edge is the highest sequence
number accepted so far: bit ``i`` set means ``top - i`` was seen. Memory is constant per SA.

The RFC updates the window only after the ICV verifies; :meth:`ReplayWindow.check` and
:meth:`ReplayWindow.update` allow that order, :meth:`ReplayWindow.check_and_update` does both.

This module is the one definition of the window in the package, in three forms that share
their arithmetic:

* :class:`ReplayWindow`: the receiver's window with ESN (the reference form; ``esp.tunnel``);
* :class:`EsnTracker`: the high-order half alone, as a decryptor needs it (``esp.sa``,
  ``esp.ah``): the Appendix A2.1 inference with W = 2^31 (the nearest neighbour of ``top``);
* :class:`RingWindow`: the fast form the ESP tracker of ``reconstruction/`` runs on a million
  packets: "seen" flags in a ``bytearray`` ring indexed by ``seq & (size - 1)`` (a power of two
  at least the window, so it divides 2^32), slid by :func:`ring_advance`. A ring can remember
  more numbers than the window holds (the tracker tells replays from too-old packets with
  that); its verdicts inside the window are those of :class:`ReplayWindow`, which a property
  test holds on random sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

_MASK32 = 0xFFFFFFFF


def esn_high(top: int, seq_lo: int, window: int) -> int:
    """The high-order 32 bits a receiver whose highest authenticated 64-bit sequence number is
    ``top`` and whose window is ``window`` assigns to the 32 bits ``seq_lo`` on the wire
    (RFC 4303 Appendix A2.1). Never below 0 nor above 2^32 - 1."""
    th, tl = top >> 32, top & _MASK32
    if tl >= window - 1:  # case A: the window lies within one sub-space
        seqh = th if seq_lo >= tl - window + 1 else th + 1
    else:  # case B: the window spans two sub-spaces
        seqh = th - 1 if seq_lo >= (tl - window + 1) & _MASK32 else th
    return min(max(seqh, 0), _MASK32)


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
        return (esn_high(self.top, seq, self.size) << 32) | seq

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


ESN_GUESS_WINDOW = 1 << 31  # Appendix A: a decryptor guesses the high half nearest to ``top``


class EsnTracker:
    """High-order sequence bits of one SA direction (RFC 4303 Appendix A), for a decryptor.

    ``top`` is the highest 64-bit sequence number authenticated so far. :meth:`guess` is
    :func:`esn_high` with W = 2^31; when the ICV fails with it, :meth:`alternatives` gives the
    neighbouring high halves to try (Appendix A3: a receiver may try Seqh + 1 / - 1).
    """

    __slots__ = ("top",)

    def __init__(self, top: int = 0) -> None:
        self.top = top

    def guess(self, seq_lo: int) -> int:
        """The high half that puts ``seq_lo`` nearest to ``top``."""
        return esn_high(self.top, seq_lo, ESN_GUESS_WINDOW)

    def alternatives(self, seq_lo: int, tried: int) -> list[int]:
        """The other neighbours of ``top >> 32``, nearest first, for when ``tried`` failed."""
        th = self.top >> 32
        cands = [h for h in (th, th + 1, th - 1) if 0 <= h <= _MASK32 and h != tried]
        cands.sort(key=lambda h: abs(((h << 32) | seq_lo) - self.top))
        return cands

    def update(self, seq_hi: int, seq_lo: int) -> None:
        full = (seq_hi << 32) | seq_lo
        if full > self.top:
            self.top = full


def ring_size(window: int, minimum: int = 64, maximum: int = 1 << 16) -> int:
    """A ring length for ``window``: a power of two (it divides 2^32, so slots stay valid
    across a 32-bit wrap), at least twice the window and ``minimum``, at most ``maximum``."""
    n = 1
    while n < minimum or (n < 2 * window and n < maximum):
        n <<= 1
    return n


def ring_advance(seen: bytearray, top: int, seq: int) -> None:
    """Slide a ring whose right edge is ``top`` to ``seq`` (> ``top``, modulo 2^32 after a
    wrap): the slots of the skipped numbers are cleared and ``seq``'s is set."""
    size = len(seen)
    m = size - 1
    if (seq - top) & _MASK32 >= size:
        seen[:] = bytes(size)
    else:
        a, b = (top + 1) & m, seq & m
        if a <= b:
            seen[a:b] = bytes(b - a)
        else:
            seen[a:] = bytes(size - a)
            seen[:b] = bytes(b)
    seen[seq & m] = 1


class RingWindow:
    """The fast form of :class:`ReplayWindow` (32-bit sequence numbers): the same verdicts,
    kept in a ``bytearray`` ring of :func:`ring_size` slots. The ESP tracker keeps ``seen``
    and ``top`` in its per-flow state and inlines the in-order step (``seen[seq & m] = 1``);
    everything else goes through :func:`ring_advance` and :meth:`status`."""

    __slots__ = ("seen", "size", "top")

    def __init__(self, size: int = 64, top: int = 0) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self.size = size
        self.top = top
        self.seen = bytearray(ring_size(size))

    def status(self, seq: int) -> ReplayStatus:
        """Judge ``seq`` without changing the window."""
        if seq > self.top:
            return ReplayStatus.NEW
        d = self.top - seq
        if d >= self.size:
            return ReplayStatus.TOO_OLD
        return ReplayStatus.DUPLICATE if self.seen[seq & (len(self.seen) - 1)] else ReplayStatus.NEW

    def check_and_update(self, seq: int) -> Verdict:
        st = self.status(seq)
        need = 0 if seq > self.top else self.top - seq + 1
        if st == ReplayStatus.NEW:
            if seq > self.top:
                ring_advance(self.seen, self.top, seq)
                self.top = seq
            else:
                self.seen[seq & (len(self.seen) - 1)] = 1
        return Verdict(st, seq, need)
