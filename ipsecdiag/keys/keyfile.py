"""ipsecdiag's own key file: TOML with ``[[ike]]``, ``[[ikev1]]``, ``[[esp]]`` and ``[[ah]]`` tables.

The format is documented with an example in docs/keys.md. Algorithms use the IANA names of
:mod:`ipsecdiag.wire.registry` (``ENCR_AES_GCM_16``, ``AUTH_HMAC_SHA2_256_128``,
``PRF_HMAC_SHA2_256``; the ``ENCR_``/``AUTH_`` prefix may be left out) and also accept strongSwan
keywords (``aes256gcm16``, ``sha256``, ``prfsha256``) and proposal tokens (``AES_GCM_16_256``).
Keys are hex strings (``0x`` optional; salt included for AEAD/CTR ciphers). Read with tomllib;
written by a small writer here, mode 0600.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

from ipsecdiag.keys import _swnames
from ipsecdiag.keys._files import write_private
from ipsecdiag.keys.algorithms import (
    INTEG_KEY_BYTES,
    encr_name,
    expected,
    integ_name,
    key_bits_for,
    key_len_for,
    known_encr_names,
    known_integ_names,
    parse_encr_name,
    parse_integ_name,
    parse_prf_name,
    parse_v1_encr_name,
    parse_v1_hash_name,
    prf_name,
    salt_len,
)
from ipsecdiag.keys.errors import KeyFileError, ParseResult, parse_hex, where
from ipsecdiag.keys.model import ANY_SPI, AnyKeys, ChildSaKeys, IkeSaKeys, IkeV1Keys, KeyStore, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId, V1EncrAlg, V1HashAlg, name_of

from ..wire.jsontypes import Json

_FIELDS: dict[str, tuple[str, ...]] = {
    "ike": (
        "version", "spi_i", "spi_r", "encr", "key_bits", "sk_ei", "sk_er", "integ", "sk_ai", "sk_ar",
        "prf", "sk_d", "sk_pi", "sk_pr", "source",
    ),
    "ikev1": ("cookie_i", "cookie_r", "encr", "key_bits", "hash", "key", "skeyid_a", "skeyid_d", "source"),
    "esp": (
        "spi", "src", "dst", "encr", "key_bits", "key", "integ", "integ_key", "esn", "esn_high", "mode",
        "encap_sport", "encap_dport", "source",
    ),
    "ah": ("spi", "src", "dst", "integ", "integ_key", "esn", "esn_high", "mode", "source"),
}  # fmt: skip
_TOP_LEVEL = {"format"}
_MODES = ("tunnel", "transport", "beet")


class _Table:
    """One ``[[kind]]`` entry with access helpers that raise errors at the right line."""

    def __init__(self, kind: str, index: int, data: Json, text: str, name: str) -> None:
        self.kind, self.index, self.data, self.text, self.name = kind, index, data, text, name
        self.line = _locate(text, kind, index)
        for key in data:
            if key not in _FIELDS[kind]:
                self.fail(
                    key,
                    f"unknown key {key!r} in [[{kind}]] (expected one of {expected(list(_FIELDS[kind]), 20)})",
                )

    def fail(self, key: str | None, message: str) -> NoReturn:
        line = _locate(self.text, self.kind, self.index, key) if key else self.line
        raise KeyFileError(self.name, line, message)

    def str(self, key: str, *, required: bool = False) -> str | None:
        v = self.data.get(key)
        if v is None:
            if required:
                self.fail(None, f"[[{self.kind}]] entry needs {key!r}")
            return None
        if not isinstance(v, str):
            self.fail(key, f"{key} must be a string, got {type(v).__name__}")
        return v

    def int(self, key: str) -> int | None:
        v = self.data.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            self.fail(key, f"{key} must be an integer, got {type(v).__name__}")
        return v

    def bool(self, key: str) -> bool | None:
        v = self.data.get(key)
        if v is not None and not isinstance(v, bool):
            self.fail(key, f"{key} must be true or false, got {v!r}")
        return v

    def hex(self, key: str, *, required: bool = False, size: int | None = None) -> bytes:
        v = self.str(key, required=required)
        if v is None:
            return b""
        line = _locate(self.text, self.kind, self.index, key)
        b = parse_hex(v, name=self.name, line_no=line, what=key)
        if size is not None and len(b) != size:
            self.fail(key, f"{key} must be {size} octets, got {len(b)}")
        return b


def _locate(text: str, kind: str, index: int, key: str | None = None) -> int | None:
    """Line of the ``index``-th ``[[kind]]`` header (or of ``key`` inside it); tomllib has none."""
    seen = -1
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\[\s*" + re.escape(kind) + r"\s*\]\]")
    for no, line in enumerate(lines, 1):
        if header.match(line):
            seen += 1
            if seen == index:
                if key is None:
                    return no
                for j in range(no, len(lines)):
                    if re.match(r"^\s*\[", lines[j]):
                        break
                    if re.match(r"^\s*" + re.escape(key) + r"\s*=", lines[j]):
                        return j + 1
                return no
    return None


def _encr(t: _Table) -> tuple[int, int | None]:
    s = t.str("encr", required=True)
    assert s is not None
    got = parse_encr_name(s)
    if got is not None:
        return got, None
    kw = _swnames.encr_keyword(s) or _swnames.encr_token(s)
    if kw is None:
        t.fail("encr", f"unknown encryption algorithm {s!r} (expected one of {expected(known_encr_names())})")
    return kw


def _integ(t: _Table) -> int:
    s = t.str("integ")
    if s is None:
        return int(IntegId.NONE)
    got = parse_integ_name(s)
    got = got if got is not None else _swnames.integ_keyword(s)
    if got is None:
        t.fail(
            "integ", f"unknown integrity algorithm {s!r} (expected one of {expected(known_integ_names())})"
        )
    return got


def _check_len(t: _Table, key: str, data: bytes, encr: int, bits: int | None) -> int | None:
    need = key_len_for(encr, bits)
    if need is not None and len(data) != need:
        salt = salt_len(encr)
        extra = f" ({need - salt} + {salt}-octet salt)" if salt else ""
        alg = encr_name(encr) + (f" with {bits}-bit keys" if bits else "")
        t.fail(key, f"{key} is {len(data)} octets, {alg} needs {need}{extra}")
    return bits if bits is not None else key_bits_for(encr, len(data))


def _check_integ(t: _Table, key: str, data: bytes, integ: int) -> None:
    need = INTEG_KEY_BYTES.get(integ)
    if need is not None and len(data) != need:
        t.fail(key, f"{key} is {len(data)} octets, {integ_name(integ)} needs {need}")


def _ike(t: _Table) -> IkeSaKeys:
    if t.int("version") not in (None, 2):
        t.fail("version", "[[ike]] holds IKEv2 SAs; put IKEv1 SAs in [[ikev1]]")
    encr, kw_bits = _encr(t)
    bits = t.int("key_bits") or kw_bits
    integ = _integ(t)
    prf = None
    if (p := t.str("prf")) is not None:
        prf = parse_prf_name(p) or _swnames.prf_keyword(p)
        if prf is None:
            t.fail("prf", f"unknown PRF {p!r} (expected e.g. PRF_HMAC_SHA2_256 or prfsha256)")
    sk_ei, sk_er = t.hex("sk_ei", required=True), t.hex("sk_er", required=True)
    bits = _check_len(t, "sk_ei", sk_ei, encr, bits)
    _check_len(t, "sk_er", sk_er, encr, bits)
    sk_ai, sk_ar = t.hex("sk_ai"), t.hex("sk_ar")
    _check_integ(t, "sk_ai", sk_ai, integ)
    _check_integ(t, "sk_ar", sk_ar, integ)
    return IkeSaKeys(
        spi_i=t.hex("spi_i", required=True, size=8),
        spi_r=t.hex("spi_r", required=True, size=8),
        encr=encr,
        sk_ei=SecretBytes(sk_ei),
        sk_er=SecretBytes(sk_er),
        integ=integ,
        sk_ai=SecretBytes(sk_ai),
        sk_ar=SecretBytes(sk_ar),
        encr_key_bits=bits,
        prf=prf,
        sk_d=SecretBytes(t.hex("sk_d")),
        sk_pi=SecretBytes(t.hex("sk_pi")),
        sk_pr=SecretBytes(t.hex("sk_pr")),
        source=t.str("source") or where(t.name, t.line),
    )


def _ikev1(t: _Table) -> IkeV1Keys:
    encr = hash_alg = None
    if (e := t.str("encr")) is not None and (encr := parse_v1_encr_name(e)) is None:
        names = [m.name for m in V1EncrAlg]
        t.fail("encr", f"unknown IKEv1 encryption algorithm {e!r} (expected one of {expected(names)})")
    if (h := t.str("hash")) is not None and (hash_alg := parse_v1_hash_name(h)) is None:
        t.fail(
            "hash",
            f"unknown IKEv1 hash algorithm {h!r} (expected one of {expected([m.name for m in V1HashAlg])})",
        )
    key = t.hex("key", required=True)
    if not key:
        t.fail("key", "key (RFC 2409 Ka) must not be empty")
    cookie_r = t.hex("cookie_r", size=8) if t.str("cookie_r") else None
    return IkeV1Keys(
        cookie_i=t.hex("cookie_i", required=True, size=8),
        encr_key=SecretBytes(key),
        cookie_r=cookie_r,
        encr=encr,
        encr_key_bits=t.int("key_bits"),
        hash_alg=hash_alg,
        skeyid_a=SecretBytes(t.hex("skeyid_a")),
        skeyid_d=SecretBytes(t.hex("skeyid_d")),
        source=t.str("source") or where(t.name, t.line),
    )


def _child(t: _Table) -> ChildSaKeys:
    spi_v = t.data.get("spi")
    if isinstance(spi_v, int) and not isinstance(spi_v, bool):
        spi = spi_v
    else:
        s = t.str("spi", required=True)
        assert s is not None
        try:
            spi = ANY_SPI if s.strip() == "*" else int(s, 0)
        except ValueError:
            t.fail("spi", f'spi {s!r} is not a number (write "0x1234abcd", or "*" for any SPI)')
    # Only "*" means any SPI: a -1 (ANY_SPI's internal value) written as a number is an error,
    # not a silent wildcard.
    wildcard = isinstance(spi_v, str) and spi_v.strip() == "*"
    if not wildcard and not 0 <= spi <= 0xFFFFFFFF:
        t.fail("spi", f'spi {spi} is outside 0..0xffffffff (a 32-bit SPI; "*" for any SPI)')
    if t.kind == "esp":
        encr, kw_bits = _encr(t)
        key = t.hex("key", required=encr != EncrId.ENCR_NULL)
        bits = _check_len(t, "key", key, encr, t.int("key_bits") or kw_bits)
    else:
        encr, key, bits = int(EncrId.ENCR_NULL), b"", None
    integ = _integ(t)
    if t.kind == "ah" and integ == IntegId.NONE:
        t.fail("integ", "an AH SA needs an integrity algorithm")
    integ_key = t.hex("integ_key")
    _check_integ(t, "integ_key", integ_key, integ)
    mode = t.str("mode")
    if mode is not None and mode not in _MODES:
        t.fail("mode", f"mode {mode!r} (expected tunnel, transport or beet)")
    ports = (t.int("encap_sport"), t.int("encap_dport")) if t.kind == "esp" else (None, None)
    if (ports[0] is None) != (ports[1] is None) or any(p is not None and not 0 < p < 65536 for p in ports):
        t.fail("encap_sport", "ESP-in-UDP needs both encap_sport and encap_dport (1-65535)")
    return ChildSaKeys(
        spi=spi,
        encr=encr,
        encr_key=SecretBytes(key),
        integ=integ,
        integ_key=SecretBytes(integ_key),
        protocol=t.kind,
        src=t.str("src"),
        dst=t.str("dst"),
        encr_key_bits=bits,
        esn=t.bool("esn"),
        esn_high=t.int("esn_high"),
        mode=mode,
        source=t.str("source") or where(t.name, t.line),
        encap=(ports[0], ports[1]) if ports[0] is not None and ports[1] is not None else None,
    )


def looks_like_keyfile(text: str) -> bool:
    return re.search(r"^\s*\[\[\s*(ike|ikev1|esp|ah)\s*\]\]", text, re.MULTILINE) is not None


def parse_keyfile(text: str, *, name: str = "keys.toml") -> ParseResult:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column \d+\)", msg)
        line = int(m.group(1)) if m else None
        raise KeyFileError(name, line, "not valid TOML: " + re.sub(r"\s*\(at line.*\)$", "", msg)) from None
    res = ParseResult(format="toml")
    readers = {"ike": _ike, "ikev1": _ikev1, "esp": _child, "ah": _child}
    for key, value in doc.items():
        if key in _TOP_LEVEL:
            continue
        if key not in readers or not isinstance(value, list):
            raise KeyFileError(
                name, None, f"unknown table {key!r} (expected [[ike]], [[ikev1]], [[esp]] or [[ah]])"
            )
        for i, entry in enumerate(value):
            if not isinstance(entry, dict):
                raise KeyFileError(
                    name, _locate(text, key, i), f"{key} must be a [[{key}]] table, got {entry!r}"
                )
            res.keys.append(readers[key](_Table(key, i, entry, text, name)))
    return res


# ------------------------------------------------------------------------------------ writing


def _q(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(c if 0x20 <= ord(c) < 0x7F else f"\\u{ord(c):04x}" for c in out)
    return f'"{out}"'


def _entry(kind: str, pairs: list[tuple[str, object]]) -> str:
    lines = [f"[[{kind}]]"]
    for key, v in pairs:
        if v is None:
            continue
        if isinstance(v, bool):
            val = "true" if v else "false"
        elif isinstance(v, int):
            val = str(v)
        else:
            val = _q(str(v))
        lines.append(f"{key} = {val}")
    return "\n".join(lines) + "\n"


def format_keyfile(items: Iterable[AnyKeys]) -> str:
    """The TOML text for ``items`` (IKE SAs first, then IKEv1, then ESP/AH)."""
    parts = [
        "# ipsecdiag key file (see docs/keys.md). It holds secret keys: keep it private.\n"
        'format = "ipsecdiag-keys-1"\n'
    ]
    order = sorted(
        items, key=lambda k: 0 if isinstance(k, IkeSaKeys) else 1 if isinstance(k, IkeV1Keys) else 2
    )
    for k in order:
        if isinstance(k, IkeSaKeys):
            parts.append(
                _entry(
                    "ike",
                    [
                        ("spi_i", k.spi_i.hex()),
                        ("spi_r", k.spi_r.hex()),
                        ("encr", encr_name(k.encr)),
                        ("key_bits", k.encr_key_bits),
                        ("sk_ei", k.sk_ei.hex()),
                        ("sk_er", k.sk_er.hex()),
                        ("integ", integ_name(k.integ)),
                        ("sk_ai", k.sk_ai.hex() or None),
                        ("sk_ar", k.sk_ar.hex() or None),
                        ("prf", prf_name(k.prf) if k.prf is not None else None),
                        ("sk_d", k.sk_d.hex() or None),
                        ("sk_pi", k.sk_pi.hex() or None),
                        ("sk_pr", k.sk_pr.hex() or None),
                        ("source", k.source or None),
                    ],
                )
            )
        elif isinstance(k, IkeV1Keys):
            parts.append(
                _entry(
                    "ikev1",
                    [
                        ("cookie_i", k.cookie_i.hex()),
                        ("cookie_r", k.cookie_r.hex() if k.cookie_r else None),
                        ("encr", name_of(V1EncrAlg, k.encr) if k.encr is not None else None),
                        ("key_bits", k.encr_key_bits),
                        ("hash", name_of(V1HashAlg, k.hash_alg) if k.hash_alg is not None else None),
                        ("key", k.encr_key.hex()),
                        ("skeyid_a", k.skeyid_a.hex() or None),
                        ("skeyid_d", k.skeyid_d.hex() or None),
                        ("source", k.source or None),
                    ],
                )
            )
        else:
            esp = k.protocol == "esp"
            parts.append(
                _entry(
                    k.protocol,
                    [
                        ("spi", "*" if k.spi == ANY_SPI else f"0x{k.spi:08x}"),
                        ("src", k.src),
                        ("dst", k.dst),
                        ("encr", encr_name(k.encr) if esp else None),
                        ("key_bits", k.encr_key_bits if esp else None),
                        ("key", k.encr_key.hex() if esp else None),
                        ("integ", integ_name(k.integ)),
                        ("integ_key", k.integ_key.hex() or None),
                        ("esn", k.esn),
                        ("esn_high", k.esn_high),
                        ("mode", k.mode),
                        ("encap_sport", k.encap[0] if k.encap else None),
                        ("encap_dport", k.encap[1] if k.encap else None),
                        ("source", k.source or None),
                    ],
                )
            )
    return "\n".join(parts)


def write_keyfile(store: KeyStore | Iterable[AnyKeys], path: str | Path) -> int:
    """Write ``store`` as an ipsecdiag TOML key file (mode 0600); returns the number of entries."""
    items = list(store)
    write_private(Path(path), format_keyfile(items))
    return len(items)
