"""Key exchange groups that should not be used, and why: the one table for the package.

``protocol/weak.py`` (the posture rules of ``analyze`` and ``probe scan``, RFC 8247 §2.4) and
``crypto/ke.py``'s :func:`group_weakness` both read it. It lives in ``crypto/`` because
``crypto/`` may not import ``protocol/``, while ``protocol/`` sits on ``crypto/``.

RFC 8247 §2.4 lists group 1 as MUST NOT and groups 2, 5, 22, 23 and 24 as SHOULD NOT (the RFC
5114 groups for their unverifiable generation and small subgroups, RFC 6989 §2.2). Group 25
(192-bit random ECP) is not in that list; at about 96-bit security it is below the 112-bit floor
the RFC's MUST/SHOULD groups keep, so it is flagged too, and the text says it is our rule.
"""

from __future__ import annotations

from ..wire.registry import KeGroup

WEAK_GROUPS: dict[int, str] = {
    KeGroup.MODP_768: "768-bit MODP (group 1): discrete logs of this size are computed; RFC 8247 §2.4 MUST NOT",
    KeGroup.MODP_1024: "1024-bit MODP (group 2): within reach of precomputation (Logjam); RFC 8247 §2.4 SHOULD NOT",
    KeGroup.MODP_1536: "1536-bit MODP (group 5): below 112-bit security; RFC 8247 §2.4 SHOULD NOT",
    KeGroup.MODP_1024_160: (
        "RFC 5114 1024-bit MODP, 160-bit subgroup (group 22): about 80-bit security, unverifiable "
        "parameters; RFC 8247 §2.4 SHOULD NOT"
    ),
    KeGroup.MODP_2048_224: (
        "RFC 5114 2048-bit MODP, 224-bit subgroup (group 23): unverifiable parameters and a small "
        "subgroup every peer must check (RFC 6989 §2.2); RFC 8247 §2.4 SHOULD NOT"
    ),
    KeGroup.MODP_2048_256: (
        "RFC 5114 2048-bit MODP, 256-bit subgroup (group 24): unverifiable parameters and a small "
        "subgroup every peer must check (RFC 6989 §2.2); RFC 8247 §2.4 SHOULD NOT"
    ),
    KeGroup.ECP_192: (
        "192-bit random ECP (group 25): about 96-bit security, below the 112-bit floor "
        "(not listed in RFC 8247)"
    ),
}


def group_weakness(group: int) -> str | None:
    """Why ``group`` should not be used, in one line, or None when nothing is known against it."""
    return WEAK_GROUPS.get(group)


__all__ = ["WEAK_GROUPS", "group_weakness"]
