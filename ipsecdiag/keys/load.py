"""Load key material from any supported source, recognised by its content (not its name).

Formats: Wireshark UAT tables (``ikev2_decryption_table``, ``ikev1_decryption_table``,
``esp_sa``) and configuration directories holding them, ``ip xfrm state`` output, strongSwan
charon logs, Openswan/libreswan pluto logs, tcpdump ``-E`` secrets files, the ipsecdiag TOML key
file and the lab's ``keys.json``. Every failure is a one-line :class:`KeyFileError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ipsecdiag.keys import keyfile, labjson, libreswan, strongswan, tcpdump, wireshark, xfrm
from ipsecdiag.keys.errors import KeyFileError, ParseResult
from ipsecdiag.keys.model import AnyKeys

_NOT_RECOGNISED = (
    "not a recognised key file (expected a Wireshark UAT table, `ip xfrm state` output, "
    "a strongSwan charon log, or an ipsecdiag TOML key file)"
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
        return ParseResult(format="empty", warnings=[f"{name}: no key material (empty or only comments)"])
    if fmt is None:
        raise KeyFileError(name, None, _NOT_RECOGNISED)
    res = READERS[fmt](text.removeprefix("\ufeff"), name=name)
    res.format = fmt
    return res


def load_key_file(path: str | Path) -> ParseResult:
    """Keys, warnings and the detected format of a file or Wireshark configuration directory."""
    p = Path(path)
    if p.is_dir():
        tables = [p / t for t in (wireshark.IKEV2_TABLE, wireshark.IKEV1_TABLE, wireshark.ESP_TABLE)]
        if not any(t.is_file() for t in tables):
            raise KeyFileError(
                path, None, "directory holds no ikev2_decryption_table, ikev1_decryption_table or esp_sa"
            )
        return wireshark.read_wireshark_dir(p)
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


def load_keys(path: str | Path) -> list[AnyKeys]:
    """All usable key records in ``path`` (see :func:`load_key_file` for the warnings)."""
    return load_key_file(path).keys
