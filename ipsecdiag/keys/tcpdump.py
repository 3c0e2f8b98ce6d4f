"""tcpdump ``-E`` secrets files (``-E file:…``), the format of tcpdump's esp-secrets.txt.

One SA per line (or comma separated)::

    0x12345678@192.1.2.45 3des-cbc-hmac96:0x4343…
    ikev2 I 0x<SPIi> 0x<SPIr> sha1:0x<SK_ai> aes128:0x<SK_ei>
    ikev2 R 0x<SPIi> 0x<SPIr> sha1:0x<SK_ar> aes128:0x<SK_er>

ESP: ``spi@destination algorithm:secret``; the algorithm is an OpenSSL cipher name with an
optional ``-cbc`` and ``-hmac96`` suffix (tcpdump strips both before ``EVP_get_cipherbyname``);
``-hmac96`` means a 12-octet ICV that tcpdump skips without a key (recorded here as the private
"unchecked 96-bit ICV" integrity id). A secret is hex after ``0x``, else its characters.
IKEv2: the ``ikev2 I|R`` lines Openswan/libreswan's pluto logs at ``plutodebug=crypt`` (the
``I`` line carries the initiator's SK_ai/SK_ei, the ``R`` line the responder's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ipsecdiag.keys.algorithms import AUTH_ANY, INTEG_KEY_BYTES, expected, key_bits_for
from ipsecdiag.keys.errors import KeyFileError, ParseResult, parse_hex, where
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId

# OpenSSL cipher names/aliases tcpdump accepts (after "-hmac96" and "-cbc" are stripped).
_ESP_CIPHERS: dict[str, int] = {
    "des": EncrId.ENCR_DES,
    "3des": EncrId.ENCR_3DES,
    "des3": EncrId.ENCR_3DES,
    "des-ede3": EncrId.ENCR_3DES,
    "aes": EncrId.ENCR_AES_CBC,
    "aes128": EncrId.ENCR_AES_CBC,
    "aes192": EncrId.ENCR_AES_CBC,
    "aes256": EncrId.ENCR_AES_CBC,
    "aes-128": EncrId.ENCR_AES_CBC,
    "aes-192": EncrId.ENCR_AES_CBC,
    "aes-256": EncrId.ENCR_AES_CBC,
    "blowfish": EncrId.ENCR_BLOWFISH,
    "bf": EncrId.ENCR_BLOWFISH,
    "cast": EncrId.ENCR_CAST,
    "cast5": EncrId.ENCR_CAST,
    "cast128": EncrId.ENCR_CAST,
    "none": EncrId.ENCR_NULL,
    "null": EncrId.ENCR_NULL,
}
# IKE line names (pluto's): integrity first, then encryption.
IKE_INTEG: dict[str, int] = {
    "none": IntegId.NONE,
    "md5": IntegId.AUTH_HMAC_MD5_96,
    "sha1": IntegId.AUTH_HMAC_SHA1_96,
    "sha": IntegId.AUTH_HMAC_SHA1_96,
    "sha256": IntegId.AUTH_HMAC_SHA2_256_128,
    "sha2_256": IntegId.AUTH_HMAC_SHA2_256_128,
    "sha384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha2_384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha512": IntegId.AUTH_HMAC_SHA2_512_256,
    "sha2_512": IntegId.AUTH_HMAC_SHA2_512_256,
    "aes_xcbc": IntegId.AUTH_AES_XCBC_96,
}
_IKE_ENCR = re.compile(r"^(aes|aes_cbc|3des|3des_cbc|des|aes_ctr)_?(\d+)?$")
_IKE_ENCR_BASE = {
    "aes": EncrId.ENCR_AES_CBC,
    "aes_ctr": EncrId.ENCR_AES_CTR,
    "3des": EncrId.ENCR_3DES,
    "des": EncrId.ENCR_DES,
}
_IKE_LINE = re.compile(r"^ikev2 ([IR]) (0x[0-9a-fA-F]{16}) (0x[0-9a-fA-F]{16}) (\S+):(\S*) (\S+):(\S*)\s*$")
_ESP_ENTRY = re.compile(r"^(?:(\S+)@(\S+)\s+)?([\w.-]+):(\S*)$")


@dataclass
class IkeHalf:
    """One ``ikev2 I|R`` line."""

    role: str
    spi_i: bytes
    spi_r: bytes
    integ: int
    integ_key: bytes
    encr: int
    encr_key: bytes
    line: int


def parse_ike_line(line: str, *, name: str, no: int) -> IkeHalf | None:
    """Parse ``ikev2 I|R 0xSPIi 0xSPIr integ:0xkey encr:0xkey``; None if the line is not one."""
    m = _IKE_LINE.match(line.strip())
    if not m:
        return None
    role, spi_i, spi_r, a_name, a_key, e_name, e_key = m.groups()
    a = IKE_INTEG.get(a_name.lower())
    if a is None:
        raise KeyFileError(
            name, no, f"unknown integrity algorithm {a_name!r} (expected one of {expected(list(IKE_INTEG))})"
        )
    em = _IKE_ENCR.match(e_name.lower())
    if em is None:
        raise KeyFileError(
            name, no, f"unknown encryption algorithm {e_name!r} (expected aesNNN, 3des or des)"
        )
    encr = _IKE_ENCR_BASE[em.group(1).removesuffix("_cbc")]
    return IkeHalf(
        role,
        bytes.fromhex(spi_i[2:]),
        bytes.fromhex(spi_r[2:]),
        int(a),
        _secret(a_key, name=name, no=no, what="integrity key"),
        int(encr),
        _secret(e_key, name=name, no=no, what="encryption key"),
        no,
    )


def combine_ike(halves: list[IkeHalf], *, name: str, res: ParseResult) -> None:
    """Pair ``I`` and ``R`` lines of the same SPIs into IkeSaKeys (unpaired ones are warned about)."""
    pairs: dict[tuple[bytes, bytes], dict[str, IkeHalf]] = {}
    for h in halves:
        pairs.setdefault((h.spi_i, h.spi_r), {})[h.role] = h
    for (spi_i, spi_r), sides in pairs.items():
        i, r = sides.get("I"), sides.get("R")
        if i is None or r is None:
            h = i or r
            assert h is not None
            res.warnings.append(
                f"{where(name, h.line)}: only the {h.role} half of IKE SA {spi_i.hex()}/{spi_r.hex()}"
            )
            continue
        need = INTEG_KEY_BYTES.get(i.integ, 0)
        if len(i.integ_key) < need or len(r.integ_key) < need:
            res.warnings.append(
                f"{where(name, i.line)}: integrity keys of IKE SA {spi_i.hex()} are shorter than {need} octets "
                "(pluto cuts long keys); skipped"
            )
            continue
        res.keys.append(
            IkeSaKeys(
                spi_i=spi_i,
                spi_r=spi_r,
                encr=i.encr,
                sk_ei=SecretBytes(i.encr_key),
                sk_er=SecretBytes(r.encr_key),
                integ=i.integ,
                sk_ai=SecretBytes(i.integ_key),
                sk_ar=SecretBytes(r.integ_key),
                encr_key_bits=key_bits_for(i.encr, len(i.encr_key)),
                source=where(name, i.line),
            )
        )


def _secret(text: str, *, name: str, no: int, what: str) -> bytes:
    if text[:2].lower() == "0x":
        return parse_hex(text, name=name, line_no=no, what=what)
    return text.encode("utf-8")


def looks_like_tcpdump_secrets(text: str) -> bool:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return (
        bool(lines)
        and all(
            _IKE_LINE.match(ln) or all(_ESP_ENTRY.match(e.strip()) for e in ln.split(",") if e.strip())
            for ln in lines
        )
        and any(_IKE_LINE.match(ln) or "@" in ln for ln in lines)
    )


def parse_tcpdump_secrets(text: str, *, name: str = "esp-secrets.txt") -> ParseResult:
    res = ParseResult(format="tcpdump-esp-secrets")
    halves: list[IkeHalf] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("ikev2 "):
            half = parse_ike_line(line, name=name, no=no)
            if half is None:
                raise KeyFileError(
                    name, no, "malformed ikev2 line (expected: ikev2 I|R 0xSPIi 0xSPIr integ:key encr:key)"
                )
            halves.append(half)
            continue
        for entry in filter(None, (e.strip() for e in line.split(","))):
            k = _esp_entry(entry, name=name, no=no, res=res)
            if k is not None:
                res.keys.append(k)
    combine_ike(halves, name=name, res=res)
    return res


def _esp_entry(entry: str, *, name: str, no: int, res: ParseResult) -> ChildSaKeys | None:
    m = _ESP_ENTRY.match(entry)
    if not m:
        raise KeyFileError(name, no, f"cannot read {entry!r} (expected spi@address algorithm:secret)")
    spi_s, addr, alg, secret = m.groups()
    if spi_s is None:
        res.warnings.append(f"{where(name, no)}: secret without spi@address applies to any SA; skipped")
        return None
    try:
        spi = int(spi_s, 0)
    except ValueError:
        raise KeyFileError(name, no, f"SPI {spi_s!r} is not a number") from None
    if not 0 <= spi <= 0xFFFFFFFF:
        raise KeyFileError(name, no, f"SPI {spi_s!r} does not fit in 32 bits")
    cipher = alg.lower()
    integ = IntegId.NONE
    if cipher.endswith("-hmac96"):
        cipher, integ = cipher.removesuffix("-hmac96"), AUTH_ANY[96]
    cipher = cipher.removesuffix("-cbc")
    encr = _ESP_CIPHERS.get(cipher)
    if encr is None:
        raise KeyFileError(
            name,
            no,
            f"unknown encryption algorithm {alg!r} (expected one of {expected(sorted(_ESP_CIPHERS))})",
        )
    key = _secret(secret, name=name, no=no, what="secret")
    return ChildSaKeys(
        spi=spi,
        encr=int(encr),
        encr_key=SecretBytes(key),
        integ=int(integ),
        protocol="esp",
        dst=addr,
        encr_key_bits=key_bits_for(encr, len(key)),
        source=where(name, no),
    )
