"""Choosing from an SA offer (RFC 7296 §2.7, §3.3.6) and checking the peer's choice.

Responder: :func:`select_proposal` walks *our* configured proposals in order (our preference
wins, as strongSwan's default), and for each one the peer's proposals of the same protocol; a
pair matches when both have the same set of transform types (KE ``NONE`` counts as no KE) and
every type has a transform in common (same id and key length). The answer carries exactly one
transform per type and the *peer's* proposal number.

Initiator: :func:`check_chosen` verifies that the responder's single proposal is one we offered
(by number and protocol) with one transform per type, each taken from that offer; anything else
is a reason to refuse the response (NO_PROPOSAL_CHOSEN is not sent back: the exchange failed).

Key exchange in IKE_SA_INIT / CREATE_CHILD_SA (§1.2, §1.3): :func:`ke_choice` says whether the
KE payload's group is the chosen one or which group to ask for with INVALID_KE_PAYLOAD.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..wire.ikev2_sa import Proposal, Transform
from ..wire.registry import KeGroup, TransformType

__all__ = [
    "additional_groups",
    "check_chosen",
    "chosen_group",
    "ke_choice",
    "proposal_groups",
    "select_proposal",
    "transform_of",
]


def _types(p: Proposal) -> frozenset[int]:
    # A KE transform of id NONE means "no key exchange" (RFC 7296 §3.3.3): it does not make
    # the proposal require one.
    return frozenset(
        t.type for t in p.transforms if not (t.type == TransformType.KE and t.id == KeGroup.NONE)
    )


def _key(t: Transform) -> tuple[int, int, int | None]:
    return (t.type, t.id, t.key_length)


def select_proposal(
    offered: Sequence[Proposal], configured: Sequence[Proposal], *, spi: bytes = b""
) -> Proposal | None:
    """Our choice from the peer's ``offered`` proposals, or None (NO_PROPOSAL_CHOSEN).

    ``spi`` becomes the SPI of the answer (our inbound SPI for ESP; empty for IKE_SA_INIT).
    """
    for ours in configured:
        our_types = _types(ours)
        for theirs in offered:
            # RFC 9370 §2.2.1: an additional key exchange the peer offers with NONE among its
            # choices is optional; without one configured we answer NONE.
            optional = {
                t.type for t in theirs.transforms if _is_addke(t.type) and t.id == KeGroup.NONE
            } - our_types
            if theirs.protocol_id != ours.protocol_id or _types(theirs) - optional != our_types:
                continue
            their_keys = {_key(t) for t in theirs.transforms}
            chosen: list[Transform] = [Transform(t, KeGroup.NONE) for t in sorted(optional)]
            for ttype in sorted(our_types, key=_type_rank):
                pick = next((t for t in ours.transforms if t.type == ttype and _key(t) in their_keys), None)
                if pick is None:
                    break
                # Echo the peer's encoding of the transform (attributes as it sent them).
                chosen.append(next(t for t in theirs.transforms if _key(t) == _key(pick)))
            else:
                chosen.sort(key=lambda t: _type_rank(t.type))
                return Proposal(theirs.number, theirs.protocol_id, spi, tuple(chosen))
    return None


def _is_addke(ttype: int) -> bool:
    return TransformType.ADDKE1 <= ttype <= TransformType.ADDKE7


def additional_groups(p: Proposal) -> list[tuple[int, int]]:
    """``(transform type, group)`` of the chosen additional key exchanges, in order
    (RFC 9370 §2.2.2: ADDKE1 first), NONE left out."""
    return [(t.type, t.id) for t in sorted(p.transforms, key=lambda t: t.type) if _is_addke(t.type) and t.id]


def _type_rank(ttype: int) -> int:
    order = (TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.KE)
    return order.index(ttype) if ttype in order else int(ttype) + 10


def check_chosen(offered: Sequence[Proposal], chosen: Sequence[Proposal]) -> str | None:
    """Why the responder's answer is not acceptable (a sentence), or None when it is."""
    if len(chosen) != 1:
        return f"the answer holds {len(chosen)} proposals, RFC 7296 §3.3 wants exactly one"
    c = chosen[0]
    match = next((p for p in offered if p.number == c.number and p.protocol_id == c.protocol_id), None)
    if match is None:
        return f"proposal number {c.number} was not offered"
    types = [t.type for t in c.transforms if not (t.type == TransformType.KE and t.id == KeGroup.NONE)]
    if len(types) != len(set(types)):
        return "the answer holds more than one transform of a type"
    if set(types) != _types(match):
        return "the answer's transform types differ from the offered proposal's"
    offered_keys = {_key(t) for t in match.transforms}
    for t in c.transforms:
        if _key(t) not in offered_keys:
            return f"transform type {t.type} id {t.id} was not offered in proposal {c.number}"
    return None


def transform_of(p: Proposal, ttype: int) -> Transform | None:
    """The single transform of ``ttype`` in a chosen proposal (None when absent)."""
    found = p.of_type(ttype)
    return found[0] if found else None


def chosen_group(p: Proposal) -> int:
    """The KE group of a chosen proposal (0 = none)."""
    t = transform_of(p, TransformType.KE)
    return t.id if t is not None else 0


def proposal_groups(proposals: Sequence[Proposal]) -> list[int]:
    """Every KE group offered, in preference order, without repeats (NONE left out)."""
    out: list[int] = []
    for p in proposals:
        for t in p.of_type(TransformType.KE):
            if t.id != KeGroup.NONE and t.id not in out:
                out.append(t.id)
    return out


def ke_choice(chosen: Proposal, ke_group: int | None) -> tuple[bool, int]:
    """``(ok, group)``: ok when the KE payload (``ke_group``, None = absent) fits the chosen
    proposal; otherwise ``group`` is what INVALID_KE_PAYLOAD asks for (RFC 7296 §1.2)."""
    want = chosen_group(chosen)
    if want == 0:
        return ke_group is None, 0
    return ke_group == want, want


def with_spi(p: Proposal, spi: bytes) -> Proposal:
    return replace(p, spi=spi)
