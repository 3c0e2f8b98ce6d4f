"""capture/split.py: range boundaries are true record offsets, and the ranges read back to
exactly the serial frames (bundled samples, the shared corpus, generated captures, and a
capture built to fool the plausibility check, where the range check has to catch it)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ipsecdiag.capture.model import CaptureError
from ipsecdiag.capture.reader import PCAP_MAGICS, open_capture
from ipsecdiag.capture.split import ByteRange, open_range, range_problem, split_capture
from ipsecdiag.capture.writer import PcapNgWriter, PcapWriter
from tests.corpus import CORPUS, REPO_ROOT

SAMPLES = sorted((REPO_ROOT / "sample_pcaps").rglob("*.pcap*"))
CORPUS_FILES = sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng")) if CORPUS.is_dir() else []


def record_offsets(path: Path) -> set[int]:
    """Every record (pcap) or block (pcapng) start, walked serially: the ground truth."""
    data = path.read_bytes()
    offsets: set[int] = set()
    if data[:4] in PCAP_MAGICS:
        order, _div, hsize = PCAP_MAGICS[data[:4]]
        pos = 24
        while pos + hsize <= len(data):
            offsets.add(pos)
            pos += hsize + struct.unpack_from(order + "I", data, pos + 8)[0]
    else:
        order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        pos = 0
        while pos + 12 <= len(data):
            offsets.add(pos)
            pos += struct.unpack_from(order + "I", data, pos + 4)[0]
    offsets.add(len(data))
    return offsets


def serial_frames(path: Path) -> list[tuple[float, int, bytes, int]]:
    with open_capture(path) as cap:
        return [f[1:] for f in cap.frames()]


def ranged_frames(path: Path, ranges: list[ByteRange]) -> tuple[list[tuple[float, int, bytes, int]], list[str]]:
    out: list[tuple[float, int, bytes, int]] = []
    problems: list[str] = []
    for rng in ranges:
        with open_range(path, rng) as cap:
            out.extend(f[1:] for f in cap.frames())
            problem = range_problem(cap, rng)
        if problem:
            problems.append(problem)
    return out, problems


def check_file(path: Path, parts: int = 7) -> None:
    size = path.stat().st_size
    ranges = split_capture(path, parts, min_bytes=max(1, size // (parts * 2)))
    assert ranges[0].start <= 24 or path.read_bytes()[:4] not in PCAP_MAGICS
    assert ranges[-1].end == size
    for a, b in zip(ranges, ranges[1:], strict=False):
        assert a.end == b.start
    if ranges[0].header:  # splittable: every cut is a true record offset
        truth = record_offsets(path)
        assert {r.start for r in ranges[1:]} <= truth, path
    frames, problems = ranged_frames(path, ranges)
    assert problems == []
    assert frames == serial_frames(path)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_bundled_samples_split_exactly(path: Path) -> None:
    check_file(path)


@pytest.mark.skipif(not CORPUS_FILES, reason="shared corpus not present")
def test_corpus_captures_split_exactly() -> None:
    checked = 0
    for path in CORPUS_FILES:
        try:
            serial_frames(path)
        except CaptureError:  # unreadable corpus entries are the reader tests' business
            continue
        with open_capture(path) as cap:
            list(cap.frames())
            if cap.stats.truncated_file:
                continue  # a damaged file has no exact split to compare with
        check_file(path)
        checked += 1
    assert checked > 10


def _payload(i: int) -> bytes:
    return bytes((i * 7 + k) & 0xFF for k in range(40 + (i * 37) % 900))


@pytest.mark.parametrize("nanosecond", [False, True])
def test_generated_pcap_every_boundary(tmp_path: Path, nanosecond: bool) -> None:
    path = tmp_path / "gen.pcap"
    with PcapWriter(path, 1, nanosecond=nanosecond) as w:
        for i in range(3000):
            w.write(1_700_000_000 + i * 0.001, _payload(i))
    for parts in (2, 3, 16, 64):
        check_file(path, parts)


def test_generated_pcapng_with_two_link_types(tmp_path: Path) -> None:
    path = tmp_path / "gen.pcapng"
    with PcapNgWriter(path) as w:
        w.interface(1)
        w.interface(101)
        for i in range(2000):
            w.write(1_700_000_000 + i * 0.001, _payload(i), linktype=1 if i % 3 else 101)
    for parts in (2, 5, 32):
        check_file(path, parts)


def test_late_interface_block_makes_the_range_inexact(tmp_path: Path) -> None:
    # The writer announces the raw-IP interface at its first packet, in the middle of the file:
    # ranges after it lack that interface in their header, and the range check says so.
    path = tmp_path / "late.pcapng"
    with PcapNgWriter(path) as w:
        for i in range(2000):
            w.write(1_700_000_000 + i * 0.001, _payload(i), linktype=1 if i < 1000 else 101)
    ranges = split_capture(path, 4, min_bytes=1)
    _, problems = ranged_frames(path, ranges)
    assert problems and "interface" in problems[0]


def test_fake_records_inside_payload_are_caught(tmp_path: Path) -> None:
    # Payloads that are themselves a chain of pcap records (pcap carried inside pcap) that
    # tiles into the real records: a cut there passes the plausibility check, so reading the
    # ranges must expose it (the range before it ends inside a record).
    fake = b"".join(struct.pack("<IIII", 1_700_000_000, 5, 8, 8) + b"\x00" * 8 for _ in range(12))
    path = tmp_path / "nested.pcap"
    with PcapWriter(path, 1) as w:
        for i in range(400):
            w.write(1_700_000_000 + i * 0.001, b"\x01" * 3 + fake)
    rec = 16 + 3 + len(fake)
    cut = 24 + 100 * rec + 16 + 3 + 24  # the second fake record inside record 101
    header = path.read_bytes()[:24]
    size = path.stat().st_size
    ranges = [ByteRange(0, 24, cut, header), ByteRange(1, cut, size, header)]
    _, problems = ranged_frames(path, ranges)
    assert problems and "range 0 does not end on a record boundary" in problems[0]
    # split_capture itself still yields ranges that read back exactly or are flagged.
    frames, problems = ranged_frames(path, split_capture(path, 8, min_bytes=1))
    assert problems or frames == serial_frames(path)


def test_gzip_and_tiny_files_are_one_range(tmp_path: Path) -> None:
    import gzip

    src = SAMPLES[0]
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    assert len(split_capture(gz, 4, min_bytes=1)) == 1
    assert len(split_capture(src, 4)) == 1  # far below the default 1 MiB per range
