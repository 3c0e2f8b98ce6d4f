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

The verifier's silence means two different things. When the source logged what the derivation
needs (the new SA's shared secret and PRF, the old SA's SK_d and PRF) and no candidate gives the
logged keys, the derivation contradicts the pairing: the record is not bound, and
:attr:`RekeyLinks.mismatched` says why. When it could not check (something is not logged), a
single candidate is still bound, marked unverified in its source label and in
:attr:`RekeyLinks.unverified`, so the report says the keys were not checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ipsecdiag.keys.model import IkeSaKeys, KeySourceNote, KeyStore, PendingIkeKeys
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
    # Bound from a single candidate without a derivation check (the bound keys, why not checked).
    unverified: list[tuple[IkeSaKeys, str]] = field(default_factory=list)
    # Not bound because the derivation gives other keys than the logged ones (also in unresolved).
    mismatched: list[tuple[PendingIkeKeys, str]] = field(default_factory=list)


def unverifiable(p: PendingIkeKeys, parent: IkeSaKeys) -> str | None:
    """Why RFC 7296 §2.18 derivation cannot check ``p``'s keys (what the source did not log),
    or None when it can: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)."""
    missing = []
    if not p.shared_secret:
        missing.append("the new SA's shared secret")
    if p.keys.prf is None:
        missing.append("the new SA's PRF")
    if parent.prf is None or not parent.sk_d:
        missing.append(f"the SK_d of IKE SA {parent.spi_i.hex()}/{parent.spi_r.hex()}")
    if not p.keys.sk_ei:
        missing.append("the new SA's SK_e")
    if not missing:
        return None
    return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not logged, and the derivation (RFC 7296 §2.18) needs it"


class _Mismatch:
    """The derivation contradicted every candidate: do not bind."""

    def __init__(self, why: str) -> None:
        self.why = why


def bind(pending: PendingIkeKeys, ex: RekeyExchange, *, unchecked: str | None = None) -> IkeSaKeys:
    """The pending keys under the SPIs the creating exchange carried; ``unchecked`` says why
    they were not checked, and goes into the source label the report shows."""
    parts = [f"SPIs from {ex.source}"] if ex.source else []
    if unchecked:
        parts.append(f"unverified: {unchecked}")
    where = f" ({'; '.join(parts)})" if parts else ""
    return dataclasses.replace(
        pending.keys, spi_i=ex.new_spi_i, spi_r=ex.new_spi_r, source=pending.source + where
    )


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
            if isinstance(got, _Mismatch):
                out.mismatched.append((p, got.why))
                continue
            if got is None:
                continue
            idx, keys, unchecked = cands[got[0]], got[1], got[2]
            used.add(idx)
            waiting.remove(p)
            out.bound.append(keys)
            out.resolved.append(p)
            if unchecked is not None:
                out.unverified.append((keys, unchecked))
            by_spis[(keys.spi_i, keys.spi_r)] = keys
            by_source[p.source] = keys
            progress = True
    mismatched = dict((id(p), why) for p, why in out.mismatched)
    out.mismatched = [(p, mismatched[id(p)]) for p in waiting if id(p) in mismatched]
    for p in waiting:
        out.unresolved.append((p, mismatched.get(id(p)) or _why(p, by_spis, by_source, exs)))
    return out


def _choose(
    p: PendingIkeKeys, parent: IkeSaKeys, cands: list[RekeyExchange], verify: Verifier | None
) -> tuple[int, IkeSaKeys, str | None] | _Mismatch | None:
    """The candidate to bind (index, keys, why unverified or None), a mismatch, or None."""
    why = "no verifier given"
    if verify is not None:
        hits = [(i, k) for i, e in enumerate(cands) if (k := verify(p, parent, e)) is not None]
        if len(hits) == 1:
            return (*hits[0], None)
        if hits or not cands:
            return None
        cannot = unverifiable(p, parent)
        if cannot is None:  # the derivation could check, and every candidate gives other keys
            old = f"IKE SA {parent.spi_i.hex()}/{parent.spi_r.hex()}"
            what = (
                f"the rekey exchange ({cands[0].source or 'in the capture'})"
                if len(cands) == 1
                else f"any of the {len(cands)} rekey exchanges of {old}"
            )
            return _Mismatch(
                f"not bound: deriving the keys (RFC 7296 §2.18) from the logged shared secret, the SK_d of "
                f"{old} and the nonces of {what} does not give the logged keys"
            )
        why = cannot
    # Without a verdict, only a single candidate is safe to take.
    return (0, bind(p, cands[0], unchecked=why), why) if len(cands) == 1 else None


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
            dataclasses.replace(
                p.keys, spi_i=k.spi_i, spi_r=k.spi_r, source=f"{p.source} (SPIs from {k.source})"
            )
        )
        out.resolved.append(p)
    return out


def link_store(
    store: KeyStore, exchanges: Iterable[RekeyExchange], *, verify: Verifier | None = None
) -> RekeyLinks:
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
    _note(store, links)
    return links


def _note(store: KeyStore, links: RekeyLinks) -> None:
    """The store's notes say which bound keys were not checked (``unverified``) and which
    records the derivation refused (``rekey-mismatch``, replaced as later exchanges are tried,
    dropped once the record is bound)."""
    bound = {p.source for p in links.resolved}
    refused = {p.source: why for p, why in links.mismatched}
    store.notes[:] = [
        n
        for n in store.notes
        if not (n.kind == "rekey-mismatch" and (n.source in bound or n.source in refused))
    ]
    for k, why in links.unverified:
        store.notes.append(
            KeySourceNote(
                k.source.split(" (", 1)[0],
                "unverified",
                f"keys of IKE SA {k.spi_i.hex()}/{k.spi_r.hex()} "
                f"bound to the only rekey exchange that fits, not checked: {why}",
            )
        )
    for p in store.pending():
        if p.source in refused:
            store.notes.append(
                KeySourceNote(p.source, "rekey-mismatch", f"{p.describe()}; {refused[p.source]}")
            )
