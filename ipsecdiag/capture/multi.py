"""Several capture files that continue one another, read as one capture.

A ring buffer (``dumpcap -b files:N``, ``ipsecdiag live --ring``), ``editcap -c``/``-i``
splits and ``tcpdump -C`` pieces cut one capture into files; reading them as one keeps an
IKE exchange that straddles two files together and numbers frames on across the files, so an
evidence frame number is the position in the whole capture.

Files given in a row form one capture when each one continues the previous:

* their names are one numbered series: equal once the digits are removed (``ring_00001_…``
  and ``ring_00002_…``, ``cap`` and ``cap1``, ``piece1`` and ``piece2``);
* the same file format, and the link types of the next file are among those already seen;
* the next file's first packet is not older than the previous file's last one (less
  ``TOLERANCE``: "any" captures may step back by a few microseconds across CPUs).

The names are required because times alone would join two unrelated captures made one after
the other on the same kind of link. Grouping is decided while reading, in one pass: the next
file is opened and its first frame looked at only when the previous one is exhausted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .reader import CaptureFile, Frame, open_capture

TOLERANCE = 0.5  # seconds a file's first packet may precede the previous file's last one


def series_key(path: str | Path) -> str:
    """The file name without its digits: equal for the files of one numbered series."""
    return re.sub(r"\d+", "", Path(path).name)


def series_runs(paths: Sequence[str | Path], *, separate: bool = False) -> list[list[str | Path]]:
    """Split ``paths`` (in the given order) into runs of one numbered series, from the names
    alone: a file alone in its run is one capture whatever its contents, so it can take the
    single-file path; a longer run is read with :func:`capture_groups`."""
    runs: list[list[str | Path]] = []
    for p in paths:
        if runs and not separate and series_key(runs[-1][-1]) == series_key(p):
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


class SourceFields(Protocol):
    """The part of a report's source section a group knows (capture/ cannot import the model)."""

    files: list[str]
    formats: list[str]
    linktypes: set[int]
    bytes: int
    truncated_files: list[str]


@dataclass
class _Open:
    """A file opened and peeked at: its first frame was already taken from the iterator."""

    path: str
    cap: CaptureFile
    frames: Iterator[Frame]
    first: Frame | None


@dataclass
class CaptureGroup:
    """Files read as one capture. Filled in while :meth:`frames` runs; final once it is done."""

    files: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    linktypes: set[int] = field(default_factory=set)
    truncated: list[str] = field(default_factory=list)  # "path: detail" per truncated file
    frames_read: int = 0
    bytes: int = 0
    _last_ts: float | None = None  # of the last file read (set only when another may follow)
    position: int = 0  # bytes of input consumed in earlier files plus the current one
    _cursor: _Cursor | None = field(default=None, repr=False)

    def frames(self) -> Iterator[Frame]:
        """Every frame of the group, numbered on across its files."""
        assert self._cursor is not None
        cur = self._cursor
        f = cur.take()
        offset = 0
        done_bytes = 0
        while f is not None:
            self.files.append(f.path)
            self.formats.append(f.cap.format)
            last: list[float | None] = [f.first[1] if f.first is not None else None]
            rest = f.frames
            if cur.paths and not cur.separate:
                # only when another file may follow: the single-file case keeps its fast path
                rest = _tracking(rest, last)
            try:
                if f.first is not None:
                    if offset:
                        yield from _renumbered(f.first, rest, offset)
                    else:
                        yield f.first
                        yield from rest
            finally:
                st = f.cap.stats
                self.linktypes |= f.cap.linktypes
                self.bytes += st.bytes
                offset += st.frames
                self.frames_read = offset
                done_bytes += st.position
                self.position = done_bytes
                if st.truncated_file:
                    self.truncated.append(f"{f.path}: {st.truncated_detail}")
                f.cap.close()
            if last[0] is not None:
                self._last_ts = last[0]
            f = cur.next_continuing(self)

    def fill_source(self, source: SourceFields) -> None:
        """Write what the files say into a report's source section (after the frames)."""
        source.files = list(self.files)
        source.formats = list(self.formats)
        source.linktypes = set(self.linktypes)
        source.bytes = self.bytes
        source.truncated_files = list(self.truncated)

    def _continues(self, nxt: _Open) -> bool:
        if series_key(nxt.path) != series_key(self.files[-1]) or nxt.cap.format != self.formats[-1]:
            return False
        if nxt.first is None:
            return True  # an empty file (a ring stopped right after rotating) adds nothing
        if not nxt.cap.linktypes <= self.linktypes:
            return False
        return self._last_ts is None or nxt.first[1] >= self._last_ts - TOLERANCE


def _renumbered(first: Frame, rest: Iterator[Frame], offset: int) -> Iterator[Frame]:
    n, ts, lt, data, orig = first
    yield n + offset, ts, lt, data, orig
    for n, ts, lt, data, orig in rest:
        yield n + offset, ts, lt, data, orig


class _Cursor:
    """The files not yet read and the one already opened that starts the next group."""

    def __init__(self, paths: Sequence[str | Path], separate: bool) -> None:
        self.paths = [str(p) for p in paths]
        self.separate = separate
        self.pending: _Open | None = None

    def _open(self) -> _Open | None:
        if not self.paths:
            return None
        path = self.paths.pop(0)
        cap = open_capture(path)
        it = cap.frames()
        return _Open(path, cap, it, next(it, None))

    def take(self) -> _Open | None:
        if self.pending is not None:
            f, self.pending = self.pending, None
            return f
        return self._open()

    def next_continuing(self, group: CaptureGroup) -> _Open | None:
        if self.separate:
            return None
        nxt = self._open()
        if nxt is None or group._continues(nxt):
            return nxt
        self.pending = nxt
        return None


def _tracking(frames: Iterator[Frame], last: list[float | None]) -> Iterator[Frame]:
    """Pass frames through, keeping the last timestamp in ``last[0]`` (continuation test)."""
    for fr in frames:
        last[0] = fr[1]
        yield fr


def capture_groups(paths: Sequence[str | Path], *, separate: bool = False) -> Iterator[CaptureGroup]:
    """The captures in ``paths``: runs of files that continue one another become one group
    (every file its own group with ``separate``). Each group must be read (``frames()``)
    before the next is taken; ``CaptureError`` for a file that cannot be read."""
    cursor = _Cursor(paths, separate)
    while cursor.paths or cursor.pending is not None:
        group = CaptureGroup(_cursor=cursor)
        yield group
        if not group.files:  # the caller did not read it: skip its files
            for _ in group.frames():
                pass
