"""A plain mutation engine (the fallback when atheris is not installed).

Byte-level mutations in the style of AFL/libFuzzer's default mutators: bit flips, byte sets,
"interesting" integers written in either byte order (lengths and counts are where parsers
break), block insertion, deletion, duplication, truncation and splicing with another seed. A
seeded ``random.Random`` makes every campaign reproducible from its seed and input number.
"""

from __future__ import annotations

import random
import struct

INTERESTING = (
    0, 1, 2, 3, 4, 7, 8, 12, 16, 28, 32, 64, 127, 128, 255, 256, 512, 1024, 4096, 32767, 32768,
    65535, 65536, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
)  # fmt: skip
MAX_LEN = 1 << 20


class Mutator:
    """``mutate(data)`` returns a new byte string derived from ``data`` (1-4 stacked edits)."""

    def __init__(self, rng: random.Random, seeds: list[bytes]) -> None:
        self.rng = rng
        self.seeds = seeds
        self._ops = (
            self._flip_bit,
            self._set_byte,
            self._interesting,
            self._interesting,
            self._insert,
            self._delete,
            self._duplicate,
            self._truncate,
            self._splice,
            self._arith,
        )

    def mutate(self, data: bytes, *, max_edits: int = 4) -> bytes:
        buf = bytearray(data)
        for _ in range(self.rng.randint(1, max_edits)):
            self.rng.choice(self._ops)(buf)
        if len(buf) > MAX_LEN:
            del buf[MAX_LEN:]
        return bytes(buf)

    def _pos(self, buf: bytearray) -> int:
        return self.rng.randrange(len(buf)) if buf else 0

    def _flip_bit(self, buf: bytearray) -> None:
        if buf:
            i = self._pos(buf)
            buf[i] ^= 1 << self.rng.randrange(8)

    def _set_byte(self, buf: bytearray) -> None:
        if buf:
            buf[self._pos(buf)] = self.rng.choice((0, 0xFF, 0x7F, 0x80, self.rng.randrange(256)))

    def _interesting(self, buf: bytearray) -> None:
        size = self.rng.choice((1, 2, 4, 8))
        if len(buf) < size:
            return
        i = self.rng.randrange(len(buf) - size + 1)
        v = self.rng.choice(INTERESTING)
        v = (v if self.rng.random() < 0.8 else -v) & ((1 << (8 * size)) - 1)
        order = self.rng.choice("<>")
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        buf[i : i + size] = struct.pack(order + fmt, v)

    def _arith(self, buf: bytearray) -> None:
        if buf:
            i = self._pos(buf)
            buf[i] = (buf[i] + self.rng.randint(-35, 35)) & 0xFF

    def _insert(self, buf: bytearray) -> None:
        n = self.rng.choice((1, 2, 4, 8, self.rng.randint(1, 256)))
        fill = self.rng.choice((b"\x00", b"\xff", bytes([self.rng.randrange(256)])))
        i = self.rng.randint(0, len(buf))
        buf[i:i] = fill * n if self.rng.random() < 0.5 else self.rng.randbytes(n)

    def _delete(self, buf: bytearray) -> None:
        if len(buf) > 1:
            i = self._pos(buf)
            del buf[i : i + self.rng.randint(1, min(64, len(buf) - i))]

    def _duplicate(self, buf: bytearray) -> None:
        if buf:
            i = self._pos(buf)
            n = self.rng.randint(1, min(512, len(buf) - i))
            j = self.rng.randint(0, len(buf))
            buf[j:j] = buf[i : i + n]

    def _truncate(self, buf: bytearray) -> None:
        if buf:
            del buf[self.rng.randint(0, len(buf) - 1) :]

    def _splice(self, buf: bytearray) -> None:
        other = self.rng.choice(self.seeds) if self.seeds else b""
        if not other or not buf:
            return
        i = self._pos(buf)
        j = self.rng.randrange(len(other))
        buf[i:] = other[j : j + self.rng.randint(1, len(other) - j)]
