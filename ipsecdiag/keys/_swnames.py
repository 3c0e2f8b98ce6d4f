"""strongSwan algorithm names: proposal tokens as charon logs them and swanctl.conf keywords.

charon prints proposals as ``IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256``: the transform names of
strongSwan's enums (the IANA names without ``ENCR_``/``AUTH_``), the key size appended as
``_<bits>``. swanctl.conf uses keywords such as ``aes256gcm16-prfsha256-ecp256``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ipsecdiag.keys.algorithms import ENCR_TWOFISH_CBC, parse_encr_name, parse_integ_name, parse_prf_name
from ipsecdiag.wire.registry import EncrId, IntegId, PrfId

# strongSwan encryption names that differ from IANA's (crypters.h).
_ENCR_ALIASES: dict[str, int] = {
    "3DES_CBC": EncrId.ENCR_3DES,
    "3DES": EncrId.ENCR_3DES,
    "DES_CBC": EncrId.ENCR_DES,
    "CAST_CBC": EncrId.ENCR_CAST,
    "BLOWFISH_CBC": EncrId.ENCR_BLOWFISH,
    "IDEA_CBC": EncrId.ENCR_IDEA,
    "RC5_CBC": EncrId.ENCR_RC5,
    "NULL_AES_GMAC": EncrId.ENCR_NULL_AUTH_AES_GMAC,
    "TWOFISH_CBC": ENCR_TWOFISH_CBC,
}


@dataclass(frozen=True)
class Proposal:
    """A selected proposal as charon logs it; ids are IANA (or private) transform ids."""

    protocol: str  # IKE | ESP | AH
    encr: int | None = None
    encr_bits: int | None = None
    integ: int | None = None
    prf: int | None = None
    esn: bool | None = None
    text: str = ""


def encr_token(token: str) -> tuple[int, int | None] | None:
    """``AES_GCM_16_256`` -> (ENCR_AES_GCM_16, 256); ``3DES_CBC`` -> (ENCR_3DES, None)."""
    t = token.strip().upper()
    whole = _ENCR_ALIASES.get(t) or parse_encr_name(t)
    if whole is not None:
        return whole, None
    head, _, tail = t.rpartition("_")
    if head and tail.isdigit():
        alg = _ENCR_ALIASES.get(head) or parse_encr_name(head)
        if alg is not None:
            return alg, int(tail)
    return None


def integ_token(token: str) -> int | None:
    """``HMAC_SHA2_256_128`` -> AUTH_HMAC_SHA2_256_128 (``AES_XCBC_96`` etc. likewise)."""
    t = token.strip().upper()
    return None if t in ("NONE", "UNDEFINED") else parse_integ_name(t)


def parse_proposal(text: str) -> Proposal:
    """Parse ``IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048``.

    Unknown tokens (KE groups and anything newer) are ignored: keys do not depend on them.
    """
    proto, _, rest = text.strip().partition(":")
    encr = bits = integ = prf = None
    esn: bool | None = None
    for tok in filter(None, rest.split("/")):
        up = tok.upper()
        if up in ("NO_EXT_SEQ", "EXT_SEQ"):
            esn = up == "EXT_SEQ"
        elif up.startswith("PRF_"):
            prf = parse_prf_name(up)
        elif encr is None and (e := encr_token(up)) is not None:
            encr, bits = e
        elif integ is None and (i := integ_token(up)) is not None:
            integ = i
    return Proposal(proto.upper(), encr, bits, integ, prf, esn, text.strip())


# swanctl.conf keywords (strongSwan's proposal_keywords_static), the common subset.
_KW_AEAD = {
    "gcm": {8: EncrId.ENCR_AES_GCM_8, 12: EncrId.ENCR_AES_GCM_12, 16: EncrId.ENCR_AES_GCM_16},
    "ccm": {8: EncrId.ENCR_AES_CCM_8, 12: EncrId.ENCR_AES_CCM_12, 16: EncrId.ENCR_AES_CCM_16},
}
_KW_ENCR = re.compile(r"^(aes|camellia|blowfish|twofish)(128|192|256)?(ctr|gcm|ccm)?(\d+)?$")
_KW_FIXED: dict[str, int] = {
    "3des": EncrId.ENCR_3DES,
    "des": EncrId.ENCR_DES,
    "cast128": EncrId.ENCR_CAST,
    "null": EncrId.ENCR_NULL,
    "chacha20poly1305": EncrId.ENCR_CHACHA20_POLY1305,
}
_KW_INTEG: dict[str, int] = {
    "md5": IntegId.AUTH_HMAC_MD5_96,
    "md5_128": IntegId.AUTH_HMAC_MD5_128,
    "sha": IntegId.AUTH_HMAC_SHA1_96,
    "sha1": IntegId.AUTH_HMAC_SHA1_96,
    "sha1_160": IntegId.AUTH_HMAC_SHA1_160,
    "aesxcbc": IntegId.AUTH_AES_XCBC_96,
    "aescmac": IntegId.AUTH_AES_CMAC_96,
    "sha256": IntegId.AUTH_HMAC_SHA2_256_128,
    "sha2_256": IntegId.AUTH_HMAC_SHA2_256_128,
    "sha256_96": IntegId.AUTH_HMAC_SHA2_256_96,
    "sha2_256_96": IntegId.AUTH_HMAC_SHA2_256_96,
    "sha384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha2_384": IntegId.AUTH_HMAC_SHA2_384_192,
    "sha512": IntegId.AUTH_HMAC_SHA2_512_256,
    "sha2_512": IntegId.AUTH_HMAC_SHA2_512_256,
    "aes128gmac": IntegId.AUTH_AES_128_GMAC,
    "aes192gmac": IntegId.AUTH_AES_192_GMAC,
    "aes256gmac": IntegId.AUTH_AES_256_GMAC,
}
_KW_PRF: dict[str, int] = {
    "prfmd5": PrfId.PRF_HMAC_MD5,
    "prfsha1": PrfId.PRF_HMAC_SHA1,
    "prfsha256": PrfId.PRF_HMAC_SHA2_256,
    "prfsha384": PrfId.PRF_HMAC_SHA2_384,
    "prfsha512": PrfId.PRF_HMAC_SHA2_512,
    "prfaesxcbc": PrfId.PRF_AES128_XCBC,
    "prfaescmac": PrfId.PRF_AES128_CMAC,
}


def encr_keyword(word: str) -> tuple[int, int | None] | None:
    """``aes256gcm16`` -> (ENCR_AES_GCM_16, 256); ``aes128`` -> (ENCR_AES_CBC, 128)."""
    w = word.strip().lower()
    if w in _KW_FIXED:
        return _KW_FIXED[w], None
    m = _KW_ENCR.match(w)
    if not m:
        return None
    base, bits_s, mode, icv_s = m.groups()
    bits = int(bits_s) if bits_s else (128 if base == "aes" else None)
    if mode in _KW_AEAD and base == "aes":
        icv = int(icv_s or 16)
        icv = icv // 8 if icv in (64, 96, 128) else icv
        alg = _KW_AEAD[mode].get(icv)
        return (int(alg), bits) if alg is not None else None
    if icv_s:
        return None
    table = {
        ("aes", None): EncrId.ENCR_AES_CBC,
        ("aes", "ctr"): EncrId.ENCR_AES_CTR,
        ("camellia", None): EncrId.ENCR_CAMELLIA_CBC,
        ("camellia", "ctr"): EncrId.ENCR_CAMELLIA_CTR,
        ("blowfish", None): EncrId.ENCR_BLOWFISH,
        ("twofish", None): ENCR_TWOFISH_CBC,
    }
    alg = table.get((base, mode))
    return (int(alg), bits) if alg is not None else None


def integ_keyword(word: str) -> int | None:
    v = _KW_INTEG.get(word.strip().lower())
    return int(v) if v is not None else None


def prf_keyword(word: str) -> int | None:
    v = _KW_PRF.get(word.strip().lower())
    return int(v) if v is not None else None
