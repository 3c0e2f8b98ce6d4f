"""Wireshark's key tables: ``ikev2_decryption_table``, ``ikev1_decryption_table`` and ``esp_sa``.

Field layouts and algorithm strings are those of Wireshark 4.0's packet-isakmp.c
(``vs_ikev2_encr_algs``, ``vs_ikev2_auth_algs``, the IKEv1/IKEv2 UAT fields) and packet-ipsec.c
(``esp_encryption_type_vals``, ``esp_authentication_type_vals``, the ``esp_sa`` fields). Newer
Wireshark adds ESP strings (ChaCha20-Poly1305, the RFC 8750 IIV variants), which are read, and an
``esp_sa`` layout with two more fields (sequence number length and ESN high bits), which is read
and written on request (``esn_layout=True``).

* IKEv2 rows: ``ispi,rspi,sk_ei,sk_er,"encr",sk_ai,sk_ar,"integ"``; byte fields unquoted hex.
  Wireshark checks every key length against the algorithm, and so do we.
* IKEv1 rows: ``icookie,key`` (RFC 2409 Appendix B ``Ka``).
* ``esp_sa`` rows: ``"IPv4"|"IPv6","src","dst","spi","encr","key","auth","key"``; addresses may be
  ``*``, partial wildcards (``10.*.*.1``) or prefixes; the SPI is parsed with C ``strtoul(s, 0)``
  (``0x..``, decimal) or is a wildcard; a key is hex after ``0x``, else the ASCII characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ipsecdiag.keys import _uat
from ipsecdiag.keys._files import make_private_dir, write_private
from ipsecdiag.keys.algorithms import (
    AEAD_ENCR,
    AUTH_ANY,
    AUTH_HMAC_RIPEMD160_96,
    AUTH_HMAC_SHA2_256_96,
    ENCR_TWOFISH_CBC,
    INTEG_KEY_BYTES,
    PRIVATE_BASE,
    encr_name,
    expected,
    integ_name,
    key_bits_for,
    key_len_for,
    unchecked_icv_bits,
)
from ipsecdiag.keys.errors import KeyFileError, ParseResult, parse_hex, where
from ipsecdiag.keys.model import ANY_SPI, ChildSaKeys, IkeSaKeys, IkeV1Keys, KeyStore, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId

IKEV2_TABLE = "ikev2_decryption_table"
IKEV1_TABLE = "ikev1_decryption_table"
ESP_TABLE = "esp_sa"

_E = EncrId
_I = IntegId
_T = TypeVar("_T")

IKEV2_ENCR: dict[str, tuple[int, int | None]] = {
    "NULL [RFC2410]": (_E.ENCR_NULL, None),
    "3DES [RFC2451]": (_E.ENCR_3DES, 192),
    **{f"AES-CBC-{b} [RFC3602]": (_E.ENCR_AES_CBC, b) for b in (128, 192, 256)},
    **{f"AES-CTR-{b} [RFC5930]": (_E.ENCR_AES_CTR, b) for b in (128, 192, 256)},
    **{
        f"AES-{mode}-{b} with {icv} octet ICV [RFC5282]": (alg, b)
        for mode, table in (
            ("GCM", {8: _E.ENCR_AES_GCM_8, 12: _E.ENCR_AES_GCM_12, 16: _E.ENCR_AES_GCM_16}),
            ("CCM", {8: _E.ENCR_AES_CCM_8, 12: _E.ENCR_AES_CCM_12, 16: _E.ENCR_AES_CCM_16}),
        )
        for icv, alg in table.items()
        for b in (128, 192, 256)
    },
}
_IKEV2_ENCR_OUT = {v: k for k, v in IKEV2_ENCR.items()}

IKEV2_INTEG: dict[str, int] = {
    "NONE [RFC4306]": _I.NONE,
    "HMAC_MD5_96 [RFC2403]": _I.AUTH_HMAC_MD5_96,
    "HMAC_SHA1_96 [RFC2404]": _I.AUTH_HMAC_SHA1_96,
    "HMAC_MD5_128 [RFC4595]": _I.AUTH_HMAC_MD5_128,
    "HMAC_SHA1_160 [RFC4595]": _I.AUTH_HMAC_SHA1_160,
    "HMAC_SHA2_256_96 [draft-ietf-ipsec-ciph-sha-256-00]": AUTH_HMAC_SHA2_256_96,
    "HMAC_SHA2_256_128 [RFC4868]": _I.AUTH_HMAC_SHA2_256_128,
    "HMAC_SHA2_384_192 [RFC4868]": _I.AUTH_HMAC_SHA2_384_192,
    "HMAC_SHA2_512_256 [RFC4868]": _I.AUTH_HMAC_SHA2_512_256,
    **{f"ANY {b}-bits of Authentication [No Checking]": v for b, v in AUTH_ANY.items()},
}
_IKEV2_INTEG_OUT = {v: k for k, v in IKEV2_INTEG.items()}

ESP_ENCR: dict[str, int] = {
    "NULL": _E.ENCR_NULL,
    "TripleDES-CBC [RFC2451]": _E.ENCR_3DES,
    "AES-CBC [RFC3602]": _E.ENCR_AES_CBC,
    "AES-CTR [RFC3686]": _E.ENCR_AES_CTR,
    "DES-CBC [RFC2405]": _E.ENCR_DES,
    "CAST5-CBC [RFC2144]": _E.ENCR_CAST,
    "BLOWFISH-CBC [RFC2451]": _E.ENCR_BLOWFISH,
    "TWOFISH-CBC": ENCR_TWOFISH_CBC,
    "AES-GCM with 8 octet ICV [RFC4106]": _E.ENCR_AES_GCM_8,
    "AES-GCM with 12 octet ICV [RFC4106]": _E.ENCR_AES_GCM_12,
    "AES-GCM with 16 octet ICV [RFC4106]": _E.ENCR_AES_GCM_16,
}
# Read-only strings: the deprecated GCM entry (ICV length taken from the "ANY n bit" auth
# column) and those of Wireshark versions after 4.0.
_ESP_GCM_NO_ICV = "AES-GCM [RFC4106]"
ESP_ENCR_NEWER: dict[str, int] = {
    "AES-GCM with IIV and 16 octet ICV [RFC4106 & RFC8750]": _E.ENCR_AES_GCM_16_IIV,
    "ChaCha20 with Poly1305 [RFC7634]": _E.ENCR_CHACHA20_POLY1305,
    "ChaCha20 with Poly1305 and IIV [RFC7634 & RFC8750]": _E.ENCR_CHACHA20_POLY1305_IIV,
}
_ESP_ENCR_OUT = {v: k for k, v in ESP_ENCR.items()}
_ESP_ENCR_OUT_NEWER = {v: k for k, v in ESP_ENCR_NEWER.items()}

ESP_AUTH: dict[str, int] = {
    "NULL": _I.NONE,
    "HMAC-SHA-1-96 [RFC2404]": _I.AUTH_HMAC_SHA1_96,
    "HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]": AUTH_HMAC_SHA2_256_96,
    "HMAC-SHA-256-128 [RFC4868]": _I.AUTH_HMAC_SHA2_256_128,
    "HMAC-SHA-384-192 [RFC4868]": _I.AUTH_HMAC_SHA2_384_192,
    "HMAC-SHA-512-256 [RFC4868]": _I.AUTH_HMAC_SHA2_512_256,
    "HMAC-MD5-96 [RFC2403]": _I.AUTH_HMAC_MD5_96,
    "MAC-RIPEMD-160-96 [RFC2857]": AUTH_HMAC_RIPEMD160_96,
    **{f"ANY {b} bit authentication [no checking]": AUTH_ANY[b] for b in (64, 96, 128, 192, 256)},
}
_ESP_AUTH_OUT = {v: k for k, v in ESP_AUTH.items()}

# Integrity Wireshark cannot verify but whose ICV length it can skip (RFC 3566, RFC 4494).
_UNCHECKABLE_96 = {_I.AUTH_AES_XCBC_96, _I.AUTH_AES_CMAC_96}
_ESP_KEY_BYTES: dict[int, tuple[int, ...]] = {
    _E.ENCR_AES_CBC: (16, 24, 32),
    _E.ENCR_AES_CTR: (20, 28, 36),
    _E.ENCR_AES_GCM_8: (20, 28, 36),
    _E.ENCR_AES_GCM_12: (20, 28, 36),
    _E.ENCR_AES_GCM_16: (20, 28, 36),
    _E.ENCR_AES_GCM_16_IIV: (20, 28, 36),
    _E.ENCR_3DES: (24,),
    _E.ENCR_DES: (8,),
    _E.ENCR_CAST: (16,),
    ENCR_TWOFISH_CBC: (16, 32),
    _E.ENCR_CHACHA20_POLY1305: (36,),
    _E.ENCR_CHACHA20_POLY1305_IIV: (36,),
}
_SN_FIELD = {"32-bit": False, "64-bit": True}
_FAMILIES = ("IPv4", "IPv6", "Any")


@dataclass
class WriteSummary:
    """What :func:`write_wireshark_dir` wrote: files, rows per table and skipped records."""

    directory: Path
    files: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------ reading


def sniff(text: str) -> str | None:
    """Which table ``text`` looks like (by its first record), or None."""
    for no, line in _uat.records(text):
        try:
            fields = _uat.split(line, name="", line_no=no)
        except KeyFileError:
            return None
        first, quoted = fields[0]
        if quoted and first in _FAMILIES and len(fields) in (8, 10):
            return ESP_TABLE
        if not quoted and _is_hex(first, 16):
            if len(fields) == 2:
                return IKEV1_TABLE
            if len(fields) == 8 and _is_hex(fields[1][0], 16):
                return IKEV2_TABLE
        return None
    return None


def _is_hex(s: str, n: int) -> bool:
    return len(s) == n and all(c in "0123456789abcdefABCDEF" for c in s)


def _buffer(value: str, quoted: bool, *, name: str, no: int, what: str) -> bytes:
    # A quoted byte field is the raw characters (uat.c), not hex.
    return _uat.raw_bytes(value) if quoted else parse_hex(value, name=name, line_no=no, what=what)


def _fields(line: str, n: tuple[int, ...], *, name: str, no: int, table: str) -> list[tuple[str, bool]]:
    fields = _uat.split(line, name=name, line_no=no)
    if len(fields) not in n:
        want = " or ".join(str(x) for x in n)
        raise KeyFileError(name, no, f"{table} row has {len(fields)} fields, expected {want}")
    return fields


def _algorithm(table: dict[str, _T], text: str, what: str, *, name: str, no: int) -> _T:
    """The table entry for an algorithm name as Wireshark's UAT spells it."""
    try:
        return table[text]
    except KeyError:
        raise KeyFileError(
            name, no, f"unknown {what} algorithm {text!r} (expected one of {expected(list(table))})"
        ) from None


