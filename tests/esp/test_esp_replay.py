"""Anti-replay window model (RFC 4303 §3.4.3, Appendix A)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecdiag.esp.replay import (
    ESN_GUESS_WINDOW,
    EsnTracker,
    ReplayStatus,
    ReplayWindow,
    RingWindow,
    esn_high,
    ring_advance,
    ring_size,
)


def test_window_semantics() -> None:
    w = ReplayWindow(size=4)
    assert [w.check_and_update(s).status for s in (1, 2, 5, 3)] == [ReplayStatus.NEW] * 4
    # 5 is the right edge; the window holds 2..5, 2 was seen, 4 was not.
    assert w.check_and_update(2).status == ReplayStatus.DUPLICATE
    v = w.check_and_update(1)
    assert (v.status, v.window_needed, v.accepted) == (ReplayStatus.TOO_OLD, 5, False)
    assert w.check_and_update(4).status == ReplayStatus.NEW
    assert w.check_and_update(4).status == ReplayStatus.DUPLICATE
    # A jump larger than the window clears it.
    assert w.check_and_update(100).window_needed == 0
    assert w.check_and_update(97).status == ReplayStatus.NEW
    assert w.check_and_update(96).status == ReplayStatus.TOO_OLD


def test_check_does_not_update() -> None:
    w = ReplayWindow(size=32)
    assert w.check(10).status == ReplayStatus.NEW
    assert w.check(10).status == ReplayStatus.NEW
    w.update(w.check(10).seq)
    assert w.check(10).status == ReplayStatus.DUPLICATE
    with pytest.raises(ValueError):
        ReplayWindow(size=0)


def test_esn_appendix_a() -> None:
    # Case A (Tl >= W - 1): a low sequence number after the top is past a wrap.
    w = ReplayWindow(size=64, esn=True, top=0x3_FFFFFFF0)
    assert w.full_seq(0xFFFFFFF8) == 0x3_FFFFFFF8
    assert w.full_seq(0x00000002) == 0x4_00000002
    assert w.check_and_update(0x00000002).seq == 0x4_00000002
    # Case B (Tl < W - 1): now the window spans the wrap, late packets from before it map down.
    assert w.full_seq(0xFFFFFFF9) == 0x3_FFFFFFF9
    assert w.check_and_update(0xFFFFFFF9).status == ReplayStatus.NEW
    assert w.check_and_update(0xFFFFFFF9).status == ReplayStatus.DUPLICATE
    assert w.full_seq(0x00000010) == 0x4_00000010
    # Without ESN the wire value is the sequence number.
    assert ReplayWindow(esn=False, top=5).full_seq(0xFFFFFFFF) == 0xFFFFFFFF


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 80), seqs=st.lists(st.integers(1, 300), max_size=120))
def test_matches_a_naive_model(size: int, seqs: list[int]) -> None:
    w = ReplayWindow(size=size)
    seen: set[int] = set()
    top = 0
    for s in seqs:
        v = w.check_and_update(s)
        if s > top:
            expect, needed = ReplayStatus.NEW, 0
        elif s <= top - size:
            expect, needed = ReplayStatus.TOO_OLD, top - s + 1
        else:
            expect = ReplayStatus.DUPLICATE if s in seen else ReplayStatus.NEW
            needed = top - s + 1
        assert (v.status, v.window_needed, v.seq) == (expect, needed, s)
        if expect == ReplayStatus.NEW:
            seen.add(s)
            top = max(top, s)


# -- one definition in three forms: the fast ring and the ESN tracker agree with ReplayWindow --

_steps = st.lists(
    st.one_of(
        st.just(1),  # in order: the tracker's inlined step
        st.integers(2, 5000),  # a gap (may exceed the ring: it is cleared whole)
        st.integers(-6000, 0),  # reordering, a duplicate, or older than the window
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(size=st.sampled_from([1, 2, 5, 32, 64, 100, 1024, 4096]), start=st.integers(1, 0xFFFF0000), steps=_steps)
def test_ring_window_gives_the_reference_verdicts(size: int, start: int, steps: list[int]) -> None:
    """RFC 4303 §3.4.3: the tracker's fast form judges exactly like the reference window."""
    ref, fast = ReplayWindow(size=size), RingWindow(size=size)
    seq = start
    for step in steps:
        seq = min(max(1, seq + step), 0xFFFFFFFF)
        assert fast.check_and_update(seq) == ref.check_and_update(seq), (size, seq)
        assert fast.top == ref.top


@settings(max_examples=500, deadline=None)
@given(top=st.integers(0, (1 << 64) - 1), seq_lo=st.integers(0, 0xFFFFFFFF))
def test_esn_guess_is_the_nearest_high_half(top: int, seq_lo: int) -> None:
    """Appendix A with W = 2^31: the guessed high half puts the number nearest to ``top``
    (ties and the 0 / 2^32 - 1 ends excepted, where it stays in range)."""
    h = EsnTracker(top).guess(seq_lo)
    assert h == esn_high(top, seq_lo, ESN_GUESS_WINDOW)
    th = top >> 32
    near = [c for c in (th - 1, th, th + 1) if 0 <= c <= 0xFFFFFFFF]
    dist = {c: abs(((c << 32) | seq_lo) - top) for c in near}
    assert dist[h] <= min(dist.values()) + 1


def test_esn_guess_across_a_wrap() -> None:
    t = EsnTracker(0x2_FFFFFFF0)
    assert t.guess(0x00000005) == 3  # just after the wrap
    assert t.guess(0xFFFFFF00) == 2  # a straggler from before it
    assert EsnTracker(0).guess(0xFFFFFFFF) == 0  # never below zero


def test_ring_size_and_advance() -> None:
    assert ring_size(64) == 128 and ring_size(64, 4096, 1 << 16) == 4096
    assert ring_size(5000, 4096, 1 << 16) == 16384 and ring_size(1 << 20, 4096, 1 << 16) == 1 << 16
    seen = bytearray(8)
    seen[7] = 1  # top = 7
    ring_advance(seen, 7, 10)  # across the ring's end: slots 0 and 1 cleared, 2 set
    assert list(seen) == [0, 0, 1, 0, 0, 0, 0, 1]
    ring_advance(seen, 0xFFFFFFFE, 3)  # across 2^32: the step is 5 modulo 2^32
    assert seen[3] == 1 and seen[7] == 0
