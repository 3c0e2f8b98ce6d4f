"""A small cursor over bytes with pull/push primitives (as aioquic's Buffer).

Reading past the end raises :class:`MalformedMessage` naming the field, so codecs can be
written as straight-line pulls and still report precise offsets.
"""

from __future__ import annotations

import struct

from .errors import MalformedMessage

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


class Buffer:
    __slots__ = ("_data", "_pos", "_end", "base")

    def __init__(self, data: bytes = b"", *, start: int = 0, end: int | None = None, base: int = 0) -> None:
        """``base`` is added to offsets in error messages (position of ``data[0]`` in the message)."""
        self._data = bytes(data) if not isinstance(data, bytes) else data
        self._pos = start
        self._end = len(self._data) if end is None else end
        self.base = base

    # -- reading ---------------------------------------------------------------------------
    @property
    def pos(self) -> int:
        return self._pos

    @property
    def end(self) -> int:
        return self._end

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def eof(self) -> bool:
        return self._pos >= self._end

    def offset(self) -> int:
        """Offset of the cursor for error messages."""
        return self.base + self._pos

    def _need(self, n: int, field: str) -> int:
        pos = self._pos
        if n < 0 or pos + n > self._end:
            raise MalformedMessage(self.base + pos, field, f"needs {n} bytes, {self._end - pos} left")
        self._pos = pos + n
        return pos

    def pull_uint8(self, field: str) -> int:
        pos = self._need(1, field)
        return self._data[pos]

    def pull_uint16(self, field: str) -> int:
        pos = self._need(2, field)
        return _U16.unpack_from(self._data, pos)[0]

    def pull_uint32(self, field: str) -> int:
        pos = self._need(4, field)
        return _U32.unpack_from(self._data, pos)[0]

    def pull_uint64(self, field: str) -> int:
        pos = self._need(8, field)
        return _U64.unpack_from(self._data, pos)[0]

    def pull_bytes(self, n: int, field: str) -> bytes:
        pos = self._need(n, field)
        return self._data[pos : pos + n]

    def pull_rest(self) -> bytes:
        pos = self._pos
        self._pos = self._end
        return self._data[pos : self._end]

    def sub(self, n: int, field: str) -> Buffer:
        """A child buffer over the next ``n`` bytes; the parent skips past them."""
        pos = self._need(n, field)
        return Buffer(self._data, start=pos, end=pos + n, base=self.base)

    def skip(self, n: int, field: str) -> None:
        self._need(n, field)

    def peek_uint8(self, field: str) -> int:
        if self._pos >= self._end:
            raise MalformedMessage(self.base + self._pos, field, "needs 1 byte, 0 left")
        return self._data[self._pos]


class Writer:
    """Append-only output with push primitives; ``patch_uint16/32`` fill lengths in later."""

    __slots__ = ("_out",)

    def __init__(self) -> None:
        self._out = bytearray()

    def __len__(self) -> int:
        return len(self._out)

    def push_uint8(self, v: int) -> None:
        self._out.append(v & 0xFF)

    def push_uint16(self, v: int) -> None:
        self._out += _U16.pack(v & 0xFFFF)

    def push_uint32(self, v: int) -> None:
        self._out += _U32.pack(v & 0xFFFFFFFF)

    def push_uint64(self, v: int) -> None:
        self._out += _U64.pack(v & 0xFFFFFFFFFFFFFFFF)

    def push_bytes(self, b: bytes) -> None:
        self._out += b

    def patch_uint16(self, pos: int, v: int) -> None:
        _U16.pack_into(self._out, pos, v)

    def patch_uint32(self, pos: int, v: int) -> None:
        _U32.pack_into(self._out, pos, v)

    def getvalue(self) -> bytes:
        return bytes(self._out)
