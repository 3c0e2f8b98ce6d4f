"""Errors and results shared by the key-file readers.

Every reader turns bad input into :class:`KeyFileError` (one line, file and line number),
never into a traceback, and returns what it could not use as counted warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ipsecdiag.keys.model import KeyRecord, KeySourceNote

__all__ = ["KeyFileError", "KeySourceNote", "ParseResult", "parse_hex", "where"]


class KeyFileError(ValueError):
    """Unusable key material: ``str()`` is one line such as ``keys.txt:12: <message>``."""

    def __init__(self, path: str | Path | None, line_no: int | None, message: str) -> None:
        self.path = str(path) if path is not None else None
        self.line_no = line_no
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.path or "<input>"
        if self.line_no is not None:
            where = f"{where}:{self.line_no}"
        return f"{where}: {self.message}"


@dataclass
class ParseResult:
    """What a reader found: key records, one warning per thing it skipped, and notes about the
    source as a whole (see :class:`KeySourceNote`)."""

    keys: list[KeyRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    format: str = ""
    notes: list[KeySourceNote] = field(default_factory=list)
    # Why a source that yields no usable keys yields none (reader-specific hint, may be "").
    empty_reason: str = ""

    def extend(self, other: ParseResult) -> None:
        self.keys.extend(other.keys)
        self.warnings.extend(other.warnings)
        self.notes.extend(other.notes)


def where(name: str, line_no: int | None) -> str:
    """``name:line`` for sources and warnings."""
    return f"{name}:{line_no}" if line_no is not None else name


def parse_hex(text: str, *, name: str, line_no: int | None, what: str) -> bytes:
    """Strict hex (optional ``0x``, ``:`` or blank separators); errors name the field."""
    t = text.strip()
    if t[:2] in ("0x", "0X"):
        t = t[2:]
    t = t.replace(":", "").replace(" ", "").replace("\t", "")
    bad = next((c for c in t if c not in "0123456789abcdefABCDEF"), None)
    if bad is not None:
        raise KeyFileError(name, line_no, f"{what}: {bad!r} is not a hex digit")
    if len(t) % 2:
        raise KeyFileError(
            name, line_no, f"{what}: odd number of hex digits ({len(t)}), the value looks truncated"
        )
    return bytes.fromhex(t)