def parse_ikev2_table(text: str, *, name: str = IKEV2_TABLE) -> ParseResult:
    res = ParseResult(format=IKEV2_TABLE)
    for no, line in _uat.records(text):
        f = _fields(line, (8,), name=name, no=no, table=IKEV2_TABLE)
        spi_i = _buffer(*f[0], name=name, no=no, what="initiator's SPI")
        spi_r = _buffer(*f[1], name=name, no=no, what="responder's SPI")
        for label, spi, quoted in (("initiator's SPI", spi_i, f[0][1]), ("responder's SPI", spi_r, f[1][1])):
            if len(spi) != 8:
                hint = " (quoted, so Wireshark takes the characters: write it unquoted)" if quoted else ""
                raise KeyFileError(name, no, f"{label} must be 8 octets, got {len(spi)}{hint}")
        encr_s, integ_s = f[4][0], f[7][0]
        encr, bits = _algorithm(IKEV2_ENCR, encr_s, "encryption", name=name, no=no)
        integ = _algorithm(IKEV2_INTEG, integ_s, "integrity", name=name, no=no)
        keys = {}
        for idx, label in ((2, "SK_ei"), (3, "SK_er"), (5, "SK_ai"), (6, "SK_ar")):
            keys[label] = _buffer(*f[idx], name=name, no=no, what=label)
        need_e = key_len_for(encr, bits) or 0
        need_a = INTEG_KEY_BYTES.get(integ, 0)
        for label, need, alg in (("SK_ei", need_e, encr_s), ("SK_er", need_e, encr_s)) + (
            ("SK_ai", need_a, integ_s),
            ("SK_ar", need_a, integ_s),
        ):
            if len(keys[label]) != need:
                raise KeyFileError(name, no, f"{label} is {len(keys[label])} octets, {alg} needs {need}")
        res.keys.append(
            IkeSaKeys(
                spi_i=spi_i,
                spi_r=spi_r,
                encr=int(encr),
                sk_ei=SecretBytes(keys["SK_ei"]),
                sk_er=SecretBytes(keys["SK_er"]),
                integ=int(integ),
                sk_ai=SecretBytes(keys["SK_ai"]),
                sk_ar=SecretBytes(keys["SK_ar"]),
                encr_key_bits=bits,
                source=where(name, no),
            )
        )
    return res


