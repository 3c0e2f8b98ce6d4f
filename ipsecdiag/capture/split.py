"""Split one capture file into byte ranges that worker processes can read independently.

A range starts on a record (classic pcap) or block (pcapng) boundary found without reading
the file from the start: from a target offset we step forward byte by byte until a chain of
``CHAIN`` consecutive headers is plausible (classic pcap: captured length within the snap
length and not above the original length, original length sane, sub-second field below its
divisor, no empty record, seconds close to the first record's and to each other; pcapng: a known or sane block
type whose length is a multiple of 4 and is repeated in the block's trailer). A chain that
reaches the end of the file exactly is accepted too.

Plausibility is a heuristic, so the range reader proves it: :class:`RangeReader` reads the
records of a range with the project's own reader and the caller checks ``RangeResult.exact``
(the last record ended exactly at the range's end, nothing truncated, no interface block or
section header met inside a pcapng range). Because range 0 starts at the true first record,
a chain of exact ranges is, by induction, exactly the serial sequence of records; a range
that is not exact must be merged with its successor and re-read (the caller's fallback).

Each range comes with the ``header`` a reader needs in front of it: the 24-byte pcap file
header, or for pcapng the Section Header Block and the Interface Description Blocks that
precede the first packet block (an interface announced later, inside a range, makes that
range inexact and the ranges after it must be re-read with the right header).
"""

from __future__ import annotations

import os
import struct
from collections.abc import MutableSequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .model import CaptureError
from .reader import MAX_RECORD, PCAP_MAGICS, PCAPNG_SHB, CaptureFile

# Consecutive plausible headers needed to accept a boundary. A false chain inside packet
# bytes needs 8 nested length/timestamp coincidences; the range check catches it anyway.
CHAIN = 8
# Bytes read at a candidate; a chain of CHAIN records of this file's typical size fits.
_WINDOW = 1 << 20
# Seconds between neighbouring records that we still call plausible (clock steps, gaps).
_TS_STEP = 7 * 86400
# Block types a pcapng file of ours or Wireshark's contains (others still pass by shape).
_NG_KNOWN = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x0BAD, 0x40000BAD, 0x0A0D0D0A}
_NG_SHB = 0x0A0D0D0A
_NG_IDB = 1
_NG_PACKETS = {2, 3, 6}


@dataclass(frozen=True)
class ByteRange:
    """Records ``[start, end)`` of a file; ``header`` makes them a readable capture."""

    index: int
    start: int
    end: int
    header: bytes


@dataclass(frozen=True)
class _Layout:
    fmt: str  # "pcap" or "pcapng"
    size: int
    first: int  # offset of the first record / first block after the leading header blocks
    header: bytes
    order: str
    # classic pcap only
    hsize: int = 16
    divisor: int = 1_000_000
    snaplen: int = 0
    first_sec: int = 0


