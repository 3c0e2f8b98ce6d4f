"""pcap / pcapng reader on files built byte by byte (formats: draft-ietf-opsawg-pcap,
draft-ietf-opsawg-pcapng)."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest
from capture_helpers import ng_block, ng_epb, ng_idb, ng_option, ng_pb, ng_shb, ng_spb, pcap_bytes

from ipsecdiag.capture import reader
from ipsecdiag.capture.model import CaptureError
from ipsecdiag.capture.reader import open_capture, open_capture_stream

PKT_A = bytes(range(60))
PKT_B = b"\xaa" * 1514
PKT_C = b"\x01\x02\x03"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def read_all(path: Path) -> tuple[reader.CaptureFile, list[tuple[int, float, int, bytes, int]]]:
    with open_capture(path) as cap:
        frames = list(cap.frames())
    return cap, frames


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize(
    ("magic", "frac", "expect"), [(0xA1B2C3D4, 250_000, 0.25), (0xA1B23C4D, 250_000_000, 0.25)]
)
def test_pcap_byte_orders_and_resolutions(
    tmp_path: Path, order: str, magic: int, frac: int, expect: float
) -> None:
    recs = [
        (1_600_000_000, frac, PKT_A, 60),
        (1_600_000_001, 0, PKT_B, 1514),
        (1_600_000_002, 1, PKT_C, 9000),
    ]
    cap, frames = read_all(
        write(tmp_path, "a.pcap", pcap_bytes(recs, order=order, magic=magic, linktype=113))
    )
    assert cap.format == "pcap"
    assert [f[0] for f in frames] == [1, 2, 3]
    assert frames[0][1] == pytest.approx(1_600_000_000 + expect)
    assert frames[1][1] == 1_600_000_001
    assert [f[2] for f in frames] == [113] * 3
    assert [f[3] for f in frames] == [PKT_A, PKT_B, PKT_C]
    assert frames[2][4] == 9000  # original length is kept apart from the captured bytes
    assert cap.stats.frames == 3
    assert cap.stats.bytes == 60 + 1514 + 3
    assert cap.stats.position == (tmp_path / "a.pcap").stat().st_size
    assert not cap.stats.truncated_file
    assert cap.linktypes == {113}


def test_modified_pcap(tmp_path: Path) -> None:
    data = pcap_bytes([(5, 6, PKT_A, 60), (7, 0, PKT_C, 3)], magic=0xA1B2CD34, modified=True)
    _, frames = read_all(write(tmp_path, "m.pcap", data))
    assert [f[3] for f in frames] == [PKT_A, PKT_C]
    assert frames[0][1] == pytest.approx(5.000006)


def test_pcap_linktype_fcs_bits_are_masked(tmp_path: Path) -> None:
    # Upper bits of the link-type field carry FCS information, not the link type.
    data = bytearray(pcap_bytes([(1, 0, PKT_A, 60)]))
    data[20:24] = (1 | 0x14000000).to_bytes(4, "little")
    _, frames = read_all(write(tmp_path, "fcs.pcap", bytes(data)))
    assert frames[0][2] == 1


@pytest.mark.parametrize("cut", [3, 16, 16 + 59])
def test_pcap_truncated_last_record(tmp_path: Path, cut: int) -> None:
    data = pcap_bytes([(1, 0, PKT_A, 60), (2, 0, PKT_A, 60)])
    cap, frames = read_all(write(tmp_path, "t.pcap", data[: 24 + 16 + 60 + cut]))
    assert len(frames) == 1
    assert cap.stats.truncated_file
    assert "record 2" in cap.stats.truncated_detail


def test_pcap_corrupt_length_stops_cleanly(tmp_path: Path) -> None:
    data = (
        pcap_bytes([(1, 0, PKT_A, 60)])
        + (2).to_bytes(4, "little") * 2
        + (0x7FFFFFFF).to_bytes(4, "little") * 2
    )
    cap, frames = read_all(write(tmp_path, "c.pcap", data))
    assert len(frames) == 1
    assert cap.stats.truncated_file
    assert "corrupt" in cap.stats.truncated_detail


def test_records_spanning_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny chunks force every record (and a 70 000-byte one) across chunk boundaries.
    monkeypatch.setattr(reader, "CHUNK", 7)
    big = os.urandom(70_000)
    recs = [(i, i, bytes([i]) * (i * 13 % 97), 100) for i in range(50)] + [(99, 0, big, len(big))]
    _, frames = read_all(write(tmp_path, "s.pcap", pcap_bytes(recs)))
    assert [f[3] for f in frames] == [r[2] for r in recs]
    ng = ng_shb() + ng_idb("<", 1) + b"".join(ng_epb("<", 0, i, r[2]) for i, r in enumerate(recs))
    with open_capture(write(tmp_path, "s.pcapng", ng)) as cap:
        seen = []
        for f in cap.frames():
            seen.append(f[3])
            assert cap.stats.frames <= f[0]  # refreshed as chunks go by, never ahead
        assert seen == [r[2] for r in recs]
        assert cap.stats.position == len(ng)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_blocks(tmp_path: Path, order: str) -> None:
    data = (
        ng_shb(order)
        + ng_idb(order, 1)  # default resolution: microseconds
        + ng_idb(order, 113, tsresol=9, tsoffset=100)  # nanoseconds, 100 s offset
        + ng_idb(order, 101, tsresol=0x80 | 10)  # 2^-10 s units
        + ng_epb(order, 0, 1_500_000_000_250_000, PKT_A)
        + ng_block(order, 5, b"\x00" * 12)  # interface statistics: skipped and counted
        + ng_epb(order, 1, 2_000_000_000_500_000_000, PKT_C, 9)
        + ng_block(order, 0x12345678, b"junk")  # unknown block type
        + ng_epb(order, 2, 3 * 1024 + 512, PKT_B)
        + ng_spb(order, PKT_A)
        + ng_pb(order, 1, 7_000_000_000, PKT_C)
    )
    cap, frames = read_all(write(tmp_path, "n.pcapng", data))
    assert cap.format == "pcapng"
    assert [(f[0], f[2], f[3]) for f in frames] == [
        (1, 1, PKT_A),
        (2, 113, PKT_C),
        (3, 101, PKT_B),
        (4, 1, PKT_A),
        (5, 113, PKT_C),
    ]
    assert frames[0][1] == pytest.approx(1_500_000_000.25)
    assert frames[1][1] == pytest.approx(2_000_000_100.5)
    assert frames[2][1] == pytest.approx(3.5)
    assert frames[3][1] == 0.0  # simple packet blocks carry no timestamp
    assert frames[4][1] == pytest.approx(107.0)
    assert frames[1][4] == 9
    assert cap.stats.skipped_blocks == {"interface-statistics": 1, "0x12345678": 1}
    assert cap.linktypes == {1, 113, 101}
    assert not cap.stats.truncated_file


def test_pcapng_spb_respects_snaplen(tmp_path: Path) -> None:
    data = ng_shb() + ng_idb("<", 1, snaplen=10) + ng_spb("<", PKT_A, 60)
    _, frames = read_all(write(tmp_path, "spb.pcapng", data))
    assert frames[0][3] == PKT_A[:10]
    assert frames[0][4] == 60


def test_pcapng_sections_reset_interfaces_and_may_switch_byte_order(tmp_path: Path) -> None:
    data = (
        ng_shb("<")
        + ng_idb("<", 1)
        + ng_epb("<", 0, 1_000_000, PKT_A)
        + ng_shb(">")
        + ng_idb(">", 229, tsresol=3)
        + ng_epb(">", 0, 2_000, PKT_C)
    )
    cap, frames = read_all(write(tmp_path, "sec.pcapng", data))
    assert [(f[0], f[1], f[2], f[3]) for f in frames] == [(1, 1.0, 1, PKT_A), (2, 2.0, 229, PKT_C)]
    assert cap.stats.sections == 2


def test_pcapng_epb_for_unknown_interface_is_counted_not_fatal(tmp_path: Path) -> None:
    data = ng_shb() + ng_idb("<", 1) + ng_epb("<", 5, 0, PKT_A) + ng_epb("<", 0, 0, PKT_C)
    cap, frames = read_all(write(tmp_path, "bad.pcapng", data))
    assert [f[3] for f in frames] == [PKT_C]
    assert cap.stats.skipped_blocks == {"bad-packet-block": 1}


def test_pcapng_idb_options_are_walked(tmp_path: Path) -> None:
    opts = ng_option("<", 2, b"eth0") + ng_option("<", 9, b"\x03") + ng_option("<", 0, b"")
    idb = ng_block("<", 1, (1).to_bytes(2, "little") + b"\x00\x00" + (0).to_bytes(4, "little") + opts)
    _, frames = read_all(write(tmp_path, "o.pcapng", ng_shb() + idb + ng_epb("<", 0, 1500, PKT_C)))
    assert frames[0][1] == pytest.approx(1.5)


@pytest.mark.parametrize("cut", [4, 12, 30])
def test_pcapng_truncated(tmp_path: Path, cut: int) -> None:
    data = ng_shb() + ng_idb("<", 1) + ng_epb("<", 0, 0, PKT_A)
    last = ng_epb("<", 0, 0, PKT_B)
    cap, frames = read_all(write(tmp_path, "t.pcapng", data + last[:cut]))
    assert len(frames) == 1
    assert cap.stats.truncated_file
    assert "after record 1" in cap.stats.truncated_detail


def test_pcapng_impossible_block_length(tmp_path: Path) -> None:
    data = ng_shb() + ng_idb("<", 1) + (6).to_bytes(4, "little") + (7).to_bytes(4, "little") + b"\x00" * 20
    cap, frames = read_all(write(tmp_path, "x.pcapng", data))
    assert frames == []
    assert cap.stats.truncated_file


def test_gzip_input(tmp_path: Path) -> None:
    data = gzip.compress(pcap_bytes([(1, 0, PKT_A, 60), (2, 0, PKT_B, 1514)]))
    cap, frames = read_all(write(tmp_path, "z.pcap.gz", data))
    assert [f[3] for f in frames] == [PKT_A, PKT_B]
    # Incompressible records, so cutting the compressed stream cuts records.
    cut = gzip.compress(pcap_bytes([(1, 0, os.urandom(1000), 1000) for _ in range(20)]))[:-2500]
    cap, frames = read_all(write(tmp_path, "zcut.pcap.gz", cut))
    assert cap.stats.truncated_file
    assert 0 < len(frames) < 20


class _Trickle(io.RawIOBase):
    """A pipe that hands out a few bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(len(b), 5, len(self._data))
        b[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_stream_input() -> None:
    data = ng_shb() + ng_idb("<", 1) + ng_epb("<", 0, 0, PKT_A) + ng_epb("<", 0, 0, PKT_B)
    stream = io.BufferedReader(_Trickle(data), buffer_size=16)
    cap = open_capture_stream(stream, "-")
    assert [f[3] for f in cap.frames()] == [PKT_A, PKT_B]
    cap.close()
    assert not stream.closed  # the caller owns stdin


def test_frames_iterates_once(tmp_path: Path) -> None:
    with open_capture(write(tmp_path, "a.pcap", pcap_bytes([(1, 0, PKT_A, 60)]))) as cap:
        list(cap.frames())
        with pytest.raises(CaptureError):
            cap.frames()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"PK\x03\x04rest-of-zip", "looks like a zip archive"),
        (b"No.     Time   Source", "starts with 'No.     '"),
        (b"\x00\x01\x02\x03\x04", r"starts with '\x00\x01\x02\x03\x04'"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "pcap file header cut short"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(CaptureError) as exc:
        open_capture(write(tmp_path, "bad.pcap", content))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="no such file"):
        open_capture(tmp_path / "missing.pcap")
    with pytest.raises(CaptureError, match="is a directory"):
        open_capture(tmp_path)
    if os.geteuid() != 0:  # root reads anything
        p = write(tmp_path, "secret.pcap", pcap_bytes([]))
        p.chmod(0)
        with pytest.raises(CaptureError, match="permission denied"):
            open_capture(p)