def parse_ikev1_table(text: str, *, name: str = IKEV1_TABLE) -> ParseResult:
    res = ParseResult(format=IKEV1_TABLE)
    for no, line in _uat.records(text):
        f = _fields(line, (2,), name=name, no=no, table=IKEV1_TABLE)
        cookie = _buffer(*f[0], name=name, no=no, what="initiator's cookie")
        key = _buffer(*f[1], name=name, no=no, what="encryption key")
        if len(cookie) != 8:
            raise KeyFileError(name, no, f"initiator's cookie must be 8 octets, got {len(cookie)}")
        if not key or len(key) > 256:
            raise KeyFileError(name, no, f"encryption key must be 1..256 octets, got {len(key)}")
        res.keys.append(IkeV1Keys(cookie_i=cookie, encr_key=SecretBytes(key), source=where(name, no)))
    return res


def parse_esp_sa(text: str, *, name: str = ESP_TABLE) -> ParseResult:
    res = ParseResult(format=ESP_TABLE)
    for no, line in _uat.records(text):
        f = [v for v, _q in _fields(line, (8, 10), name=name, no=no, table=ESP_TABLE)]
        family, src, dst, spi_s, encr_s, ekey_s, auth_s, akey_s = f[:8]
        if family not in _FAMILIES:
            raise KeyFileError(name, no, f"unknown protocol {family!r} (expected IPv4, IPv6 or Any)")
        spi = _spi(spi_s, name=name, no=no)
        if spi is None:
            spi = ANY_SPI  # Wireshark matches such rows by address for every SPI
        integ = _algorithm(ESP_AUTH, auth_s, "authentication", name=name, no=no)
        if encr_s == _ESP_GCM_NO_ICV:
            # Deprecated entry: the ICV length is whatever "ANY n bit" says, 16 octets otherwise.
            bits = unchecked_icv_bits(integ)
            encr = {64: _E.ENCR_AES_GCM_8, 96: _E.ENCR_AES_GCM_12}.get(bits or 0, _E.ENCR_AES_GCM_16)
            integ = _I.NONE
        else:
            encr = ESP_ENCR.get(encr_s) or ESP_ENCR_NEWER.get(encr_s)
        if encr is None:
            names = [*ESP_ENCR, _ESP_GCM_NO_ICV, *ESP_ENCR_NEWER]
            raise KeyFileError(
                name, no, f"unknown encryption algorithm {encr_s!r} (expected one of {expected(names)})"
            )
        ekey = _esp_key(ekey_s, name=name, no=no, what="encryption key")
        akey = _esp_key(akey_s, name=name, no=no, what="authentication key")
        sizes = _ESP_KEY_BYTES.get(encr)
        if sizes is not None and len(ekey) not in sizes:
            raise KeyFileError(
                name, no, f"encryption key is {len(ekey)} octets, {encr_s} needs {'/'.join(map(str, sizes))}"
            )
        if encr in AEAD_ENCR and integ != _I.NONE:
            raise KeyFileError(name, no, f"{encr_s} carries its own ICV: authentication must be NULL")
        esn = esn_high = None
        if len(f) == 10:
            if f[8] not in _SN_FIELD:
                raise KeyFileError(name, no, f"sequence number field {f[8]!r} (expected 32-bit or 64-bit)")
            esn = _SN_FIELD[f[8]]
            esn_high = _esn_high(f[9], name=name, no=no) if esn else None
        res.keys.append(
            ChildSaKeys(
                spi=spi,
                encr=int(encr),
                encr_key=SecretBytes(ekey),
                integ=int(integ),
                integ_key=SecretBytes(akey),
                protocol="esp",
                src=None if src in ("", "*") else src,
                dst=None if dst in ("", "*") else dst,
                encr_key_bits=key_bits_for(encr, len(ekey)),
                esn=esn,
                esn_high=esn_high,
                source=where(name, no),
                # Private ids (no IANA number) keep the UAT's own name for the report.
                encr_label=encr_s if encr >= PRIVATE_BASE else "",
                integ_label=auth_s if integ >= PRIVATE_BASE else "",
            )
        )
    return res


