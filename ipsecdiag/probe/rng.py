"""The operating system's randomness, for live sessions.

This is the only place in ipsecdiag where OS randomness enters: the sans-I/O layers (``crypto/``,
``esp/``, ``engine/``) take a :class:`~ipsecdiag.crypto.rng.RandomSource` as an argument, and
``probe`` hands them this one (tests and replays hand them ``DeterministicRandom``).
"""

from __future__ import annotations

import os


class SystemRandom:
    """``RandomSource`` backed by ``os.urandom`` (the kernel CSPRNG, getrandom(2) on Linux)."""

    __slots__ = ("drawn",)

    def __init__(self) -> None:
        self.drawn = 0  # bytes handed out, for the session summary

    def bytes(self, n: int) -> bytes:
        """``n`` fresh random octets (SPIs, nonces, private keys, IVs)."""
        if n < 0:
            raise ValueError(f"cannot draw {n} random bytes")
        self.drawn += n
        return os.urandom(n)


__all__ = ["SystemRandom"]
