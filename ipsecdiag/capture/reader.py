"""Streaming readers for classic pcap and pcapng.

Both walk the file in large chunks (``CHUNK`` bytes) with precompiled ``struct.Struct``
objects and yield one tuple per packet record::

    (frame_number, timestamp, linktype, captured_bytes, original_length)

Frame numbers start at 1 and count packet records only, as Wireshark numbers them. The only
per-packet allocations are the captured-bytes slice and the tuple. Memory stays flat whatever
the file size: one chunk plus the record that straddles its end (no mmap).

A file that ends inside a record is not an error: iteration stops, ``stats.truncated_file`` is
set and ``stats.truncated_detail`` says where. Records whose header is implausible (a length
beyond ``MAX_RECORD``) are treated the same way, because everything after them is unreadable.

The pcapng block walk is in pcapng.py; :class:`CaptureFile` opens and reads both formats.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol

from .model import CaptureError
from .pcapng import MAX_RECORD, PCAPNG_SHB, pcapng_frames

# 256 KiB: measured faster than 1-16 MiB (the chunk and the slices copied out of it stay
# in the CPU cache); records larger than a chunk are read whole.
CHUNK = 256 * 1024

Frame = tuple[int, float, int, bytes, int]
# Receives a frame's fields as arguments (:meth:`CaptureFile.push`), e.g. ``Decoder.feed``.
FrameSink = Callable[[int, float, int, bytes, int], None]
# Walks the whole classic pcap records in ``buf`` from offset ``pos`` (``frame`` records came
# before) and returns the offset of the first record not complete in ``buf``, the frame number
# reached and the last record's time (None if there was none): see CaptureFile.push.
RecordWalker = Callable[[bytes, int, int], tuple[int, int, float | None]]


@dataclass(frozen=True)
class RecordLayout:
    """A classic pcap file's records: header unpacker (seconds, fraction, captured and original
    length), header size (16, or 24 in the modified format), fraction units per second and
    the link type."""

    unpack: Callable[[bytes, int], tuple[int, ...]]
    size: int
    divisor: float
    linktype: int


def calling(layout: RecordLayout, fn: FrameSink) -> RecordWalker:
    """The walker that hands every record to ``fn``: the record loop of :meth:`CaptureFile.push`.
    It repeats ``_pcap_frames``' loop on purpose: one shared with that generator would put back
    the call per packet this exists to save."""
    unpack, hsize, div, linktype = layout.unpack, layout.size, layout.divisor, layout.linktype

    def walk(buf: bytes, pos: int, frame: int) -> tuple[int, int, float | None]:
        n = len(buf)
        last = n - hsize  # last position where a record header fits
        ts = None
        while pos <= last:
            sec, frac, incl, orig = unpack(buf, pos)
            start = pos + hsize
            end = start + incl
            if end > n:
                break
            frame += 1
            ts = sec + frac / div
            fn(frame, ts, linktype, buf[start:end], orig)
            pos = end
        return pos, frame, ts

    return walk

PCAP_MAGICS: dict[bytes, tuple[str, int, int]] = {
    # first four bytes -> (struct byte order, sub-second divisor, record header size)
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000, 16),
    # Kuznetsov's "modified pcap": 8 more bytes per record (ifindex, protocol, pkt_type, pad).
    b"\x34\xcd\xb2\xa1": ("<", 1_000_000, 24),
    b"\xa1\xb2\xcd\x34": (">", 1_000_000, 24),
}
GZIP_MAGIC = b"\x1f\x8b"

# Formats we recognise but do not read, so the error message can say what the file is.
_OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"snoop\x00\x00\x00", "a Solaris snoop capture"),
    (b"GMBU", "a Microsoft Network Monitor capture"),
    (b"XCP\x00", "a NetXray/Sniffer capture"),
    (b"(\xb5/\xfd", "a zstd-compressed file"),
    (b"\x04\x22\x4d\x18", "an LZ4-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"PK\x03\x04", "a zip archive"),
)

# What a damaged gzip stream raises: BadGzipFile (an OSError) for a bad header, zlib.error for
# corrupt deflate data, EOFError for a stream cut short.
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


@dataclass
class CaptureStats:
    """Counters kept while reading. Refreshed at every chunk (good enough for a progress
    bar: ``position`` against the file size) and exact once ``frames()`` is exhausted."""

    frames: int = 0
    bytes: int = 0
    truncated_file: bool = False
    truncated_detail: str = ""
    skipped_blocks: dict[str, int] = field(default_factory=dict)
    sections: int = 0
    interfaces: int = 0
    position: int = 0  # bytes of (decompressed) input consumed so far


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class CaptureFile:
    """An open capture. Iterate ``frames()`` once; use as a context manager or ``close()``."""

    def __init__(self, fileobj: BinaryIO, name: str, *, owns: bool = True) -> None:
        self.path = name
        self.stats = CaptureStats()
        self.linktypes: set[int] = set()
        self._f = fileobj
        self._raw = fileobj
        self._owns = owns
        head = _read_exact(fileobj, 4)
        if head[:2] == GZIP_MAGIC:
            # The gzip module reads the rest of the stream itself; give it back its magic.
            fileobj = gzip.GzipFile(fileobj=_Prefixed(head, fileobj), mode="rb")  # type: ignore[arg-type]
            self._f = fileobj
            try:
                head = _read_exact(fileobj, 4)
            except _GZIP_ERRORS as exc:
                raise CaptureError(f"{name}: unreadable gzip data ({exc})") from None
        self._gz = fileobj if isinstance(fileobj, gzip.GzipFile) else None
        self._late_detail = ""
        # read1 returns what a pipe has now instead of waiting for a whole chunk.
        self._read = getattr(fileobj, "read1", None) or fileobj.read
        if not head:
            raise CaptureError(f"{name}: file is empty")
        if head in PCAP_MAGICS:
            self.format = "pcap"
            try:
                self._start_pcap(head)
            except _GZIP_ERRORS as exc:
                if self._gz is None:
                    raise
                raise CaptureError(f"{name}: gzip data ends or breaks inside the pcap header ({exc})") from None
        elif head == PCAPNG_SHB:
            self.format = "pcapng"
            self._pending = head
        else:
            raise CaptureError(f"{name}: {_describe(head + _peek_more(fileobj))}")
        self._started = False

    # -- public ----------------------------------------------------------------------------
    def frames(self) -> Iterator[Frame]:
        """Yield every packet record once. A second call raises ``CaptureError``."""
        if self._started:
            raise CaptureError(f"{self.path}: frames() can only be iterated once")
        self._started = True
        if self.format == "pcap":
            return self._pcap_frames()
        return self._pcapng_frames()

    @property
    def started(self) -> bool:
        """Whether :meth:`frames` or :meth:`push` was called (each may be, once)."""
        return self._started

    def push(
        self, fn: FrameSink, walker: Callable[[RecordLayout], RecordWalker | None] | None = None
    ) -> tuple[float | None, float | None]:
        """Call ``fn(frame, ts, linktype, data, orig_len)`` for every packet record, in order:
        what :meth:`frames` yields, without resuming a generator and building a tuple per
        packet (the analysis hot path, classic pcap). Returns the first and last timestamps
        (None, None without packets); ``stats`` are then as after :meth:`frames`. Once only,
        like :meth:`frames`.

        ``walker``, for classic pcap: given the file's record layout, a function that walks the
        records of a buffer itself (or None to decline), for a consumer that settles most
        records inline; ``fn`` is then not called (the walker owns every record)."""
        if self.format == "pcap" and not self._started:
            self._started = True
            layout = self._layout()
            walk = walker(layout) if walker is not None else None
            return self._pcap_walk(walk if walk is not None else calling(layout, fn), layout)
        first: Frame | None = None
        last: Frame | None = None
        for last in self.frames():
            if first is None:
                first = last
            fn(*last)
        return (first[1], last[1]) if first is not None and last is not None else (None, None)

    def close(self) -> None:
        if self._f is not self._raw:
            self._f.close()  # the gzip layer; it leaves the file under it open
        if self._owns:
            self._raw.close()

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    # -- helpers ---------------------------------------------------------------------------
    def _more(self, need: int) -> bytes:
        """Next piece of input, up to max(CHUNK, need) bytes; b"" at the end of the input.

        A read error (a gzip stream cut short, an I/O error) ends the input like EOF does and
        is remembered in ``_late_detail`` for the truncation report.
        """
        want = max(CHUNK, need)
        if self._gz is None:
            try:
                return self._read(want)
            except OSError as exc:
                self._late_detail = f"read error: {exc}"
                return b""
        # gzip raises at the end of a cut stream and would drop what it decompressed in that
        # call, so collect small read1() pieces.
        parts = []
        got = 0
        while got < want and not self._late_detail:
            try:
                piece = self._gz.read1(want - got)
            except _GZIP_ERRORS as exc:
                self._late_detail = f"compressed data ends early ({exc})"
                break
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def _truncate(self, detail: str) -> None:
        if not self.stats.truncated_file:
            self.stats.truncated_file = True
            self.stats.truncated_detail = detail

    # -- classic pcap ----------------------------------------------------------------------
    def _start_pcap(self, magic: bytes) -> None:
        order, divisor, rec_size = PCAP_MAGICS[magic]
        rest = _read_exact(self._f, 20)
        if len(rest) < 20:
            raise CaptureError(f"{self.path}: pcap file header cut short ({4 + len(rest)} of 24 bytes)")
        major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", rest)
        if major != 2:
            raise CaptureError(f"{self.path}: unsupported pcap version {major}")
        # The upper bits of the link-type field may carry FCS information; link types are 16-bit.
        self._linktype = network & 0xFFFF
        self._snaplen = snaplen
        self._divisor = float(divisor)
        self._order = order
        self._rec_size = rec_size
        self.linktypes.add(self._linktype)
        self.stats.interfaces = 1
        self.stats.sections = 1

    def _pcap_frames(self) -> Iterator[Frame]:
        unpack = struct.Struct(self._order + "IIII").unpack_from
        hsize = self._rec_size
        linktype = self._linktype
        div = self._divisor
        buf = b""
        pos = 0
        frame = 0
        consumed = 0  # bytes of earlier buffers walked; packet bytes are derived from it
        try:
            while True:
                n = len(buf)
                last = n - hsize  # last position where a record header fits
                while pos <= last:
                    sec, frac, incl, orig = unpack(buf, pos)
                    start = pos + hsize
                    end = start + incl
                    if end > n:
                        break
                    frame += 1
                    yield frame, sec + frac / div, linktype, buf[start:end], orig
                    pos = end
                more = self._pcap_refill(buf, pos, frame, consumed, unpack)
                if more is None:
                    return
                buf, consumed = more
                pos = 0
        finally:
            self._pcap_done(frame, consumed + pos)

    def _pcap_walk(self, walk: RecordWalker, layout: RecordLayout) -> tuple[float | None, float | None]:
        """Hand every buffer of whole records to ``walk`` (see :meth:`push`); the reader keeps
        the framing at the buffer's edges, truncation and the stats."""
        hsize, unpack = layout.size, layout.unpack
        buf = b""
        pos = 0
        frame = 0
        consumed = 0
        first: float | None = None
        ts: float | None = None
        try:
            while True:
                if first is None and pos + hsize <= len(buf):
                    s0, f0, _, _ = unpack(buf, pos)
                    first = s0 + f0 / layout.divisor
                pos, frame, last_ts = walk(buf, pos, frame)
                if last_ts is not None:
                    ts = last_ts
                more = self._pcap_refill(buf, pos, frame, consumed, unpack)
                if more is None:
                    return (first, ts) if frame else (None, None)
                buf, consumed = more
                pos = 0
        finally:
            self._pcap_done(frame, consumed + pos)

    def _layout(self) -> RecordLayout:
        unpack = struct.Struct(self._order + "IIII").unpack_from
        return RecordLayout(unpack, self._rec_size, self._divisor, self._linktype)

    def _pcap_refill(
        self, buf: bytes, pos: int, frame: int, consumed: int, unpack: Callable[[bytes, int], tuple[int, ...]]
    ) -> tuple[bytes, int] | None:
        """The unread rest of ``buf`` (from ``pos``) and the next chunk; None at the end (a
        record cut short or claiming an impossible length is reported as truncation)."""
        hsize = self._rec_size
        n = len(buf)
        need = hsize
        if pos + hsize <= n:
            incl = unpack(buf, pos)[2]
            if incl > MAX_RECORD:
                self._truncate(f"record {frame + 1} claims {incl} bytes: corrupt file, stopped there")
                return None
            need = hsize + incl
        chunk = self._more(need - (n - pos))
        if not chunk:
            if pos < n:
                self._truncate(f"file ends inside record {frame + 1} ({n - pos} of {need} bytes present)")
            return None
        consumed += pos
        self._pcap_done(frame, consumed, final=False)
        return buf[pos:] + chunk, consumed

    def _pcap_done(self, frame: int, consumed: int, *, final: bool = True) -> None:
        stats = self.stats
        stats.frames = frame
        stats.bytes = consumed - self._rec_size * frame
        stats.position = 24 + consumed
        if final and self._late_detail:
            self._truncate(self._late_detail)

    # -- pcapng ----------------------------------------------------------------------------
    def _pcapng_frames(self) -> Iterator[Frame]:
        buf, self._pending = self._pending, b""
        return pcapng_frames(
            buf, self.stats, self.linktypes, self._more, self._truncate, lambda: self._late_detail
        )