def _spi(text: str, *, name: str, no: int) -> int | None:
    """C ``strtoul(text, NULL, 0)`` as packet-ipsec.c uses; None for wildcards."""
    t = text.strip()
    if "*" in t:
        return None
    try:
        if t[:2].lower() == "0x":
            v = int(t[2:], 16)
        elif len(t) > 1 and t.startswith("0"):
            v = int(t, 8)
        else:
            v = int(t, 10)
    except ValueError:
        raise KeyFileError(name, no, f"SPI {text!r} is not a number (0x… hex or decimal)") from None
    if not 0 <= v <= 0xFFFFFFFF:
        raise KeyFileError(name, no, f"SPI {text!r} does not fit in 32 bits")
    return v


def _esp_key(text: str, *, name: str, no: int, what: str) -> bytes:
    # compute_ascii_key(): "0x…" is hex, anything else the characters themselves. An odd
    # number of hex digits reads as if a leading 0 were there, as Wireshark does.
    if text[:2].lower() == "0x":
        digits = text[2:].strip()
        if len(digits) % 2 and all(c in "0123456789abcdefABCDEF" for c in digits):
            text = "0x0" + digits
        return parse_hex(text, name=name, line_no=no, what=what)
    return _uat.raw_bytes(text)


def _esn_high(text: str, *, name: str, no: int) -> int:
    t = text.strip().lower()
    t = t[2:] if t.startswith("0x") else t
    try:
        v = int(t or "0", 16)
    except ValueError:
        raise KeyFileError(name, no, f"ESN high bits {text!r} are not hex") from None
    if v > 0xFFFFFFFF:
        raise KeyFileError(name, no, f"ESN high bits {text!r} do not fit in 32 bits")
    return v


