"""Linux ``ip xfrm state`` output (also ``ip -s``/``-d``/``list``) in, and ``ip xfrm state add`` out.

One SA per block::

    src 10.99.1.2 dst 10.99.2.2
        proto esp spi 0xab9a3183 reqid 1 mode tunnel
        replay-window 0 flag af-unspec esn
        aead rfc4106(gcm(aes)) 0x9563…0a33 128
        encap type espinudp sport 4500 dport 4500 addr 0.0.0.0
        anti-replay esn context:
         seq-hi 0x0, seq 0x0, oseq-hi 0x0, oseq 0x14

``ip xfrm state add …`` commands (what ``keys convert --to xfrm`` writes, one SA per line,
shell quoting allowed) are read too, so an export reads back as the SAs it recreates.

Key material is the crypto API's: AEAD and counter-mode keys end with the salt/nonce (RFC 4106
§8.1, RFC 4309 §7.1, RFC 3686 §5.1, RFC 7634 §2), exactly as IKEv2 KEYMAT delivers them, so key
bits follow from the key length. ``auth`` without ``-trunc`` uses the kernel's default ICV length
(96 bits for hmac(sha256): the pre-RFC 4868 truncation). Lifetime and statistics lines are ignored.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from ipsecdiag.keys.algorithms import (
    AUTH_HMAC_RIPEMD160_96,
    AUTH_HMAC_SHA2_256_96,
    ENCR_TWOFISH_CBC,
    PRIVATE_BASE,
    encr_name,
    expected,
    integ_name,
    key_bits_for,
)
from ipsecdiag.keys.errors import KeyFileError, ParseResult, parse_hex, where
from ipsecdiag.keys.model import ANY_SPI, AnyKeys, ChildSaKeys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId

_E = EncrId
_I = IntegId

XFRM_ENC: dict[str, int] = {
    "cbc(aes)": _E.ENCR_AES_CBC,
    "cbc(des3_ede)": _E.ENCR_3DES,
    "cbc(des)": _E.ENCR_DES,
    "cbc(cast5)": _E.ENCR_CAST,
    "cbc(blowfish)": _E.ENCR_BLOWFISH,
    "cbc(twofish)": ENCR_TWOFISH_CBC,
    "cbc(camellia)": _E.ENCR_CAMELLIA_CBC,
    "rfc3686(ctr(aes))": _E.ENCR_AES_CTR,
    "ecb(cipher_null)": _E.ENCR_NULL,
    "cipher_null": _E.ENCR_NULL,
}
# AEAD name -> {ICV bits: transform}
XFRM_AEAD: dict[str, dict[int, int]] = {
    "rfc4106(gcm(aes))": {64: _E.ENCR_AES_GCM_8, 96: _E.ENCR_AES_GCM_12, 128: _E.ENCR_AES_GCM_16},
    "rfc4309(ccm(aes))": {64: _E.ENCR_AES_CCM_8, 96: _E.ENCR_AES_CCM_12, 128: _E.ENCR_AES_CCM_16},
    "rfc7539esp(chacha20,poly1305)": {128: _E.ENCR_CHACHA20_POLY1305},
    "rfc4543(gcm(aes))": {128: _E.ENCR_NULL_AUTH_AES_GMAC},
}
# auth name -> ({truncation bits: transform}, kernel default truncation)
XFRM_AUTH: dict[str, tuple[dict[int, int], int]] = {
    "hmac(md5)": ({96: _I.AUTH_HMAC_MD5_96, 128: _I.AUTH_HMAC_MD5_128}, 96),
    "hmac(sha1)": ({96: _I.AUTH_HMAC_SHA1_96, 160: _I.AUTH_HMAC_SHA1_160}, 96),
    "hmac(sha256)": ({96: AUTH_HMAC_SHA2_256_96, 128: _I.AUTH_HMAC_SHA2_256_128}, 96),
    "hmac(sha384)": ({192: _I.AUTH_HMAC_SHA2_384_192}, 192),
    "hmac(sha512)": ({256: _I.AUTH_HMAC_SHA2_512_256}, 256),
    "hmac(rmd160)": ({96: AUTH_HMAC_RIPEMD160_96}, 96),
    "xcbc(aes)": ({96: _I.AUTH_AES_XCBC_96}, 96),
    "cmac(aes)": ({96: _I.AUTH_AES_CMAC_96}, 96),
    "digest_null": ({0: _I.NONE}, 0),
}
_MODES = {"tunnel", "transport", "beet"}
_SRC_DST = re.compile(r"^src (\S+) dst (\S+)\s*$")
_HEXNUM = re.compile(r"\b(seq-hi|seq|oseq-hi|oseq)\s+(0x[0-9a-fA-F]+)")
_ADD = re.compile(r"^\s*(?:sudo\s+)?ip\s+(?:-\S+\s+)*xfrm\s+state\s+(?:add|update)\s")


@dataclass
class _Block:
    line: int
    src: str
    dst: str
    proto: str | None = None
    spi: int | None = None
    mode: str | None = None
    esn: bool = False
    encr: int | None = None
    encr_name: str = ""
    encr_key: bytes = b""
    integ: int = _I.NONE
    integ_name: str = ""
    integ_key: bytes = b""
    counters: dict[str, int] | None = None
    encap: tuple[int, int] | None = None


def looks_like_xfrm(text: str) -> bool:
    lines = text.splitlines()
    if any(_ADD.match(line) for line in lines):
        return True
    for i, line in enumerate(lines[:-1]):
        if _SRC_DST.match(line) and re.match(r"^\s+proto \w+ spi 0x", lines[i + 1]):
            return True
    return False


def parse_xfrm_state(text: str, *, name: str = "ip-xfrm-state") -> ParseResult:
    """ESP and AH SAs from ``ip [-s] [-d] xfrm state [list]`` output."""
    res = ParseResult(format="xfrm")
    blocks: list[_Block] = []
    cur: _Block | None = None
    in_esn_ctx = False
    for no, raw in enumerate(text.splitlines(), 1):
        if _ADD.match(raw):
            blocks.append(_add_command(raw, name=name, no=no))
            cur = None
            continue
        m = _SRC_DST.match(raw)
        if m:
            cur = _Block(no, m.group(1), m.group(2))
            blocks.append(cur)
            in_esn_ctx = False
            continue
        if cur is None or not raw.strip():
            continue
        tok = raw.split()
        head = tok[0]
        if head == "proto" and len(tok) >= 4 and tok[2] == "spi":
            cur.proto = tok[1]
            cur.spi = _int(tok[3], name=name, no=no, what="SPI")
            if not 0 <= cur.spi <= 0xFFFFFFFF:
                raise KeyFileError(name, no, f"SPI {tok[3]!r} does not fit in 32 bits")
            if "mode" in tok[:-1]:
                mode = tok[tok.index("mode") + 1]
                cur.mode = mode if mode in _MODES else None
        elif head in ("replay-window", "flag") and "flag" in tok:
            cur.esn = "esn" in tok[tok.index("flag") + 1 :]
        elif head in ("enc", "aead", "auth", "auth-trunc"):
            _algorithm(cur, tok, name=name, no=no)
        elif head == "encap":
            cur.encap = _encap(tok, name=name, no=no)
        elif head == "anti-replay" and "esn" in tok:
            # Counters follow on the next line, or on the same one in newer iproute2.
            in_esn_ctx = True
            if _HEXNUM.search(raw):
                cur.counters = {k: int(v, 16) for k, v in _HEXNUM.findall(raw)}
                in_esn_ctx = False
        elif in_esn_ctx and _HEXNUM.search(raw):
            cur.counters = {k: int(v, 16) for k, v in _HEXNUM.findall(raw)}
            in_esn_ctx = False
    for b in blocks:
        k = _record(b, name=name, res=res)
        if k is not None:
            res.keys.append(k)
    return res


# `ip xfrm state add` arguments that carry nothing for decryption, by how many values follow.
_ADD_SKIP = {
    "reqid": 1, "seq": 1, "replay-window": 1, "replay-seq": 1, "replay-oseq": 1, "replay-seq-hi": 1,
    "replay-oseq-hi": 1, "mark": 1, "mask": 1, "output-mark": 1, "if_id": 1, "tfcpad": 1, "coa": 1,
    "ctx": 1, "comp": 1, "limit": 2, "dev": 1, "dir": 1,
}  # fmt: skip
_ADD_LISTS = {"flag", "extra-flag", "offload"}  # words up to the next keyword
_SEL_KEYS = {"src", "dst", "sport", "dport", "proto", "type", "code", "key", "dev"}
_ADD_KEYWORDS = {"src", "dst", "proto", "spi", "mode", "enc", "auth", "auth-trunc", "aead", "encap"}


def _add_command(line: str, *, name: str, no: int) -> _Block:
    """One ``ip xfrm state add|update ID [ALGO-LIST] [mode M] … [encap …]`` command."""
    try:
        tok = shlex.split(line, comments=True)
    except ValueError as e:
        raise KeyFileError(name, no, f"ip xfrm state add: {e}") from None
    tok = tok[tok.index("state") + 2 :]
    b = _Block(no, "", "")
    i = 0
    while i < len(tok):
        word, i = tok[i], i + 1
        if word in ("src", "dst", "proto", "spi", "mode") and i < len(tok):
            value, i = tok[i], i + 1
            if word == "src":
                b.src = value
            elif word == "dst":
                b.dst = value
            elif word == "proto":
                b.proto = value
            elif word == "spi":
                b.spi = _int(value, name=name, no=no, what="SPI")
            else:
                b.mode = value if value in _MODES else None
        elif word in ("enc", "auth", "auth-trunc", "aead"):
            n = 3 if word in ("auth-trunc", "aead") else 2
            _algorithm(b, [word, *tok[i : i + n]], name=name, no=no)
            i += n
        elif word == "encap":
            # encap TYPE SPORT DPORT OADDR; only espinudp is ESP-in-UDP (RFC 3948).
            args, i = tok[i : i + 4], i + 4
            if len(args) == 4 and args[0] == "espinudp":
                b.encap = (
                    _int(args[1], name=name, no=no, what="encap sport"),
                    _int(args[2], name=name, no=no, what="encap dport"),
                )
        elif word in _ADD_SKIP:
            i += _ADD_SKIP[word]
        elif word == "sel":
            # The selector's own src/dst/proto are not the SA's: skip its KEY VALUE pairs.
            while i + 1 < len(tok) and tok[i] in _SEL_KEYS:
                i += 2
        elif word in _ADD_LISTS:
            start = i
            while i < len(tok) and tok[i] not in _ADD_KEYWORDS | _ADD_LISTS | _ADD_SKIP.keys() | {"sel"}:
                i += 1
            if word == "flag":
                b.esn = "esn" in tok[start:i]
        else:
            raise KeyFileError(name, no, f"ip xfrm state add: unexpected {word!r}")
    if not b.src or not b.dst:
        raise KeyFileError(name, no, "ip xfrm state add without src and dst")
    return b


def _algorithm(b: _Block, tok: list[str], *, name: str, no: int) -> None:
    """``enc|auth ALGO KEY``, ``aead ALGO KEY ICV`` or ``auth-trunc ALGO KEY BITS``: the same
    words in a listing line and in an ``add`` command."""
    if tok[0] == "enc":
        b.encr, b.encr_key = _enc(tok, name=name, no=no)
    elif tok[0] == "aead":
        b.encr, b.encr_key = _aead(tok, name=name, no=no)
    else:
        b.integ, b.integ_key = _auth(tok, name=name, no=no)
        b.integ_name = tok[1]
        return
    b.encr_name = tok[1]


def _int(text: str, *, name: str, no: int, what: str) -> int:
    # `ip -s` prints "0xc0123456(3222418518)": the hex value with the decimal in parentheses.
    try:
        return int(text.split("(", 1)[0], 0)
    except ValueError:
        raise KeyFileError(name, no, f"{what} {text!r} is not a number") from None


def _key(tok: list[str], idx: int, *, name: str, no: int, what: str) -> bytes:
    if len(tok) <= idx or tok[idx] in ('""', "0x"):
        return b""
    if not tok[idx].lower().startswith("0x"):
        raise KeyFileError(name, no, f"{what} {tok[idx][:12]!r}…: expected 0x-prefixed hex (keys hidden?)")
    return parse_hex(tok[idx], name=name, line_no=no, what=what)


def _enc(tok: list[str], *, name: str, no: int) -> tuple[int, bytes]:
    alg = tok[1] if len(tok) > 1 else ""
    if alg not in XFRM_ENC:
        raise KeyFileError(
            name, no, f"unknown encryption algorithm {alg!r} (expected one of {expected(list(XFRM_ENC))})"
        )
    return int(XFRM_ENC[alg]), _key(tok, 2, name=name, no=no, what="encryption key")


def _aead(tok: list[str], *, name: str, no: int) -> tuple[int, bytes]:
    alg = tok[1] if len(tok) > 1 else ""
    if alg not in XFRM_AEAD:
        raise KeyFileError(
            name, no, f"unknown AEAD algorithm {alg!r} (expected one of {expected(list(XFRM_AEAD))})"
        )
    icv = _int(tok[3], name=name, no=no, what="ICV length") if len(tok) > 3 else 128
    if icv not in XFRM_AEAD[alg]:
        raise KeyFileError(name, no, f"{alg} with a {icv}-bit ICV has no IKEv2 transform")
    return int(XFRM_AEAD[alg][icv]), _key(tok, 2, name=name, no=no, what="AEAD key")


def _auth(tok: list[str], *, name: str, no: int) -> tuple[int, bytes]:
    alg = tok[1] if len(tok) > 1 else ""
    if alg not in XFRM_AUTH:
        raise KeyFileError(
            name, no, f"unknown integrity algorithm {alg!r} (expected one of {expected(list(XFRM_AUTH))})"
        )
    table, default = XFRM_AUTH[alg]
    trunc = (
        _int(tok[3], name=name, no=no, what="truncation")
        if tok[0] == "auth-trunc" and len(tok) > 3
        else default
    )
    if trunc not in table:
        raise KeyFileError(name, no, f"{alg} truncated to {trunc} bits has no IKEv2 transform")
    return int(table[trunc]), _key(tok, 2, name=name, no=no, what="integrity key")


def _encap(tok: list[str], *, name: str, no: int) -> tuple[int, int] | None:
    """``encap type espinudp sport 4500 dport 4500 addr 0.0.0.0``: ESP-in-UDP (RFC 3948) ports.
    Other types (``espintcp``, RFC 8229) are not UDP: None."""
    fields = dict(zip(tok[1::2], tok[2::2], strict=False))
    if fields.get("type") != "espinudp":
        return None
    return (
        _int(fields.get("sport", ""), name=name, no=no, what="encap sport"),
        _int(fields.get("dport", ""), name=name, no=no, what="encap dport"),
    )


def _record(b: _Block, *, name: str, res: ParseResult) -> AnyKeys | None:
    label = where(name, b.line)
    if b.proto not in ("esp", "ah") or b.spi is None:
        res.warnings.append(f"{label}: {b.proto or 'unknown'} SA carries no ESP/AH keys; skipped")
        return None
    if b.proto == "esp" and b.encr is None:
        res.warnings.append(f"{label}: ESP SA 0x{b.spi:08x} without enc/aead line (keys hidden?); skipped")
        return None
    encr = _E.ENCR_NULL if b.encr is None else b.encr
    esn_high = None
    if b.esn and b.counters is not None:
        # An SA either sends (oseq counts) or receives (seq counts): use the side that moved.
        out = b.counters.get("oseq", 0) or b.counters.get("oseq-hi", 0)
        esn_high = b.counters.get("oseq-hi" if out else "seq-hi")
    return ChildSaKeys(
        spi=b.spi,
        encr=int(encr),
        encr_key=SecretBytes(b.encr_key),
        integ=int(b.integ),
        integ_key=SecretBytes(b.integ_key),
        protocol=b.proto,
        src=b.src,
        dst=b.dst,
        encr_key_bits=key_bits_for(encr, len(b.encr_key)),
        esn=b.esn,
        esn_high=esn_high,
        mode=b.mode,
        source=label,
        encap=b.encap if b.proto == "esp" else None,
        # Private ids (no IANA number) keep the kernel's own name for the report.
        encr_label=b.encr_name if encr >= PRIVATE_BASE else "",
        integ_label=b.integ_name if b.integ >= PRIVATE_BASE else "",
    )


# ------------------------------------------------------------------------------------ writing

_ENC_OUT = {v: k for k, v in XFRM_ENC.items() if k != "cipher_null"}
_AEAD_OUT = {v: (k, bits) for k, t in XFRM_AEAD.items() for bits, v in t.items()}
_AUTH_OUT = {v: (k, bits) for k, (t, _d) in XFRM_AUTH.items() for bits, v in t.items()}


def format_xfrm_commands(items: Iterable[ChildSaKeys]) -> tuple[list[str], list[str]]:
    """``ip xfrm state add …`` commands recreating the SAs (those with both addresses known)."""
    lines: list[str] = []
    warnings: list[str] = []
    for k in items:
        label = f"{k.protocol.upper()} SA 0x{k.spi:08x}"
        if k.spi == ANY_SPI:
            warnings.append(f"{k.protocol.upper()} SA with any SPI: ip xfrm needs one SPI per SA; skipped")
            continue
        if not k.src or not k.dst or "*" in k.src + k.dst or "/" in k.src + k.dst:
            warnings.append(f"{label}: ip xfrm needs both addresses; skipped")
            continue
        cmd = [f"ip xfrm state add src {k.src} dst {k.dst} proto {k.protocol} spi 0x{k.spi:08x}"]
        cmd.append(f"mode {k.mode or 'tunnel'}")
        if k.esn:
            cmd.append("replay-window 128 flag esn")
        if k.protocol == "esp":
            if k.encr in _AEAD_OUT:
                alg, icv = _AEAD_OUT[k.encr]
                cmd.append(f"aead '{alg}' 0x{k.encr_key.hex()} {icv}")
            elif k.encr in _ENC_OUT:
                cmd.append(f"enc '{_ENC_OUT[k.encr]}' 0x{k.encr_key.hex()}")
            else:
                warnings.append(f"{label}: Linux has no cipher for {encr_name(k.encr)}; skipped")
                continue
        if k.integ != _I.NONE or k.protocol == "ah":
            if k.integ not in _AUTH_OUT or k.integ == _I.NONE:
                warnings.append(
                    f"{label}: Linux has no integrity algorithm for {integ_name(k.integ)}; skipped"
                )
                continue
            alg, trunc = _AUTH_OUT[k.integ]
            cmd.append(f"auth-trunc '{alg}' 0x{k.integ_key.hex()} {trunc}")
        if k.encap is not None and k.protocol == "esp":
            # ESP-in-UDP (RFC 3948); the original address is only used for transport-mode checksums.
            cmd.append(f"encap espinudp {k.encap[0]} {k.encap[1]} 0.0.0.0")
        lines.append(" ".join(cmd))
    return lines, warnings
