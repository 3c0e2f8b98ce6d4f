"""One rule set for weak key exchange groups (RFC 8247 §2.4): the posture rules (protocol/weak.py,
used by analyze and probe scan) and crypto/ke.py's group_weakness answer from the same table."""

from __future__ import annotations

from ipsecdiag.crypto.ke import group_weakness
from ipsecdiag.protocol.suites import KE, Algo
from ipsecdiag.protocol.weak import weak_reason
from ipsecdiag.wire.registry import KeGroup


def test_posture_and_crypto_agree_on_every_group() -> None:
    for g in KeGroup:
        assert weak_reason(Algo(KE, int(g))) == group_weakness(int(g)), g


def test_rfc_8247_section_2_4() -> None:
    # MUST NOT: 1; SHOULD NOT: 2, 5, 22, 23, 24 (RFC 5114 groups included); ECP-192 below 112 bits
    assert "MUST NOT" in (group_weakness(1) or "")
    for g in (2, 5, 22, 23, 24):
        assert "SHOULD NOT" in (group_weakness(g) or ""), g
    for g in (22, 23, 24):
        assert "RFC 5114" in (group_weakness(g) or ""), g
    assert weak_reason(Algo(KE, int(KeGroup.ECP_192)))
    # MUST / SHOULD / MAY groups are not flagged
    for g in (14, 15, 16, 19, 20, 21, 31, 32):
        assert weak_reason(Algo(KE, g)) is None, g
