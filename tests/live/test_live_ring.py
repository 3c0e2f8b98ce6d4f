"""--write and --ring: the kept capture, ring rotation and pruning, the NxSIZE syntax."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ipsecdiag.capture.multi import capture_groups
from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.ring import CaptureKeeper, parse_ring

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


def _frames(path: Path) -> list[tuple]:
    with open_capture(path) as c:
        return list(c.frames())


@pytest.mark.parametrize(
    ("text", "want"),
    [("10x100MB", (10, 100_000_000)), ("2x64KiB", (2, 65536)), ("3 x 1.5GB", (3, 1_500_000_000))],
)
def test_parse_ring(text: str, want: tuple[int, int]) -> None:
    assert parse_ring(text) == want


@pytest.mark.parametrize(
    ("text", "why"),
    [("10", "expected NxSIZE"), ("1x100MB", "2 to"), ("3x10kB", "at least"), ("3x5parsecs", "unit")],
)
def test_parse_ring_refuses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_ring(text)


def test_write_keeps_every_frame_exactly(tmp_path: Path) -> None:
    src = _frames(SAMPLES / "ikev2-frag-blackhole.pcap")
    out = tmp_path / "kept.pcapng"
    k = CaptureKeeper(out, interface="eth0")
    for fr in src:
        k.write(fr)
    k.close()
    assert k.files == [out]
    assert stat.S_IMODE(os.stat(out).st_mode) & 0o077 == 0  # private: it holds the tunnel's traffic
    back = _frames(out)
    assert [f[1:] for f in back] == [f[1:] for f in src]


def test_ring_rotates_prunes_and_reads_back_as_one_capture(tmp_path: Path) -> None:
    # 2000 frames of ~200 bytes in files of 64 KiB: 7 files, of which the ring keeps 4
    base = [f for f in _frames(SAMPLES / "ikev2-psk-ok.pcap") if len(f[3]) > 100]
    frames = []
    for i in range(2000):
        n, ts, lt, data, orig = base[i % len(base)]
        frames.append((i + 1, 1_800_000_000.0 + i * 0.5, lt, data, orig))
    k = CaptureKeeper(tmp_path / "ring.pcapng", ring=(4, 65536), interface="eth0")
    for fr in frames:
        k.write(fr)
    k.close()
    files = k.files
    assert len(files) == 4 and len(k.written) > 5
    assert all(not p.exists() for p in k.deleted)
    names = [p.name for p in files]
    assert names == sorted(names) and all(n.startswith("ring_") and n.endswith(".pcapng") for n in names)
    assert names[0].split("_")[1] == f"{len(k.written) - 3:05d}"
    (group,) = list(_groups(files))
    kept = group
    # the ring holds the newest frames, in order, with nothing lost between its files
    assert [f[1:] for f in kept] == [f[1:] for f in frames[-len(kept):]]
    assert [f[0] for f in kept] == list(range(1, len(kept) + 1))


def _groups(files: list[Path]):
    for g in capture_groups(files):
        yield list(g.frames())
