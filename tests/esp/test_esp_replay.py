"""Anti-replay window model (RFC 4303 §3.4.3, Appendix A)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecdiag.esp.replay import ReplayStatus, ReplayWindow


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
