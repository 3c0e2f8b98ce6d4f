"""Keeping a live capture: one pcapng file, or a ring of N files of a given size.

Ring files are named as dumpcap names its own (``ring_00001_20261203101500.pcapng``: the
file's sequence number, then the UTC time of its first packet), so ``ipsecdiag analyze
ring_*.pcapng`` lists them in capture order and reads them back as one capture
(:mod:`.multi`). When the ring is full the oldest file is deleted, as dumpcap does.

Files are written in place, not through a temporary name: a capture that runs for hours must
be readable while it grows and must survive an interrupt. They are created 0600 (less with a
stricter umask): a capture holds the traffic the tunnel was carrying. Buffered records reach
the file at least every ``FLUSH_SECONDS`` of capture time.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from .reader import Frame
from .writer import PcapNgWriter

FLUSH_SECONDS = 1.0
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
}  # fmt: skip
MIN_FILE_SIZE = 64_000
MAX_RING_FILES = 100_000


def parse_ring(text: str) -> tuple[int, int]:
    """``NxSIZE`` (``10x100MB``, ``4x1GiB``) -> (files, bytes per file); ``ValueError`` with a
    one-line reason otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not m:
        raise ValueError(f"--ring {text!r}: expected NxSIZE, e.g. 10x100MB")
    files, number, unit = int(m.group(1)), float(m.group(2)), m.group(3).lower()
    if unit not in _UNITS:
        raise ValueError(f"--ring {text!r}: unknown size unit {m.group(3)!r} (B, kB, MB, GB, KiB, MiB, GiB)")
    size = int(number * _UNITS[unit])
    if not 2 <= files <= MAX_RING_FILES:
        raise ValueError(f"--ring {text!r}: the ring needs 2 to {MAX_RING_FILES} files")
    if size < MIN_FILE_SIZE:
        raise ValueError(f"--ring {text!r}: files must hold at least {MIN_FILE_SIZE // 1000} kB")
    return files, size


def ring_name(base: Path, number: int, ts: float) -> Path:
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(ts))
    return base.with_name(f"{base.stem}_{number:05d}_{stamp}{base.suffix or '.pcapng'}")


def _create_private(path: Path):  # -> BinaryIO
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb")


class CaptureKeeper:
    """Writes frames as pcapng: to ``path`` itself, or (``ring=(files, size)``) to a ring of
    files named after ``path``. ``interface`` names the capture's interface in the files."""

    def __init__(self, path: Path, *, ring: tuple[int, int] | None = None, interface: str = "") -> None:
        self.base = path
        self.ring = ring
        self.interface = interface
        self.written: list[Path] = []  # every file written, in order (ring files may be gone)
        self.deleted: list[Path] = []
        self.frames = 0
        self._w: PcapNgWriter | None = None
        self._size = 0
        self._flushed_at = 0.0
        self._number = 0
        if ring is None:
            self._open(path)

    def _open(self, path: Path) -> None:
        self._file = _create_private(path)  # the writer leaves a handed-in file open: closed here
        self._w = PcapNgWriter(self._file, application="ipsecdiag live")
        self._linktypes: set[int] = set()
        self._size = 0
        self.written.append(path)

    def write(self, frame: Frame) -> None:
        _n, ts, linktype, data, orig_len = frame
        w = self._w
        if w is None:
            self._number += 1
            self._open(ring_name(self.base, self._number, ts))
            w = self._w
            assert w is not None
            self._prune()
        if linktype not in self._linktypes:  # the IDB, with the interface name, comes first
            self._linktypes.add(linktype)
            w.interface(linktype, self.interface or None)
        w.write(ts, data, linktype=linktype, orig_len=orig_len)
        self.frames += 1
        self._size += 32 + len(data) + (-len(data) & 3)
        if ts - self._flushed_at >= FLUSH_SECONDS:
            w.flush()
            self._flushed_at = ts
        if self.ring is not None and self._size >= self.ring[1]:
            self._close_current()

    def _prune(self) -> None:
        assert self.ring is not None
        live = [p for p in self.written if p not in self.deleted]
        for old in live[: max(0, len(live) - self.ring[0])]:
            try:
                old.unlink()
            except FileNotFoundError:
                pass
            self.deleted.append(old)

    def _close_current(self) -> None:
        if self._w is not None:
            self._w.close()
            self._file.close()
            self._w = None

    def flush(self) -> None:
        if self._w is not None:
            self._w.flush()

    def close(self) -> None:
        self._close_current()

    @property
    def files(self) -> list[Path]:
        """The files that exist now, oldest first."""
        return [p for p in self.written if p not in self.deleted]
