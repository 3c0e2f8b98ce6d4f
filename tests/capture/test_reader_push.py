"""CaptureFile.push hands the decoder exactly the records frames() yields: same fields, same
stats, same truncation report, first and last timestamps; once only."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ipsecdiag.capture.model import CaptureError
from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapNgWriter, PcapWriter

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


def _both(path: Path) -> None:
    with open_capture(path) as a:
        want = list(a.frames())
        want_stats = a.stats
    got: list[tuple] = []
    with open_capture(path) as b:
        first, last = b.push(lambda *fr: got.append(fr))
        assert b.started
        with pytest.raises(CaptureError, match="once"):
            b.frames()
    assert got == want
    assert b.stats == want_stats
    assert (first, last) == ((want[0][1], want[-1][1]) if want else (None, None))


def _write(path: Path, n: int, *, ng: bool = False, nano: bool = False) -> None:
    w = PcapNgWriter(path, nanosecond=nano) if ng else PcapWriter(path, 1, nanosecond=nano)
    with w:
        for i in range(n):
            w.write(1_700_000_000 + i * 0.000123, bytes([i & 0xFF]) * (60 + i % 1500))


@pytest.mark.parametrize("n", [0, 1, 5000])
@pytest.mark.parametrize("ng", [False, True])
def test_generated(tmp_path: Path, n: int, ng: bool) -> None:
    p = tmp_path / ("c.pcapng" if ng else "c.pcap")
    _write(p, n, ng=ng, nano=n == 5000)
    _both(p)
    gz = tmp_path / (p.name + ".gz")
    gz.write_bytes(gzip.compress(p.read_bytes()))
    _both(gz)


def test_truncated_and_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "c.pcap"
    _write(p, 3000)
    data = p.read_bytes()
    for cut in (len(data) - 7, len(data) // 2 + 3, 30, 24):
        t = tmp_path / f"cut{cut}.pcap"
        t.write_bytes(data[:cut])
        _both(t)
    bad = bytearray(data)
    bad[24 + 8 : 24 + 12] = (1 << 30).to_bytes(4, "little")  # first record claims 1 GiB
    t = tmp_path / "bad.pcap"
    t.write_bytes(bytes(bad))
    _both(t)


def test_samples() -> None:
    for p in sorted(SAMPLES.glob("*.pcap")):
        _both(p)


def test_analysis_same_through_push_and_frames() -> None:
    from ipsecdiag.pipeline import analyze_capture
    from ipsecdiag.report.json import report_dict

    for p in sorted(SAMPLES.glob("*.pcap")):
        pushed = report_dict(analyze_capture(p))  # no per-frame observer: the push path
        seen: list[int] = []
        iterated = report_dict(analyze_capture(p, on_frame=lambda f, *_, s=seen: s.append(f)))
        assert seen and pushed == iterated, p.name