def _read_exact(f: _Readable, n: int) -> bytes:
    out = b""
    while len(out) < n:
        piece = f.read(n - len(out))
        if not piece:
            break
        out += piece
    return out


def _peek_more(f: _Readable) -> bytes:
    try:
        return _read_exact(f, 12)
    except _GZIP_ERRORS:
        return b""


def _describe(head: bytes) -> str:
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return f"not a pcap or pcapng file (looks like {what})"
    shown = repr(head[:8])[2:-1]
    return f"not a pcap or pcapng file (starts with '{shown}')"


class _Prefixed:
    """A read-only stream that first returns ``head``, then the rest of ``f``."""

    def __init__(self, head: bytes, f: _Readable) -> None:
        self._head = head
        self._f = f

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                out, self._head = self._head + self._f.read(), b""
                return out
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._f.read(size)


def steady_buffers() -> None:
    """Keep freed large buffers in the process instead of handing them back to the kernel.

    The reader's chunks (256 KiB) and the writers' flush buffers (1 MiB) are freed and made
    again all the time; glibc returns such memory to the kernel at every free (mmap threshold,
    heap trimming) and the next buffer page-faults it back in: decrypting a 1M-packet capture
    took 240k faults and 0.7 s of system time, 8k faults with these two settings, peak RSS the
    same. A no-op where the C library has no ``mallopt``. Called by the commands for large
    inputs (worker processes forked after inherit it)."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: buffers up to 32 MiB come from the heap
    mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD: keep up to 64 MiB of freed heap


def open_capture(path: str | Path) -> CaptureFile:
    """Open a pcap, pcapng or gzip-compressed capture; ``CaptureError`` with one line if not."""
    name = str(path)
    try:
        f = open(path, "rb", buffering=0)  # closed by CaptureFile.close()
    except FileNotFoundError:
        raise CaptureError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise CaptureError(f"{name}: is a directory, not a capture file") from None
    except PermissionError:
        raise CaptureError(f"{name}: permission denied") from None
    except OSError as exc:
        raise CaptureError(f"{name}: cannot open ({exc.strerror or exc})") from None
    try:
        return CaptureFile(f, name)  # type: ignore[arg-type]
    except CaptureError:
        f.close()
        raise
    except OSError as exc:
        f.close()
        raise CaptureError(f"{name}: cannot read ({exc.strerror or exc})") from None


def open_capture_stream(fileobj: BinaryIO, name: str = "-") -> CaptureFile:
    """Read a capture sequentially from a binary stream (stdin, a pipe from tcpdump -w -).

    Uses ``read1`` when the stream has it, so frames are yielded as soon as they arrive
    instead of waiting for a full chunk. The stream is not closed by ``close()``.
    """
    return CaptureFile(fileobj, name, owns=False)
