"""Randomness for the sans-I/O layers: one protocol, injected, never global.

``wire/``, ``crypto/``, ``esp/``, ``engine/`` and ``protocol/`` never call ``os.urandom`` or the
``random``/``secrets`` modules: every nonce, SPI, IV and private key comes from a
:class:`RandomSource` that the caller passes in. The OS-backed source lives outside these
packages (``ipsecdiag.probe.rng.SystemRandom``); :class:`DeterministicRandom` here is for tests
and replays, where the same seed must give the same session byte for byte.

The helpers :func:`random_spi` and :func:`random_int_below` are the two draws many callers need
and easily get subtly wrong (an all-zero SPI, a modulo-biased scalar).
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from .errors import CryptoError

__all__ = ["DeterministicRandom", "RandomSource", "random_int_below", "random_spi"]

# A source that keeps failing rejection sampling is broken (e.g. a test double that returns
# zeros); with a real source the chance of this many rejections in a row is below 2^-64.
_MAX_DRAWS = 64


@runtime_checkable
class RandomSource(Protocol):
    """Where random octets come from. ``bytes(n)`` returns exactly ``n`` octets."""

    def bytes(self, n: int) -> bytes: ...


class DeterministicRandom:
    """A seeded, reproducible :class:`RandomSource` for tests and replays; never for live keys.

    The stream is SHAKE-256(seed || counter) with the counter an 8-octet big-endian block number,
    each block squeezed to 64 octets. Reads are a plain stream over those blocks, so
    ``bytes(3) + bytes(5)`` equals ``bytes(8)`` from a fresh source with the same seed: how a
    caller splits its reads does not change what it gets.
    """

    _BLOCK = 64

    def __init__(self, seed: bytes | str) -> None:
        self._seed = seed.encode("utf-8") if isinstance(seed, str) else bytes(seed)
        self._counter = 0
        self._pending = b""

    def bytes(self, n: int) -> bytes:
        if n < 0:
            raise ValueError(f"cannot draw {n} random octets")
        out = bytearray(self._pending[:n])
        self._pending = self._pending[n:]
        while len(out) < n:
            block = hashlib.shake_256(self._seed + self._counter.to_bytes(8, "big")).digest(self._BLOCK)
            self._counter += 1
            take = n - len(out)
            out += block[:take]
            self._pending = block[take:]
        return bytes(out)

    def __repr__(self) -> str:
        # The seed is not secret in tests, but a replay seed may stand in for key material.
        return f"DeterministicRandom(<seed {len(self._seed)} octets>, block={self._counter})"


def random_spi(rng: RandomSource, size: int) -> bytes:
    """A random SPI of ``size`` octets (8 for an IKE SA, 4 for ESP/AH), as an integer >= 256.

    Zero means "no SPI yet" (RFC 7296 §3.1, the responder SPI in IKE_SA_INIT) and is invalid for
    ESP/AH, whose values 1-255 are reserved by IANA (RFC 4303 §2.1, RFC 4302 §2.4); the same floor
    for IKE SPIs costs nothing and keeps one rule.
    """
    if size < 2:
        raise ValueError(f"an SPI of {size} octets cannot be drawn (need at least 2)")
    for _ in range(_MAX_DRAWS):
        spi = rng.bytes(size)
        if len(spi) != size:
            raise CryptoError(f"random source returned {len(spi)} octets, {size} asked for")
        if int.from_bytes(spi, "big") >= 256:
            return spi
    raise CryptoError(f"random source returned a reserved {size}-octet SPI {_MAX_DRAWS} times")


def random_int_below(rng: RandomSource, n: int) -> int:
    """A uniformly random integer in ``[0, n)`` by rejection sampling (no modulo bias).

    Draws ``ceil(bits(n-1) / 8)`` octets, masks off the excess top bits and retries when the
    value is ``>= n``; each try succeeds with probability above one half.
    """
    if n < 1:
        raise ValueError(f"no integer lies in [0, {n})")
    if n == 1:
        return 0
    bits = (n - 1).bit_length()
    size = (bits + 7) // 8
    mask = (1 << bits) - 1
    for _ in range(_MAX_DRAWS):
        raw = rng.bytes(size)
        if len(raw) != size:
            raise CryptoError(f"random source returned {len(raw)} octets, {size} asked for")
        value = int.from_bytes(raw, "big") & mask
        if value < n:
            return value
    raise CryptoError(f"random source failed rejection sampling below {n} {_MAX_DRAWS} times")
