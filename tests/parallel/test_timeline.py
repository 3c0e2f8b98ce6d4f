"""The per-flow packet histogram (reconstruction/timeline.py): bounded, every packet in its bin,
the finest grid that fits, and any split of a flow merging into exactly the whole (the
byte-range merge relies on it; test_merge compares whole reports with it on)."""

from __future__ import annotations

import random
from math import floor, log2

from ipsecdiag.reconstruction.timeline import BINS, K_MIN, Timeline, merged

T0 = 1_764_700_000.0


def build(points: list[tuple[float, int]]) -> Timeline:
    t = Timeline(*points[0])
    for ts, n in points[1:]:
        t.add(ts, n)
    return t


def test_every_packet_in_its_bin_on_the_finest_grid_that_fits() -> None:
    rng = random.Random(13)
    for _ in range(200):
        span = rng.choice([0.0005, 0.05, 3.0, 700.0, 90_000.0])
        points = [(T0 + rng.uniform(0, span), rng.randint(40, 1500)) for _ in range(rng.randint(1, 150))]
        if rng.random() < 0.5:
            points.sort()  # in time order, and (the other half) not: a capture out of order
        v = build(points).view()
        w = v.bin_seconds
        assert len(v.packets) <= BINS and v.packets[0] and v.packets[-1]
        assert sum(v.packets) == len(points) and sum(v.bytes) == sum(n for _, n in points)
        for ts, _ in points:
            assert v.start <= ts < v.start + len(v.packets) * w
        assert v.start == floor(min(ts for ts, _ in points) / w) * w
        k = round(log2(w))
        if k > K_MIN:  # one level finer would not fit in BINS bins
            fine = [floor(ts / 2.0 ** (k - 1)) for ts, _ in points]
            assert max(fine) - min(fine) >= BINS


def test_histograms_of_parts_merge_into_the_whole() -> None:
    rng = random.Random(7)
    for _ in range(200):
        points = [(T0 + rng.expovariate(1.0) * rng.choice([0.01, 10.0]), 100) for _ in range(rng.randint(2, 120))]
        points.sort()
        whole = build(points).view()
        cuts = sorted(rng.sample(range(1, len(points)), min(len(points) - 1, rng.randint(1, 3))))
        parts = [points[a:b] for a, b in zip([0, *cuts], [*cuts, len(points)], strict=True)]
        acc = None
        for part in parts:
            acc = merged(acc, build(part))
        assert acc is not None and acc.view() == whole


def test_a_packet_far_later_raises_the_grid() -> None:
    t = Timeline(T0, 100)
    t.add(T0 + 0.0001, 100)
    assert t.view().bin_seconds == 2.0**K_MIN
    t.add(T0 + 3600, 60)
    v = t.view()
    assert v.bin_seconds == 64.0 and sum(v.packets) == 3 and v.bytes[0] == 200 and v.bytes[-1] == 60
