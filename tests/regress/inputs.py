"""Generators of the hostile inputs that once escaped (issue 14), from the bundled captures.

Each function returns the bytes of one regression input; ``write_all`` puts them in a
directory (``python tests/regress/inputs.py DIR`` does that, e.g. to seed a fuzz campaign).
Inputs found by the fuzzer that no generator can rebuild are committed under ``found/``.
"""

from __future__ import annotations

import gzip
import io
import struct
import sys
from pathlib import Path

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapNgWriter

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap"
BASE_KEYS = ROOT / "sample_pcaps" / "ikev2-psk-ok.charon.log"


def as_pcapng(pcap: Path = BASE) -> bytes:
    out = io.BytesIO()
    with open_capture(pcap) as cap, PcapNgWriter(out) as w:
        for _fr, ts, linktype, data, _orig in cap.frames():
            w.write(ts, data, linktype=linktype)
    return out.getvalue()


def epb_offsets(ng: bytes) -> list[int]:
    """Offsets of the Enhanced Packet Blocks of a little-endian pcapng."""
    out, pos = [], 0
    while pos + 12 <= len(ng):
        btype, blen = struct.unpack_from("<II", ng, pos)
        if btype == 6:
            out.append(pos)
        pos += blen
    return out


def far_timestamps() -> bytes:
    """Frames 2 and 3 (IKE) and the last three (ESP) claim the largest 64-bit time
    (microseconds: about year 586 000)."""
    ng = bytearray(as_pcapng())
    epbs = epb_offsets(bytes(ng))
    for pos in epbs[1:3] + epbs[-3:]:
        struct.pack_into("<II", ng, pos + 12, 0xFFFFFFFF, 0xFFFFFFFF)
    return bytes(ng)


def gzip_cut_in_header() -> bytes:
    """A gzip stream cut inside the 24-byte pcap header (12 bytes of it present).

    Level 0 stores the data: a 10-byte gzip header, a 5-byte block header, then the bytes.
    """
    return gzip.compress(BASE.read_bytes(), compresslevel=0, mtime=0)[: 10 + 5 + 12]


def gzip_corrupt_start() -> bytes:
    """Deflate data damaged right after the gzip header: nothing readable at all."""
    gz = bytearray(gzip.compress(BASE.read_bytes(), mtime=0))
    gz[10:40] = b"\xff" * 30
    return bytes(gz)


def gzip_corrupt_tail() -> bytes:
    """Deflate data damaged near the end: the packets before the damage are still there."""
    gz = bytearray(gzip.compress(BASE.read_bytes(), mtime=0))
    at = len(gz) - len(gz) // 5
    gz[at : at + 16] = b"\xa5" * 16
    return bytes(gz)


def gzip_cut_tail() -> bytes:
    """A gzip stream cut short in the middle of the packets."""
    gz = gzip.compress(BASE.read_bytes(), mtime=0)
    return gz[: len(gz) * 2 // 3]


def toml_keys(spi: str) -> bytes:
    return (
        "[[esp]]\n"
        f"spi = {spi}\n"
        'src = "192.0.2.1"\ndst = "198.51.100.1"\nencr = "aes-cbc"\nkey_bits = 128\n'
        'key = "00112233445566778899aabbccddeeff"\ninteg = "hmac-sha1-96"\n'
        'integ_key = "00112233445566778899aabbccddeeff00112233"\n'
    ).encode()


GENERATED = {
    "far-timestamps.pcapng": far_timestamps,
    "gzip-cut-in-header.pcap.gz": gzip_cut_in_header,
    "gzip-corrupt-start.pcap.gz": gzip_corrupt_start,
    "gzip-corrupt-tail.pcap.gz": gzip_corrupt_tail,
    "gzip-cut-tail.pcap.gz": gzip_cut_tail,
}


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, make in GENERATED.items():
        p = directory / name
        p.write_bytes(make())
        out.append(p)
    return out


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1])):
        print(p)
