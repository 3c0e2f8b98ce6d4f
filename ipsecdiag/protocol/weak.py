"""Which transforms are weak today, and why (RFC 8247 §2-§2.4 for IKEv2, RFC 8221 §5-§6 for
ESP/AH): one rule set for ``analyze``'s posture check and ``probe scan``'s table. The key
exchange groups are crypto/weak_groups.py's table (``crypto/ke.py`` answers from it too)."""

from __future__ import annotations

from ..crypto.weak_groups import WEAK_GROUPS
from ..wire.registry import EncrId, IntegId, PrfId
from .suites import ENCR, INTEG, KE, PRF, Algo, Suite

WEAK_ENCR: dict[int, str] = {
    EncrId.ENCR_DES_IV64: "DES: 56-bit key",
    EncrId.ENCR_DES: "DES: 56-bit key",
    EncrId.ENCR_DES_IV32: "DES: 56-bit key",
    EncrId.ENCR_3DES: "3DES: 64-bit block (Sweet32), deprecated",
    EncrId.ENCR_NULL: "NULL encryption: no confidentiality",
    EncrId.ENCR_RC5: "RC5: legacy 64-bit block cipher",
    EncrId.ENCR_IDEA: "IDEA: legacy 64-bit block cipher",
    EncrId.ENCR_3IDEA: "3IDEA: legacy 64-bit block cipher",
    EncrId.ENCR_CAST: "CAST: legacy 64-bit block cipher",
    EncrId.ENCR_BLOWFISH: "Blowfish: legacy 64-bit block cipher",
}
WEAK_INTEG: dict[int, str] = {
    IntegId.AUTH_HMAC_MD5_96: "HMAC-MD5",
    IntegId.AUTH_HMAC_MD5_128: "HMAC-MD5",
    IntegId.AUTH_KPDK_MD5: "KPDK-MD5",
    IntegId.AUTH_DES_MAC: "DES-MAC",
    IntegId.AUTH_HMAC_SHA1_96: "HMAC-SHA1 (SHA-1)",
    IntegId.AUTH_HMAC_SHA1_160: "HMAC-SHA1 (SHA-1)",
}
WEAK_PRF: dict[int, str] = {
    PrfId.PRF_HMAC_MD5: "PRF HMAC-MD5",
    PrfId.PRF_HMAC_SHA1: "PRF HMAC-SHA1 (SHA-1)",
    PrfId.PRF_HMAC_TIGER: "PRF HMAC-Tiger",
}
WEAK_KE = WEAK_GROUPS  # RFC 8247 §2.4
_WEAK: dict[int, dict[int, str]] = {ENCR: WEAK_ENCR, INTEG: WEAK_INTEG, PRF: WEAK_PRF, KE: WEAK_KE}


def weak_reason(a: Algo) -> str | None:
    """Why one transform is weak, or None."""
    table = _WEAK.get(a.type)
    return table.get(a.id) if table is not None else None


def weak_reasons(s: Suite) -> list[str]:
    """``label: reason`` for every weak transform of a suite, without repeats."""
    out = []
    for a in s.algos:
        why = weak_reason(a)
        if why is not None:
            out.append(f"{a.label}: {why}")
    return list(dict.fromkeys(out))


__all__ = ["WEAK_ENCR", "WEAK_INTEG", "WEAK_KE", "WEAK_PRF", "weak_reason", "weak_reasons"]
