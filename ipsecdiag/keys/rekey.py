"""Binding the keys of rekeyed IKE SAs to their SPIs (pure functions, no capture access).

Two ways, both used by :func:`link_store`: another key source logged the same keys with SPIs
(:func:`link_by_matching_keys`, e.g. the peer's pluto log), or the exchange that created the SA
(:func:`link_rekeys`).

A key source may log the keys of an IKE SA created by CREATE_CHILD_SA (RFC 7296 §1.3.2) without
its SPIs (:class:`~ipsecdiag.keys.model.PendingIkeKeys`). The exchange that created it shows them:
the SA payload of the request carries the new initiator SPI, that of the response the new
responder SPI, and its Nonce payloads carry Ni and Nr. The caller decrypts those exchanges with
the rekeyed SA's keys and hands them in as :class:`RekeyExchange`; chains of rekeys resolve one
link at a time, each bound SA decrypting the next exchange.

With one IKE rekey exchange per rekeyed SA, the pairing is unambiguous. When there are several
(simultaneous rekeys, RFC 7296 §2.8.2) a ``verify`` function must decide, e.g.
:func:`ipsecdiag.crypto.ikerekey.verify_by_derivation`, which recomputes the keys from the logged
shared secret and the old SK_d (RFC 7296 §2.18).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ipsecdiag.keys.model import IkeSaKeys, KeyStore, PendingIkeKeys
from ipsecdiag.wire.ikev2 import Payload
from ipsecdiag.wire.ikev2_payloads import NoncePayload
from ipsecdiag.wire.ikev2_sa import SaPayload
from ipsecdiag.wire.registry import ProtocolId


@dataclass(frozen=True)
class RekeyExchange:
    """A decrypted CREATE_CHILD_SA exchange that rekeyed the IKE SA ``old_spi_i``/``old_spi_r``."""

    old_spi_i: bytes
    old_spi_r: bytes
    new_spi_i: bytes
    new_spi_r: bytes
    ni: bytes
    nr: bytes
    source: str = ""  # where it was seen, e.g. "frames 41-42"


def exchange_from_payloads(
    old_spi_i: bytes,
    old_spi_r: bytes,
    request: Sequence[Payload],
    response: Sequence[Payload],
    *,
    source: str = "",
) -> RekeyExchange | None:
    """The :class:`RekeyExchange` of a decrypted CREATE_CHILD_SA request/response pair, or None
    when it did not rekey the IKE SA (a CHILD SA exchange, or a refusal without SA payload).

    RFC 7296 §1.3.2: the SA payloads carry the new SPIs (the proposal's SPI field, 8 octets for
    protocol IKE), the initiator's in the request, the responder's in the response."""
    got = []
    for payloads in (request, response):
        sas = [p for p in payloads if isinstance(p, SaPayload)]
        nonces = [p.data for p in payloads if isinstance(p, NoncePayload)]
        if len(sas) != 1 or not nonces or not sas[0].proposals:
            return None
        # The responder answers with the one proposal it chose; the request's proposals all carry
        # the same SPI (RFC 7296 §3.3.1).
        prop = sas[0].proposals[0]
        if prop.protocol_id != ProtocolId.IKE or len(prop.spi) != 8:
            return None
        got.append((prop.spi, nonces[0]))
    (spi_i, ni), (spi_r, nr) = got
    return RekeyExchange(old_spi_i, old_spi_r, spi_i, spi_r, ni, nr, source)


Verifier = Callable[[PendingIkeKeys, IkeSaKeys, RekeyExchange], IkeSaKeys | None]


@dataclass
class RekeyLinks:
    """Pending records that got their SPIs, and those that did not (with the reason)."""

    bound: list[IkeSaKeys] = field(default_factory=list)
    resolved: list[PendingIkeKeys] = field(default_factory=list)  # same order as ``bound``
    unresolved: list[tuple[PendingIkeKeys, str]] = field(default_factory=list)


def bind(pending: PendingIkeKeys, ex: RekeyExchange) -> IkeSaKeys:
    """The pending keys under the SPIs the creating exchange carried."""
    where = f" (SPIs from {ex.source})" if ex.source else ""
    return dataclasses.replace(pending.keys, spi_i=ex.new_spi_i, spi_r=ex.new_spi_r, source=pending.source + where)


def link_rekeys(
    known: Iterable[IkeSaKeys],
    pending: Iterable[PendingIkeKeys],
    exchanges: Iterable[RekeyExchange],
    *,
    verify: Verifier | None = None,
    resolved: Mapping[str, IkeSaKeys] | None = None,
) -> RekeyLinks:
    """Bind every pending record whose rekeyed (parent) SA is known and whose creating exchange
    is among ``exchanges``; bound records become parents for the next link of a chain.
    ``resolved`` maps the sources of pending records bound earlier to their keys."""
    by_spis = {(k.spi_i, k.spi_r): k for k in known}
    by_source = {k.source: k for k in by_spis.values()} | dict(resolved or {})
    exs = list(exchanges)
    used: set[int] = set()
    waiting = list(pending)
    out = RekeyLinks()
    progress = True
    while progress and waiting:
        progress = False
        for p in list(waiting):
            parent = by_spis.get(p.parent_spis) if p.parent_spis else None
            parent = parent or by_source.get(p.parent_source)
            if parent is None:
                continue
            cands = [
                i
                for i, e in enumerate(exs)
                if i not in used and (e.old_spi_i, e.old_spi_r) == (parent.spi_i, parent.spi_r)
            ]
            got = _choose(p, parent, [exs[i] for i in cands], verify)
            if got is None:
                continue
            idx, keys = cands[got[0]], got[1]
            used.add(idx)
            waiting.remove(p)
            out.bound.append(keys)
            out.resolved.append(p)
            by_spis[(keys.spi_i, keys.spi_r)] = keys
            by_source[p.source] = keys
            progress = True
    for p in waiting:
        out.unresolved.append((p, _why(p, by_spis, by_source, exs)))
    return out


def _choose(
    p: PendingIkeKeys, parent: IkeSaKeys, cands: list[RekeyExchange], verify: Verifier | None
) -> tuple[int, IkeSaKeys] | None:
    if verify is not None:
        hits = [(i, k) for i, e in enumerate(cands) if (k := verify(p, parent, e)) is not None]
        if len(hits) == 1:
            return hits[0]
        if hits or len(cands) != 1:
            return None
    # Without a verdict, only a single candidate is safe to take.
    return (0, bind(p, cands[0])) if len(cands) == 1 else None


def _why(
    p: PendingIkeKeys,
    by_spis: dict[tuple[bytes, bytes], IkeSaKeys],
    by_source: dict[str, IkeSaKeys],
    exs: list[RekeyExchange],
) -> str:
    parent = (by_spis.get(p.parent_spis) if p.parent_spis else None) or by_source.get(p.parent_source)
    if parent is None:
        return "the rekeyed IKE SA's own keys/SPIs are unknown"
    n = sum((e.old_spi_i, e.old_spi_r) == (parent.spi_i, parent.spi_r) for e in exs)
    if n == 0:
        return f"no decrypted IKE rekey exchange in IKE SA {parent.spi_i.hex()}/{parent.spi_r.hex()}"
    return f"{n} IKE rekey exchanges in IKE SA {parent.spi_i.hex()}/{parent.spi_r.hex()}, none singled out"


_SAME = ("encr", "sk_ei", "sk_er", "integ", "sk_ai", "sk_ar")


def link_by_matching_keys(known: Iterable[IkeSaKeys], pending: Iterable[PendingIkeKeys]) -> RekeyLinks:
    """Bind pending records whose keys another source logged with SPIs (e.g. the peer's pluto
    log next to this charon log): the same SK_e/SK_a bytes cannot belong to another SA. The
    bound record keeps what only the pending one has (SK_d, SK_p, the PRF)."""
    out = RekeyLinks()
    known = list(known)
    for p in pending:
        if not p.keys.sk_ei:
            continue
        hits = [k for k in known if all(getattr(k, f) == getattr(p.keys, f) for f in _SAME)]
        if len({(k.spi_i, k.spi_r) for k in hits}) != 1:
            continue
        k = hits[0]
        out.bound.append(
            dataclasses.replace(p.keys, spi_i=k.spi_i, spi_r=k.spi_r, source=f"{p.source} (SPIs from {k.source})")
        )
        out.resolved.append(p)
    return out


def link_store(store: KeyStore, exchanges: Iterable[RekeyExchange], *, verify: Verifier | None = None) -> RekeyLinks:
    """:func:`link_rekeys` on a store: bound records join its IKE keys and leave its pending list.

    Call it again after decrypting with the newly bound keys to resolve the next link of a chain.
    """
    matched = link_by_matching_keys([k for k in store if isinstance(k, IkeSaKeys)], store.pending())
    for p, k in zip(matched.resolved, matched.bound, strict=True):
        store.resolve_pending(p, k)
    known = [k for k in store if isinstance(k, IkeSaKeys)]
    links = link_rekeys(known, store.pending(), exchanges, verify=verify, resolved=store.resolved())
    for p, k in zip(links.resolved, links.bound, strict=True):
        store.resolve_pending(p, k)
    links.bound[:0], links.resolved[:0] = matched.bound, matched.resolved
    return links