def read_wireshark_dir(path: str | Path) -> ParseResult:
    """Load the three tables from a Wireshark configuration directory (missing ones are skipped)."""
    d = Path(path)
    res = ParseResult(format="wireshark-dir")
    readers = ((IKEV2_TABLE, parse_ikev2_table), (IKEV1_TABLE, parse_ikev1_table), (ESP_TABLE, parse_esp_sa))
    for fname, reader in readers:
        p = d / fname
        if p.is_file():
            res.extend(reader(p.read_text(encoding="utf-8", errors="replace"), name=str(p)))
    return res


# ------------------------------------------------------------------------------------ writing


def format_ikev2_table(items: Iterable[IkeSaKeys]) -> tuple[list[str], list[str]]:
    """Rows for ``ikev2_decryption_table`` plus a warning for every SA Wireshark cannot take."""
    rows: list[str] = []
    warnings: list[str] = []
    for k in items:
        label = f"IKE SA {k.spi_i.hex()}/{k.spi_r.hex()}"
        bits = k.encr_key_bits if k.encr_key_bits is not None else key_bits_for(k.encr, len(k.sk_ei))
        if k.encr == _E.ENCR_3DES:
            bits = 192
        encr_s = _IKEV2_ENCR_OUT.get((k.encr, None if k.encr == _E.ENCR_NULL else bits))
        if encr_s is None:
            warnings.append(
                f"{label}: Wireshark has no IKEv2 entry for {encr_name(k.encr)} ({bits} bits); skipped"
            )
            continue
        integ, ai, ar = k.integ, k.sk_ai.hex(), k.sk_ar.hex()
        if integ in _UNCHECKABLE_96:
            warnings.append(
                f"{label}: Wireshark cannot check {integ_name(integ)}; written as unchecked 96-bit ICV"
            )
            integ, ai, ar = AUTH_ANY[96], "", ""
        integ_s = _IKEV2_INTEG_OUT.get(integ)
        if integ_s is None:
            warnings.append(f"{label}: Wireshark has no IKEv2 entry for {integ_name(integ)}; skipped")
            continue
        rows.append(
            ",".join(
                [k.spi_i.hex(), k.spi_r.hex(), k.sk_ei.hex(), k.sk_er.hex(), _uat.quote(encr_s), ai, ar]
                + [_uat.quote(integ_s)]
            )
        )
    return rows, warnings