def split_capture(path: str | Path, parts: int, *, min_bytes: int = 1 << 20) -> list[ByteRange]:
    """At most ``parts`` ranges of roughly equal size, none (but the last) under ``min_bytes``.

    A gzip-compressed file cannot be split (its bytes have no random access): one range.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        layout = _layout(f, size, str(path))
        if layout is None:  # compressed or empty of records: nothing to split
            return [ByteRange(0, 0, size, b"")]
        body = size - layout.first
        n = max(1, min(parts, body // max(1, min_bytes)))
        cuts = [layout.first]
        for k in range(1, n):
            target = max(layout.first + body * k // n, cuts[-1] + 1)
            found = _find_boundary(f, layout, target)
            if found is None or found <= cuts[-1] or found >= size:
                continue
            cuts.append(found)
    cuts.append(size)
    return [ByteRange(i, cuts[i], cuts[i + 1], layout.header) for i in range(len(cuts) - 1)]


def _layout(f: BinaryIO, size: int, name: str) -> _Layout | None:
    head = f.read(24)
    if head[:4] in PCAP_MAGICS:
        if len(head) < 24:
            raise CaptureError(f"{name}: pcap file header cut short")
        order, divisor, hsize = PCAP_MAGICS[head[:4]]
        snaplen = struct.unpack_from(order + "I", head, 16)[0]
        first = f.read(hsize)
        first_sec = struct.unpack_from(order + "I", first)[0] if len(first) == hsize else 0
        return _Layout("pcap", size, 24, head, order, hsize, divisor, snaplen, first_sec)
    if head[:4] == PCAPNG_SHB:
        return _ng_layout(f, size, head)
    return None


def _ng_layout(f: BinaryIO, size: int, head: bytes) -> _Layout | None:
    """The leading SHB and every block before the first packet block (IDBs among them)."""
    bom = head[8:12]
    order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
    pos = 0
    header = b""
    f.seek(0)
    while pos + 12 <= size:
        f.seek(pos)
        btype, blen = struct.unpack(order + "II", f.read(8))
        if blen < 12 or blen & 3 or blen > MAX_RECORD:
            return None
        if btype in _NG_PACKETS:
            break
        if btype == _NG_SHB and pos:
            break  # a second section before any packet: keep it simple, it starts range 0's tail
        f.seek(pos)
        header += f.read(blen)
        pos += blen
    if pos + 12 > size:
        return None
    return _Layout("pcapng", size, pos, header, order)


def _find_boundary(f: BinaryIO, layout: _Layout, target: int) -> int | None:
    """First offset at or after ``target`` where a plausible chain of headers starts."""
    pos = target
    while pos < layout.size:
        f.seek(pos)
        window = f.read(_WINDOW)
        # Offsets whose chain can be judged inside this window; the rest go to the next read.
        limit = len(window) if pos + len(window) >= layout.size else len(window) // 2
        for i in range(limit):
            if _chain_ok(window, i, pos + i, layout):
                return pos + i
        pos += max(1, limit)
    return None


def _chain_ok(buf: bytes, i: int, offset: int, layout: _Layout) -> bool:
    if layout.fmt == "pcap":
        return _pcap_chain(buf, i, offset, layout)
    return _ng_chain(buf, i, offset, layout)


def _pcap_chain(buf: bytes, i: int, offset: int, layout: _Layout) -> bool:
    unpack = struct.Struct(layout.order + "IIII").unpack_from
    hsize = layout.hsize
    snap = layout.snaplen or MAX_RECORD
    prev_sec = None
    for _ in range(CHAIN):
        if offset == layout.size:
            return True  # the chain ends exactly at the end of the file
        if i + hsize > len(buf):
            return False
        sec, frac, incl, orig = unpack(buf, i)
        if not 0 < incl <= orig <= MAX_RECORD or incl > snap or frac >= layout.divisor:
            return False
        ref = layout.first_sec if prev_sec is None else prev_sec
        if abs(sec - ref) > (_TS_STEP if prev_sec is not None else 366 * 86400 * 10):
            return False
        prev_sec = sec
        i += hsize + incl
        offset += hsize + incl
        if offset > layout.size:
            return False
    return True


def _ng_chain(buf: bytes, i: int, offset: int, layout: _Layout) -> bool:
    hdr = struct.Struct(layout.order + "II").unpack_from
    trailer = struct.Struct(layout.order + "I").unpack_from
    for _ in range(CHAIN):
        if offset == layout.size:
            return True
        if i + 12 > len(buf):
            return False
        btype, blen = hdr(buf, i)
        if blen < 12 or blen & 3 or blen > MAX_RECORD or offset + blen > layout.size:
            return False
        if btype not in _NG_KNOWN and btype & 0x7FFF0000:
            return False
        if i + blen > len(buf) or trailer(buf, i + blen - 4)[0] != blen:
            return False
        i += blen
        offset += blen
    return True


# Bytes of capture read per range, for the progress bar of a split analysis: a shared array
# (multiprocessing.Array, one slot per range: each slot has one writer, the worker scanning that
# range) the parent sets before forking its workers, None otherwise. Counted per read (the
# reader's chunks), so the per-frame loops pay nothing for it.
read_counter: MutableSequence[int] | None = None


class RangeStream:
    """A read-only stream: a range's header, then the file's bytes ``[start, end)``."""

    def __init__(self, path: str | Path, rng: ByteRange) -> None:
        self._f = open(path, "rb")  # closed by close()
        self._f.seek(rng.start)
        self._head = rng.header
        self._left = rng.end - rng.start
        self._index = rng.index

    def read(self, size: int = -1) -> bytes:
        if self._head:
            n = len(self._head) if size < 0 else min(size, len(self._head))
            out, self._head = self._head[:n], self._head[n:]
            return out
        if self._left <= 0:
            return b""
        n = self._left if size < 0 else min(size, self._left)
        out = self._f.read(n)
        self._left -= len(out)
        if read_counter is not None and self._index < len(read_counter):
            read_counter[self._index] += len(out)
        return out

    def close(self) -> None:
        self._f.close()


def open_range(path: str | Path, rng: ByteRange) -> CaptureFile:
    """A :class:`CaptureFile` over one range (frames numbered from 1 within the range)."""
    return CaptureFile(RangeStream(path, rng), f"{path}[range {rng.index}]")  # type: ignore[arg-type]


def range_problem(cap: CaptureFile, rng: ByteRange) -> str | None:
    """After ``cap.frames()`` is exhausted: None when the range proved exact, else why not."""
    stats = cap.stats
    if stats.truncated_file:
        return f"range {rng.index} does not end on a record boundary ({stats.truncated_detail})"
    if cap.format == "pcapng" and (stats.sections != 1 or stats.interfaces != header_interfaces(rng.header)):
        return f"range {rng.index} holds interface or section blocks of its own"
    return None


def header_interfaces(header: bytes) -> int:
    """How many Interface Description Blocks a pcapng range header holds (0 for pcap)."""
    if header[:4] != PCAPNG_SHB:
        return 0
    order = "<" if header[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    pos = count = 0
    while pos + 8 <= len(header):
        btype, blen = struct.unpack_from(order + "II", header, pos)
        count += btype == _NG_IDB
        pos += max(blen, 12)
    return count
