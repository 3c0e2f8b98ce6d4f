"""Codec errors. Every parse error says where (offset) and what (field)."""

from __future__ import annotations


class WireError(Exception):
    """Base class for all codec errors."""


class MalformedMessage(WireError):
    """Bytes that violate their RFC: carries the offset and the field being read.

    ``offset`` is relative to the start of the buffer handed to the codec (for an IKE
    message: the first byte of the IKE header).
    """

    def __init__(self, offset: int, field: str, reason: str) -> None:
        self.offset = offset
        self.field = field
        self.reason = reason
        super().__init__(f"{field} at offset {offset}: {reason}")


class UnsupportedVersion(WireError):
    """An IKE header whose major version we do not speak (neither 1 nor 2)."""

    def __init__(self, major: int, minor: int) -> None:
        self.major = major
        self.minor = minor
        super().__init__(f"unsupported ISAKMP/IKE version {major}.{minor}")