def format_ikev1_table(items: Iterable[IkeV1Keys]) -> tuple[list[str], list[str]]:
    return [f"{k.cookie_i.hex()},{k.encr_key.hex()}" for k in items], []


def format_esp_sa(
    items: Iterable[ChildSaKeys], *, esn_layout: bool = False, any_address: bool = False
) -> tuple[list[str], list[str]]:
    """``esp_sa`` rows. ``esn_layout`` adds the SN/ESN fields of newer Wireshark (not 4.0).

    Addresses are the key source's, except with ``any_address`` and for UDP-encapsulated SAs
    (``encap``: the source saw a NAT, RFC 3948): those rows get ``*``, since a NAT rewrites the
    addresses between capture points and Wireshark would match the row on one side only. The
    SPI alone then selects the row, as ipsecdiag itself matches SAs.
    """
    rows: list[str] = []
    warnings: list[str] = []
    for k in items:
        label = f"{k.protocol.upper()} SA " + ("*" if k.spi == ANY_SPI else f"0x{k.spi:08x}")
        if k.protocol != "esp":
            warnings.append(f"{label}: Wireshark has no key table for AH; skipped")
            continue
        encr_s = _ESP_ENCR_OUT.get(k.encr) or (_ESP_ENCR_OUT_NEWER.get(k.encr) if esn_layout else None)
        if encr_s is None:
            warnings.append(f"{label}: Wireshark 4.0 cannot decrypt {encr_name(k.encr)}; skipped")
            continue
        integ, akey = k.integ, k.integ_key.hex()
        if integ in _UNCHECKABLE_96:
            warnings.append(
                f"{label}: Wireshark cannot check {integ_name(integ)}; written as unchecked 96-bit ICV"
            )
            integ, akey = AUTH_ANY[96], ""
        auth_s = _ESP_AUTH_OUT.get(integ)
        if auth_s is None:
            warnings.append(f"{label}: Wireshark has no ESP entry for {integ_name(integ)}; skipped")
            continue
        if k.esn and not esn_layout and k.integ != _I.NONE:
            warnings.append(
                f"{label}: uses ESN, which Wireshark 4.0 leaves out of the ICV check (decryption works)"
            )
        ekey = "0x" + k.encr_key.hex() if k.encr_key else ""
        akey = "0x" + akey if akey else ""
        tail = [auth_s, akey]
        if esn_layout:
            tail += ["64-bit" if k.esn else "32-bit", f"0x{(k.esn_high or 0):08x}"]
        for family in _families(k, esn_layout):
            spi_s = "*" if k.spi == ANY_SPI else f"0x{k.spi:08x}"
            wild = any_address or k.encap is not None
            src, dst = ("*", "*") if wild else (k.src or "*", k.dst or "*")
            head = [family, src, dst, spi_s, encr_s, ekey]
            rows.append(",".join(_uat.quote(x) for x in head + tail))
    return rows, warnings


