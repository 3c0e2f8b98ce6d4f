"""Errors raised by the crypto layer.

All share :class:`CryptoError`, so a caller that only wants "could not decrypt this" catches one
class; the subclasses say why, which is what a diagnosis needs (wrong key vs. broken packet vs.
an algorithm we cannot compute).
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of everything the crypto layer raises about data or keys."""


class IntegrityError(CryptoError):
    """The ICV / AEAD tag did not verify: wrong key, wrong direction, or a modified packet."""

    def __init__(self, reason: str = "integrity check failed") -> None:
        super().__init__(reason)


class DecryptError(CryptoError):
    """The protected data is structurally impossible (lengths, padding, missing state)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnsupportedAlgorithm(CryptoError):
    """An algorithm we cannot compute; the message names it so a report can say which."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        super().__init__(f"unsupported algorithm {name}" + (f": {detail}" if detail else ""))


class InvalidKey(CryptoError, ValueError):
    """Key material that does not fit the algorithm (usually a wrong length)."""
