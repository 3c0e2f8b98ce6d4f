"""PcapWriter / PcapNgWriter round trips through our reader and, when installed, tshark."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from ipsecdiag.capture.reader import open_capture, open_capture_stream
from ipsecdiag.capture.writer import PcapNgWriter, PcapWriter

PACKETS = [
    (1_700_000_000.123456, bytes(range(64)), None),
    (1_700_000_001.5, b"\xee" * 1514, 9000),
    (1_700_000_002.999999, b"\x01", None),
]

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def tshark_fields(path: Path, *fields: str) -> list[list[str]]:
    args = ["tshark", "-r", str(path), "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_round_trip(tmp_path: Path, nanosecond: bool) -> None:
    path = tmp_path / "out.pcap"
    with PcapWriter(path, 1, nanosecond=nanosecond) as w:
        for ts, data, orig in PACKETS:
            w.write(ts, data, orig)
    with open_capture(path) as cap:
        frames = list(cap.frames())
    assert [(f[2], f[3], f[4]) for f in frames] == [(1, d, o or len(d)) for _, d, o in PACKETS]
    for f, (ts, _, _) in zip(frames, PACKETS, strict=True):
        assert f[1] == pytest.approx(ts, abs=1e-6)


def test_pcap_snaplen_and_rounding(tmp_path: Path) -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf, 101, snaplen=10)
    w.write(5.9999999, b"x" * 30)  # rounds up to the next second, not to 1_000_000 us
    w.flush()
    buf.seek(0)
    cap = open_capture_stream(buf)
    ((_, ts, lt, data, orig),) = list(cap.frames())
    assert (ts, lt, data, orig) == (6.0, 101, b"x" * 10, 30)


def test_pcapng_round_trip_with_interfaces_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "out.pcapng"
    with PcapNgWriter(path, nanosecond=True) as w:
        w.write(PACKETS[0][0], PACKETS[0][1], linktype=1, comment="decrypted: SPI 0x1234")
        w.write(PACKETS[1][0], PACKETS[1][1], linktype=101, orig_len=9000)
        w.write(PACKETS[2][0], PACKETS[2][1], linktype=1)
    with open_capture(path) as cap:
        frames = list(cap.frames())
    assert [(f[2], f[3], f[4]) for f in frames] == [
        (1, PACKETS[0][1], 64),
        (101, PACKETS[1][1], 9000),
        (1, b"\x01", 1),
    ]
    assert frames[0][1] == pytest.approx(PACKETS[0][0], abs=1e-6)
    assert cap.stats.interfaces == 2


def test_large_writes_are_buffered(tmp_path: Path) -> None:
    path = tmp_path / "big.pcap"
    with PcapWriter(path, 1) as w:
        for i in range(3000):
            w.write(float(i), bytes([i & 0xFF]) * 700)
    with open_capture(path) as cap:
        assert sum(1 for _ in cap.frames()) == 3000


@needs_tshark
def test_tshark_reads_our_files(tmp_path: Path) -> None:
    pcap = tmp_path / "a.pcap"
    with PcapWriter(pcap, 1, nanosecond=True) as w:
        for ts, data, orig in PACKETS:
            w.write(ts, data, orig)
    rows = tshark_fields(pcap, "frame.cap_len", "frame.len", "frame.time_epoch")
    assert [(int(r[0]), int(r[1])) for r in rows] == [(64, 64), (1514, 9000), (1, 1)]
    assert float(rows[0][2]) == pytest.approx(PACKETS[0][0], abs=1e-6)

    ng = tmp_path / "a.pcapng"
    with PcapNgWriter(ng) as w:
        w.write(PACKETS[0][0], PACKETS[0][1], linktype=1, comment="hello")
        w.write(PACKETS[1][0], PACKETS[1][1], linktype=101)
    rows = tshark_fields(ng, "frame.cap_len", "frame.comment", "frame.interface_id")
    assert [(int(r[0]), r[1], r[2]) for r in rows] == [(64, "hello", "0"), (1514, "", "1")]


@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_record_times_match_split_ts_at_the_edges(nanosecond: bool) -> None:
    # PcapWriter.write inlines _split_ts for ordinary times: the same header bytes everywhere
    import struct

    from ipsecdiag.capture.writer import _split_ts

    units = 1_000_000_000 if nanosecond else 1_000_000
    times = [0.0, -1.5, float("nan"), float("inf"), 1e-7, 5.9999999, 5.9999999999, 1_700_000_002.999999]
    times += [0xFFFFFFFF - 1e-3, float(0xFFFFFFFF), 1e12, 1.5]
    buf = io.BytesIO()
    w = PcapWriter(buf, 101, nanosecond=nanosecond)
    for ts in times:
        w.write(ts, b"ab")
    w.flush()
    raw = buf.getvalue()[24:]
    got = [struct.unpack_from("<II", raw, i * 18) for i in range(len(times))]
    assert got == [_split_ts(ts, units) for ts in times]
