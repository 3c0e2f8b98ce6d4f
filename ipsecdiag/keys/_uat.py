"""Wireshark UAT ("user accessible table") file syntax: one record per line, comma separated.

Facts from Wireshark's uat_load.l / uat.c: ``#`` starts a comment line; a field is either a
double-quoted string (``\\xNN``, octal ``\\NNN`` and C escapes inside) or an unquoted token; byte
fields written unquoted are hex, a quoted byte field is taken as the raw characters. On save
Wireshark escapes ``"``, ``\\`` and non-printable characters as ``\\xNN``.
"""

from __future__ import annotations

from collections.abc import Iterator

from ipsecdiag.keys.errors import KeyFileError

_SIMPLE_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def records(text: str) -> Iterator[tuple[int, str]]:
    """``(line_no, line)`` for every non-blank, non-comment line (1-based line numbers)."""
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield no, line


def split(line: str, *, name: str, line_no: int) -> list[tuple[str, bool]]:
    """Split one record into ``(value, was_quoted)`` fields."""
    fields: list[tuple[str, bool]] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == '"':
            value, i = _quoted(line, i + 1, name=name, line_no=line_no, field=len(fields) + 1)
            fields.append((value, True))
            while i < n and line[i] in " \t":
                i += 1
            if i < n and line[i] != ",":
                raise KeyFileError(
                    name, line_no, f"field {len(fields)}: text after the closing quote ({line[i:][:20]!r})"
                )
        else:
            j = line.find(",", i)
            j = n if j < 0 else j
            fields.append((line[i:j].strip(), False))
            i = j
        if i >= n:
            return fields
        i += 1  # the comma


def _quoted(line: str, i: int, *, name: str, line_no: int, field: int) -> tuple[str, int]:
    # Wireshark works on the file's bytes: literal text is its UTF-8, an escape is one byte.
    # The value comes back latin-1 decoded, so raw_bytes() recovers those bytes exactly.
    out = bytearray()
    n = len(line)
    while i < n:
        c = line[i]
        if c == '"':
            return out.decode("latin-1"), i + 1
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        i += 1
        if i >= n:
            break
        e = line[i]
        if e == "x" and _is_hex(line[i + 1 : i + 3]):
            out.append(int(line[i + 1 : i + 3], 16))
            i += 3
        elif e in "01234567":
            j = i
            while j < n and j < i + 3 and line[j] in "01234567":
                j += 1
            out.append(int(line[i:j], 8) & 0xFF)
            i = j
        else:
            out += _SIMPLE_ESC.get(e, e).encode("utf-8")
            i += 1
    raise KeyFileError(name, line_no, f"field {field}: unterminated quoted string")


def _is_hex(s: str) -> bool:
    return len(s) == 2 and all(c in "0123456789abcdefABCDEF" for c in s)


def raw_bytes(value: str) -> bytes:
    """The bytes a field stands for: ``\\xNN`` escapes are single bytes, other text is UTF-8."""
    return b"".join(bytes([ord(c)]) if ord(c) < 0x100 else c.encode("utf-8") for c in value)


def quote(value: str | bytes) -> str:
    """A quoted UAT field, escaped the way Wireshark writes it (``"``, ``\\``, non-printables)."""
    data = raw_bytes(value) if isinstance(value, str) else value
    return (
        '"' + "".join(chr(b) if 0x20 <= b <= 0x7E and b not in b'"\\' else f"\\x{b:02x}" for b in data) + '"'
    )
