"""strongSwan proposal strings (swanctl.conf ``proposals`` / ``esp_proposals``) to wire proposals.

``aes256gcm16-prfsha256-ecp256``, ``aes128-sha256-modp2048``, ``aes256gcm16`` (ESP, optionally
with ``-esn``/``-noesn`` and key exchange methods for PFS), comma-separated lists. Keywords of
different kinds may appear in any order; within a kind the order is the preference
(strongSwan's docs, "Algorithm Proposals"). The keyword table is the inverse of
:func:`ipsecdiag.protocol.suites.strongswan_keyword` (one table for both directions) plus the
aliases strongSwan accepts.

Rules from strongSwan's proposal parser applied here: an IKE proposal without a PRF takes the
PRFs implied by its integrity algorithms (sha256 -> prfsha256); an AEAD IKE proposal must name a
PRF; AEAD and non-AEAD ciphers do not mix in one proposal; an ESP proposal without ``esn``
keywords gets ``noesn``; ``ke1_mlkem768``... are RFC 9370 additional key exchanges.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..wire.ikev2_sa import Proposal, Transform, TransformAttribute
from ..wire.registry import EncrId, EsnId, IntegId, KeGroup, PrfId, ProtocolId, TransformAttr, TransformType
from .suites import _SS_IMPLIED_PRF, AEAD, ENCR, ESN, INTEG, KE, PRF, Algo, strongswan_keyword

__all__ = ["ProposalSyntaxError", "parse_proposal", "parse_proposals"]


class ProposalSyntaxError(ValueError):
    """A proposal string strongSwan would refuse; the message names the keyword."""


_VARIABLE_KEY = {
    EncrId.ENCR_AES_CBC,
    EncrId.ENCR_AES_CTR,
    EncrId.ENCR_AES_GCM_8,
    EncrId.ENCR_AES_GCM_12,
    EncrId.ENCR_AES_GCM_16,
    EncrId.ENCR_AES_CCM_8,
    EncrId.ENCR_AES_CCM_12,
    EncrId.ENCR_AES_CCM_16,
    EncrId.ENCR_NULL_AUTH_AES_GMAC,
    EncrId.ENCR_CAMELLIA_CBC,
    EncrId.ENCR_CAMELLIA_CTR,
}


def _algos() -> Iterator[Algo]:
    for e in EncrId:
        if e in _VARIABLE_KEY:
            for bits in (128, 192, 256):
                yield Algo(ENCR, int(e), bits)
        else:
            yield Algo(ENCR, int(e))
    for i in IntegId:
        if i:
            yield Algo(INTEG, int(i))
    for p in PrfId:
        yield Algo(PRF, int(p))
    for g in KeGroup:
        if g:
            yield Algo(KE, int(g))
            for n in range(7):
                yield Algo(TransformType.ADDKE1 + n, int(g))
    for s in EsnId:
        yield Algo(ESN, int(s))


def _table() -> dict[str, Algo]:
    table: dict[str, Algo] = {}
    for a in _algos():
        kw = strongswan_keyword(a)
        if kw is not None:
            table.setdefault(kw, a)
    # Aliases strongSwan's keyword table also accepts.
    aliases = {
        "aes": "aes128",
        "sha": "sha1",
        "sha2_256": "sha256",
        "sha2_384": "sha384",
        "sha2_512": "sha512",
        "x25519": "curve25519",
        "x448": "curve448",
        "prfsha": "prfsha1",
        "prfsha2_256": "prfsha256",
    }
    for bits in (128, 192, 256):
        for icv, n in (("8", "64"), ("12", "96"), ("16", "128")):
            aliases[f"aes{bits}gcm{n}"] = f"aes{bits}gcm{icv}"
            aliases[f"aes{bits}ccm{n}"] = f"aes{bits}ccm{icv}"
        aliases[f"aes{bits}gcm"] = f"aes{bits}gcm16"
        aliases[f"aes{bits}ccm"] = f"aes{bits}ccm16"
    aliases["aesgcm16"] = "aes128gcm16"
    for alias, target in aliases.items():
        if target in table:
            table.setdefault(alias, table[target])
    return table


_KEYWORDS = _table()
# The PRF strongSwan derives from an integrity algorithm when an IKE proposal names none.
_IMPLIED_PRF = _SS_IMPLIED_PRF
_PROTOCOLS = {"ike": ProtocolId.IKE, "esp": ProtocolId.ESP, "ah": ProtocolId.AH}
# Wire order of transform types within a proposal (strongSwan's and RFC 7296's examples).
_ORDER = (ENCR, PRF, INTEG, KE, *range(TransformType.ADDKE1, TransformType.ADDKE7 + 1), ESN)


def _transform(a: Algo) -> Transform:
    attrs = (TransformAttribute(TransformAttr.KEY_LENGTH, a.bits),) if a.bits else ()
    return Transform(a.type, a.id, attrs)


def parse_proposal(text: str, *, protocol: str = "ike", number: int = 1) -> Proposal:
    """One dash-separated proposal; ``protocol`` is ``ike``, ``esp`` or ``ah``.

    Raises :class:`ProposalSyntaxError` for an unknown keyword or a combination strongSwan
    rejects. A trailing ``!`` (strict flag of the old ipsec.conf syntax) is ignored.
    """
    proto = _PROTOCOLS.get(protocol.lower())
    if proto is None:
        raise ProposalSyntaxError(f"unknown protocol {protocol!r} (ike, esp or ah)")
    words = [w for w in text.strip().rstrip("!").lower().split("-") if w]
    if not words:
        raise ProposalSyntaxError("empty proposal")
    algos: list[Algo] = []
    for w in words:
        a = _KEYWORDS.get(w)
        if a is None:
            raise ProposalSyntaxError(f"{text.strip()}: unknown algorithm keyword {w!r}")
        if a not in algos:
            algos.append(a)
    kinds = {a.type for a in algos}
    encr = [a for a in algos if a.type == ENCR]
    aead = [a for a in encr if a.id in AEAD]
    if aead and len(aead) != len(encr):
        raise ProposalSyntaxError(f"{text.strip()}: AEAD and classic ciphers cannot share a proposal")
    if proto != ProtocolId.AH and not encr:
        raise ProposalSyntaxError(f"{text.strip()}: no encryption algorithm")
    if proto == ProtocolId.AH and (encr or INTEG not in kinds):
        raise ProposalSyntaxError(f"{text.strip()}: AH takes integrity algorithms only")
    if proto == ProtocolId.IKE:
        if ESN in kinds:
            raise ProposalSyntaxError(f"{text.strip()}: esn/noesn is for ESP and AH proposals")
        if aead and INTEG in kinds:
            raise ProposalSyntaxError(f"{text.strip()}: AEAD proposals take no integrity algorithm")
        if PRF not in kinds:
            implied = [_IMPLIED_PRF.get(a.id) for a in algos if a.type == INTEG]
            if aead or not implied or None in implied:
                raise ProposalSyntaxError(f"{text.strip()}: a PRF keyword (e.g. prfsha256) is required")
            algos += [Algo(PRF, int(p)) for p in dict.fromkeys(implied) if p is not None]
        if KE not in kinds:
            raise ProposalSyntaxError(f"{text.strip()}: IKE proposals need a key exchange method")
    else:
        if PRF in kinds:
            raise ProposalSyntaxError(f"{text.strip()}: PRF keywords are for IKE proposals")
        if not aead and INTEG not in kinds and proto == ProtocolId.ESP:
            raise ProposalSyntaxError(f"{text.strip()}: a classic cipher needs an integrity algorithm")
        if ESN not in kinds:
            algos.append(Algo(ESN, int(EsnId.NO_EXT_SEQ)))
    rank = {t: i for i, t in enumerate(_ORDER)}
    ordered = sorted(algos, key=lambda a: rank.get(a.type, len(rank)))  # stable: keeps preference
    return Proposal(number, int(proto), b"", tuple(_transform(a) for a in ordered))


def parse_proposals(text: str, *, protocol: str = "ike") -> tuple[Proposal, ...]:
    """A comma-separated list of proposals, numbered from 1 in order."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise ProposalSyntaxError("no proposal given")
    return tuple(parse_proposal(p, protocol=protocol, number=i) for i, p in enumerate(parts, 1))
