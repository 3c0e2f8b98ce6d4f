"""Per-flow ESP state stays small (issue 14): an in-order flow has no seen-ring of its own and
no event lists; a flow gets its ring on its first gap, reordering or repeat, and the results
are those of a tracker that gave every flow its ring from the first packet."""

from __future__ import annotations

import random
import struct
import tracemalloc

import pytest

from ipsecdiag.reconstruction.esp_tracker import EspTracker, FlowState

SRC, DST = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])


def pkt(spi: int, seq: int, salt: int = 0) -> bytes:
    return bytes(14) + struct.pack("!II", spi, seq & 0xFFFFFFFF) + struct.pack("!QQ", seq, salt)


def test_in_order_flows_cost_under_a_kilobyte() -> None:
    n = 50_000
    packets = [[pkt(spi, s) for s in (1, 2, 3)] for spi in range(1, n + 1)]
    src, dst = bytes(SRC), bytes(DST)
    tracemalloc.start()
    try:
        t = EspTracker()
        t.max_flows = n
        base = tracemalloc.get_traced_memory()[0]
        frame = 0
        for ps in packets:
            for p in ps:
                frame += 1
                t.on_esp(frame, frame * 1e-3, src, dst, 0, 0, p, 14, len(p))
        per_flow = (tracemalloc.get_traced_memory()[0] - base) / len(t.flows)
    finally:
        tracemalloc.stop()
    assert len(t.flows) == n
    assert per_flow < 1024, f"{per_flow:.0f} bytes per flow"  # 5.3 KB with a 4 KiB ring each


class EagerTracker(EspTracker):
    """Every flow gets its own ring at once (the behaviour before issue 14)."""

    def _new_flow(self, key, spi, seq, frame, ts):  # type: ignore[no-untyped-def]
        f: FlowState = super()._new_flow(key, spi, seq, frame, ts)
        if f.spi >= 0:
            self._ring_of(f)
        return f


def _sequences(rng: random.Random) -> list[int]:
    start = rng.choice([1, 1000, 0xFFFFF000])
    seqs = list(range(start, start + rng.randint(50, 9000)))
    for _ in range(rng.randint(0, 6)):
        i = rng.randrange(len(seqs))
        kind = rng.choice(["gap", "swap", "dup", "old", "reset"])
        if kind == "gap":
            del seqs[i : i + rng.randint(1, 300)]
        elif kind == "swap" and i + 5 < len(seqs):
            seqs[i], seqs[i + 5] = seqs[i + 5], seqs[i]
        elif kind == "dup":
            seqs.insert(i, seqs[max(0, i - rng.randint(1, 5000))])
        elif kind == "old":
            seqs.insert(i, max(1, seqs[i] - rng.randint(1, 20000)))
        else:
            seqs[i:i] = list(range(1, 40))
    return [s & 0xFFFFFFFF for s in seqs]


@pytest.mark.parametrize("seed", range(12))
def test_lazy_rings_give_the_eager_results(seed: int) -> None:
    rng = random.Random(seed)
    lazy, eager = EspTracker(replay_window=rng.choice([32, 64, 1024])), None
    eager = EagerTracker(replay_window=lazy.window)
    frame = 0
    for spi in (1, 2, 3):
        for seq in _sequences(rng):
            frame += 1
            p = pkt(spi, seq, frame % 3)
            for t in (lazy, eager):
                t.on_esp(frame, frame * 0.01, SRC, DST, 0, 0, p, 14, len(p))
    assert lazy.flows_out() == eager.flows_out()
