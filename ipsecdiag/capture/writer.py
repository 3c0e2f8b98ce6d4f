"""pcap and pcapng writers (decrypted output, probe recordings, benchmark captures).

Both accumulate records in a ``bytearray`` and hand it to the file in ``FLUSH_AT``-sized
writes, so a million small packets cost a few hundred system calls. Files written here are
read back by :mod:`ipsecdiag.capture.reader` and by tshark (see the round-trip tests).
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

FLUSH_AT = 1 << 20

_PCAP_HDR = struct.Struct("<IHHiIII")
_PCAP_REC = struct.Struct("<IIII")
_pack_rec = _PCAP_REC.pack
_BLOCK_HDR = struct.Struct("<II")
_EPB = struct.Struct("<IIIIIII")
_OPT = struct.Struct("<HH")

_SHB_TYPE = 0x0A0D0D0A
_IDB_TYPE = 1
_EPB_TYPE = 6
_OPT_END = 0
_OPT_COMMENT = 1
_OPT_SHB_USERAPPL = 4
_OPT_IF_NAME = 2
_OPT_IF_TSRESOL = 9


class RecordEncoder:
    """Encodes packets as complete records of one writer's format, without the writer: worker
    processes build output records this way and the writer appends them with ``write_raw``."""

    __slots__ = ("_units", "ifid", "ng", "snaplen")

    def __init__(self, *, ng: bool, units: int, snaplen: int, ifid: int = 0) -> None:
        self.ng = ng
        self._units = units
        self.snaplen = snaplen
        self.ifid = ifid

    def encode(self, ts: float, data: bytes) -> bytes:
        orig_len = len(data)
        if orig_len > self.snaplen:
            data = data[: self.snaplen]
        sec, frac = _split_ts(ts, self._units)
        if not self.ng:
            return _PCAP_REC.pack(sec, frac, len(data), orig_len) + data
        stamp = sec * self._units + frac
        pad = -len(data) & 3
        total = 32 + len(data) + pad
        return b"".join(
            (
                _EPB.pack(_EPB_TYPE, total, self.ifid, stamp >> 32, stamp & 0xFFFFFFFF, len(data), orig_len),
                data,
                b"\x00" * pad,
                total.to_bytes(4, "little"),
            )
        )


class _Output:
    """Shared buffering and ownership of the output file."""

    def write_raw(self, records: bytes) -> None:
        """Append records already encoded for this file (see :class:`RecordEncoder`)."""
        buf = self._buf
        buf += records
        if len(buf) >= FLUSH_AT:
            self._f.write(buf)
            buf.clear()

    def __init__(self, path_or_fileobj: str | Path | BinaryIO) -> None:
        if isinstance(path_or_fileobj, str | Path):
            self._f: BinaryIO = open(path_or_fileobj, "wb")  # closed by close()
            self._owns = True
        else:
            self._f = path_or_fileobj
            self._owns = False
        self._buf = bytearray()
        self.closed = False

    def flush(self) -> None:
        if self._buf:
            self._f.write(self._buf)
            self._buf.clear()
        self._f.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.flush()
        if self._owns:
            self._f.close()

    def __enter__(self) -> _Output:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# Classic pcap holds 32-bit seconds (until 2106); pcapng uses the same bound here, which keeps
# its 64-bit count of units in range even at nanosecond resolution.
_MAX_SEC = 0xFFFFFFFF


def _split_ts(ts: float, units: int) -> tuple[int, int]:
    """Seconds and sub-second units of a float timestamp, rounding without overflow.

    A time the record cannot hold (before 1970, after 2106: a capture's out-of-range record
    time, which the analysis reports) is clamped to the nearest one it can.
    """
    if not ts > 0:  # also NaN
        return 0, 0
    if ts >= _MAX_SEC:
        return _MAX_SEC, 0
    sec = int(ts)
    frac = round((ts - sec) * units)
    if frac >= units:
        sec += 1
        frac -= units
    return sec, frac


class PcapWriter(_Output):
    """Classic little-endian pcap with one link type (micro- or nanosecond timestamps)."""

    def __init__(
        self,
        path_or_fileobj: str | Path | BinaryIO,
        linktype: int,
        *,
        nanosecond: bool = False,
        snaplen: int = 262144,
    ) -> None:
        super().__init__(path_or_fileobj)
        self.linktype = linktype
        self.snaplen = snaplen
        self._units = 1_000_000_000 if nanosecond else 1_000_000
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._buf += _PCAP_HDR.pack(magic, 2, 4, 0, 0, snaplen, linktype)

    def __enter__(self) -> PcapWriter:
        return self

    def encoder(self) -> RecordEncoder:
        return RecordEncoder(ng=False, units=self._units, snaplen=self.snaplen)

    def write(self, ts: float, data: bytes, orig_len: int | None = None) -> None:
        """Append one record; ``data`` beyond the snaplen is cut (``orig_len`` keeps the size)."""
        n = len(data)
        if orig_len is None:
            orig_len = n
        if n > self.snaplen:
            data = data[: self.snaplen]
            n = len(data)
        units = self._units
        if 0 < ts < _MAX_SEC:  # _split_ts inlined: this runs once per decrypted packet
            sec = int(ts)
            frac = round((ts - sec) * units)
            if frac >= units:
                sec += 1
                frac -= units
        else:
            sec, frac = _split_ts(ts, units)
        buf = self._buf
        buf += _pack_rec(sec, frac, n, orig_len)
        buf += data
        if len(buf) >= FLUSH_AT:
            self._f.write(buf)
            buf.clear()


def _option(code: int, value: bytes) -> bytes:
    return _OPT.pack(code, len(value)) + value + b"\x00" * (-len(value) & 3)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return _BLOCK_HDR.pack(btype, total) + body + total.to_bytes(4, "little")


class PcapNgWriter(_Output):
    """pcapng with one section; an Interface Description Block per link type, made on demand."""

    def __init__(
        self,
        path_or_fileobj: str | Path | BinaryIO,
        *,
        nanosecond: bool = False,
        snaplen: int = 262144,
        application: str = "ipsecdiag",
    ) -> None:
        super().__init__(path_or_fileobj)
        self.snaplen = snaplen
        self._nanosecond = nanosecond
        self._units = 1_000_000_000 if nanosecond else 1_000_000
        self._ifaces: dict[int, int] = {}
        opts = _option(_OPT_SHB_USERAPPL, application.encode()) + _option(_OPT_END, b"")
        # Byte-order magic, version 1.0, section length unknown (-1).
        self._buf += _block(_SHB_TYPE, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opts)

    def __enter__(self) -> PcapNgWriter:
        return self

    def encoder(self, linktype: int) -> RecordEncoder:
        return RecordEncoder(ng=True, units=self._units, snaplen=self.snaplen, ifid=self.interface(linktype))

    def interface(self, linktype: int, name: str | None = None) -> int:
        """The interface id for ``linktype``, writing its IDB the first time it is used."""
        ifid = self._ifaces.get(linktype)
        if ifid is not None:
            return ifid
        opts = b""
        if name:
            opts += _option(_OPT_IF_NAME, name.encode())
        if self._nanosecond:
            opts += _option(_OPT_IF_TSRESOL, b"\x09")
        if opts:
            opts += _option(_OPT_END, b"")
        self._buf += _block(_IDB_TYPE, struct.pack("<HHI", linktype, 0, self.snaplen) + opts)
        ifid = len(self._ifaces)
        self._ifaces[linktype] = ifid
        return ifid

    def write(
        self,
        ts: float,
        data: bytes,
        *,
        linktype: int = 1,
        orig_len: int | None = None,
        comment: str | None = None,
    ) -> None:
        """Append an Enhanced Packet Block on the interface of ``linktype``."""
        ifid = self.interface(linktype)
        if orig_len is None:
            orig_len = len(data)
        if len(data) > self.snaplen:
            data = data[: self.snaplen]
        sec, frac = _split_ts(ts, self._units)
        stamp = sec * self._units + frac
        pad = -len(data) & 3
        opts = b""
        if comment:
            opts = _option(_OPT_COMMENT, comment.encode()) + _option(_OPT_END, b"")
        total = 32 + len(data) + pad + len(opts)
        buf = self._buf
        buf += _EPB.pack(_EPB_TYPE, total, ifid, stamp >> 32, stamp & 0xFFFFFFFF, len(data), orig_len)
        buf += data
        if pad:
            buf += b"\x00" * pad
        buf += opts
        buf += total.to_bytes(4, "little")
        if len(buf) >= FLUSH_AT:
            self._f.write(buf)
            buf.clear()
