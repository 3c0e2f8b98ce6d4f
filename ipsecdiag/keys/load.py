"""Load key material from any supported source, recognised by its content (not its name).

Formats: Wireshark UAT tables (``ikev2_decryption_table``, ``ikev1_decryption_table``,
``esp_sa``) and configuration directories holding them, ``ip xfrm state`` output, strongSwan
charon logs, Openswan/libreswan pluto logs, tcpdump ``-E`` secrets files, the ipsecdiag TOML key
file and the lab's ``keys.json``. Every failure is a one-line :class:`KeyFileError`.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ipsecdiag.keys import keyfile, labjson, libreswan, strongswan, tcpdump, wireshark, xfrm
from ipsecdiag.keys.errors import KeyFileError, KeySourceNote, ParseResult
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, KeyRecord, KeyStore, PendingIkeKeys

_NOT_RECOGNISED = (
    "not a recognised key file (expected a Wireshark UAT table, `ip xfrm state` output, "
    "a strongSwan charon log, a libreswan pluto log, a tcpdump -E secrets file, "
    "or an ipsecdiag TOML key file)"
)

Reader = Callable[..., ParseResult]


def detect_format(text: str) -> str | None:
    """Name of the format ``text`` is in, or None (empty and comment-only text: ``"empty"``)."""
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not body:
        return "empty"
    checks: list[tuple[str, Callable[[str], bool]]] = [
        ("lab-keys-json", labjson.looks_like_lab_json),
        ("toml", keyfile.looks_like_keyfile),
        ("xfrm", xfrm.looks_like_xfrm),
        ("strongswan", strongswan.looks_like_charon_log),
        ("pluto", libreswan.looks_like_pluto_log),
        ("tcpdump-esp-secrets", tcpdump.looks_like_tcpdump_secrets),
    ]
    for fmt, check in checks:
        if check(text):
            return fmt
    return wireshark.sniff(text)


READERS: dict[str, Reader] = {
    "lab-keys-json": labjson.parse_lab_json,
    "toml": keyfile.parse_keyfile,
    "xfrm": xfrm.parse_xfrm_state,
    "strongswan": strongswan.parse_charon_log,
    "pluto": libreswan.parse_pluto_log,
    "tcpdump-esp-secrets": tcpdump.parse_tcpdump_secrets,
    wireshark.IKEV2_TABLE: wireshark.parse_ikev2_table,
    wireshark.IKEV1_TABLE: wireshark.parse_ikev1_table,
    wireshark.ESP_TABLE: wireshark.parse_esp_sa,
}


def parse_text(text: str, *, name: str = "<input>") -> ParseResult:
    """Parse key material already in memory (format detected from the content)."""
    fmt = detect_format(text.removeprefix("\ufeff"))
    if fmt == "empty":
        res = ParseResult(format="empty", empty_reason="the file is empty (or holds only comments)")
    elif fmt is None:
        raise KeyFileError(name, None, _NOT_RECOGNISED)
    else:
        res = READERS[fmt](text.removeprefix("\ufeff"), name=name)
        res.format = fmt
    res.notes.extend(source_notes(res, name))
    return res


def source_notes(res: ParseResult, name: str) -> list[KeySourceNote]:
    """Notes about a whole source: no usable keys (and why), records cut short, pending rekeys."""
    notes: list[KeySourceNote] = []
    incomplete = [k for k in res.keys if isinstance(k, IkeSaKeys | ChildSaKeys) and k.incomplete]
    pending = [k for k in res.keys if isinstance(k, PendingIkeKeys)]
    usable = len(res.keys) - len(incomplete) - len(pending)
    if usable == 0:
        why = res.empty_reason or (
            f"recognised as {res.format}, but it holds no usable key records"
            + (f" ({len(res.warnings)} skipped, see the warnings)" if res.warnings else "")
        )
        notes.append(KeySourceNote(name, "no-keys", f"no usable keys: {why}"))
    if incomplete:
        notes.append(
            KeySourceNote(
                name,
                "incomplete",
                f"{len(incomplete)} key record(s) are incomplete and not used: {incomplete[0].incomplete} "
                f"({incomplete[0].source})",
            )
        )
    if pending:
        notes.append(
            KeySourceNote(
                name,
                "pending",
                f"{len(pending)} rekeyed IKE SA(s) keyed without their SPIs ({pending[0].describe()}); "
                "they need the CREATE_CHILD_SA that created them",
            )
        )
    return notes


def load_key_file(path: str | Path) -> ParseResult:
    """Keys, warnings and the detected format of a file or Wireshark configuration directory."""
    p = Path(path)
    try:
        # Not Path.is_dir(): it raises for a file behind a directory we may not search.
        is_dir = stat.S_ISDIR(p.stat().st_mode)
    except OSError as e:
        raise KeyFileError(path, None, f"cannot read: {e.strerror or e}") from None
    if is_dir:
        tables = [p / t for t in (wireshark.IKEV2_TABLE, wireshark.IKEV1_TABLE, wireshark.ESP_TABLE)]
        if not any(t.is_file() for t in tables):
            raise KeyFileError(
                path, None, "directory holds no ikev2_decryption_table, ikev1_decryption_table or esp_sa"
            )
        res = wireshark.read_wireshark_dir(p)
        res.notes.extend(source_notes(res, str(path)))
        return res
    try:
        with p.open("rb") as fh:
            head = fh.read(4096)
            # Checked before reading on: a capture given by mistake can be gigabytes.
            if b"\x00" in head:
                raise KeyFileError(
                    path, None, _NOT_RECOGNISED + "; this looks like a binary file (a capture?)"
                )
            data = head + fh.read()
    except OSError as e:
        raise KeyFileError(path, None, f"cannot read: {e.strerror or e}") from None
    return parse_text(data.decode("utf-8", errors="replace"), name=str(path))


def load_keys(path: str | Path) -> list[KeyRecord]:
    """All key records in ``path`` (see :func:`load_key_file` for the warnings and notes)."""
    return load_key_file(path).keys


@dataclass
class KeyLoad:
    """Every key source of a run: one store, the per-item warnings and the per-source notes."""

    store: KeyStore = field(default_factory=KeyStore)
    formats: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[KeySourceNote] = field(default_factory=list)

    @property
    def user_warnings(self) -> list[str]:
        """The notes a command prints as warnings before its analysis. A recognised source
        without usable keys is a warning, never the end of the analysis; rekeyed IKE SAs' keys
        without SPIs ("pending") are not: the analysis binds them from the capture, and the
        report names (key-source-unused) only those it could not bind."""
        return [f"ipsecdiag: warning: {note}" for note in self.notes if note.kind != "pending"]


def load_key_sources(paths: Iterable[str | Path]) -> KeyLoad:
    """Load every source; an unreadable or unrecognisable one raises :class:`KeyFileError`,
    a recognised one without usable keys only adds a note."""
    out = KeyLoad()
    for p in paths:
        res = load_key_file(p)
        out.formats[str(p)] = res.format
        out.store.extend(res.keys)
        out.warnings.extend(res.warnings)
        out.notes.extend(res.notes)
    out.store.notes.extend(out.notes)
    out.store.formats.update(out.formats)
    return out