def _families(k: ChildSaKeys, esn_layout: bool) -> list[str]:
    addrs = [a for a in (k.src, k.dst) if a]
    if addrs:
        return ["IPv6" if ":" in addrs[0] else "IPv4"]
    # Wireshark 4.0 matches the family exactly: a wildcard SA needs one row per family.
    return ["Any"] if esn_layout else ["IPv4", "IPv6"]


_HEADER = (
    "# {table}: written by ipsecdiag for Wireshark/tshark (WIRESHARK_CONFIG_DIR or a profile).\n"
    "# It holds secret keys: keep it private.\n"
)
_PREFERENCES = (
    "# Wireshark preferences written by ipsecdiag: let the ESP dissector use esp_sa\n"
    "esp.enable_encryption_decode: TRUE\n"
    "esp.enable_authentication_check: TRUE\n"
)


def write_wireshark_dir(
    store: KeyStore, outdir: str | Path, *, esn_layout: bool = False, any_address: bool = False
) -> WriteSummary:
    """Write the tables that have rows into ``outdir`` (files 0600, a new directory 0700).

    Also writes ``preferences`` enabling ESP decryption when there are ESP rows and no
    ``preferences`` file exists yet (an existing profile's preferences are never touched).
    Records Wireshark cannot express are skipped and reported in ``warnings``.
    """
    out = Path(outdir)
    summary = WriteSummary(directory=out)
    items = list(store)
    tables = (
        (IKEV2_TABLE, format_ikev2_table([k for k in items if isinstance(k, IkeSaKeys)])),
        (IKEV1_TABLE, format_ikev1_table([k for k in items if isinstance(k, IkeV1Keys)])),
        (
            ESP_TABLE,
            format_esp_sa(
                [k for k in items if isinstance(k, ChildSaKeys)], esn_layout=esn_layout, any_address=any_address
            ),
        ),
    )
    make_private_dir(out)
    for table, (rows, warnings) in tables:
        summary.warnings.extend(warnings)
        summary.rows[table] = len(rows)
        if rows:
            path = out / table
            write_private(path, _HEADER.format(table=table) + "".join(r + "\n" for r in rows))
            summary.files[table] = path
    prefs = out / "preferences"
    if summary.rows[ESP_TABLE] and not prefs.exists():
        write_private(prefs, _PREFERENCES)
        summary.files["preferences"] = prefs
    return summary


__all__ = [
    "ESP_TABLE",
    "IKEV1_TABLE",
    "IKEV2_TABLE",
    "WriteSummary",
    "format_esp_sa",
    "format_ikev1_table",
    "format_ikev2_table",
    "parse_esp_sa",
    "parse_ikev1_table",
    "parse_ikev2_table",
    "read_wireshark_dir",
    "sniff",
    "write_wireshark_dir",
]
