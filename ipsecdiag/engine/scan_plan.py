"""Which IKE_SA_INIT offer to send next, given the answers so far (``probe scan``'s planner).

A gateway answers an IKE_SA_INIT request in one of three ways that matter here (RFC 7296
§1.2, §2.7, §3.10.1): NO_PROPOSAL_CHOSEN (nothing offered is acceptable), INVALID_KE_PAYLOAD
naming the group of the proposal it selected (acceptable, but our KE payload is for another
group), or its SA, KE and Nonce (acceptable, and a half-open IKE SA now exists on the gateway).

The planner asks "is this offer acceptable?" with many transforms per proposal and a KE payload
for a *decoy* group that is not in the offer, so the gateway answers INVALID_KE_PAYLOAD (yes,
and here is the group it picked) or NO_PROPOSAL_CHOSEN (no) without keeping any state. Only the
first query (the baseline) is meant to be answered in full: it carries the gateway's preferred
proposal and its capabilities (vendor IDs, fragmentation, signature hashes, NAT-D).

* key exchange: elimination. Each INVALID_KE_PAYLOAD names an accepted group; drop it from the
  offer and ask again until NO_PROPOSAL_CHOSEN: accepted groups + 1 round trips.
* PRF, encryption, integrity: adaptive binary splitting (group testing) over the oracle, the
  other types offered in full (or reduced to what is already known to be accepted).
* per cipher, the PRFs, integrity algorithms and groups that go with it, so the accepted
  proposals can be written as strongSwan would configure them (ciphers with the same partners
  are merged into one proposal).
* RFC 9370 additional key exchanges (ML-KEM): only a full answer can show that the gateway
  really chose an ADDKE transform (a gateway that does not know the transform type may skip it),
  so these queries carry a real KE payload and each costs a half-open SA.

The planner is a generator driven by :class:`ScanPlanner`; it never touches the network.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field, replace

from ..protocol.suites import AEAD, ENCR, INTEG, KE, PRF, Algo
from ..wire.ikev2_sa import Proposal, Transform, TransformAttribute
from ..wire.registry import EncrId, IntegId, KeGroup, PrfId, ProtocolId, TransformAttr, TransformType

ADDKE1 = int(TransformType.ADDKE1)


# -- what is offered and what comes back ------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """Per-type candidate lists; :meth:`proposals` turns them into at most two proposals
    (classic ciphers with integrity, AEAD ciphers without: RFC 7296 §3.3, RFC 5282 §8)."""

    encr: tuple[Algo, ...]
    prf: tuple[Algo, ...]
    integ: tuple[Algo, ...]
    ke: tuple[Algo, ...]
    addke: tuple[Algo, ...] = ()

    def replace(self, **kw: tuple[Algo, ...]) -> Offer:
        return replace(self, **kw)

    def proposals(self) -> tuple[Proposal, ...]:
        classic = tuple(a for a in self.encr if a.id not in AEAD)
        aead = tuple(a for a in self.encr if a.id in AEAD)
        out: list[Proposal] = []
        tail = (*self.prf, *self.ke, *self.addke)
        if classic and self.integ:
            out.append(_proposal(len(out) + 1, (*classic, *self.prf, *self.integ, *self.ke, *self.addke)))
        if aead:
            out.append(_proposal(len(out) + 1, (*aead, *tail)))
        return tuple(out)


def _transform(a: Algo) -> Transform:
    attrs = (TransformAttribute(TransformAttr.KEY_LENGTH, a.bits),) if a.bits else ()
    return Transform(a.type, a.id, attrs)


def _proposal(number: int, algos: Iterable[Algo]) -> Proposal:
    return Proposal(number, int(ProtocolId.IKE), b"", tuple(_transform(a) for a in algos))


def algos_of(p: Proposal) -> tuple[Algo, ...]:
    return tuple(Algo(t.type, t.id, t.key_length) for t in p.transforms)


@dataclass(frozen=True)
class Query:
    offer: Offer
    ke_group: int  # the KE payload's group
    purpose: str  # "baseline", "ke", "prf", "encr", "integ", "pair", "addke"
    full: bool = False  # a full answer is wanted (the KE payload's group may be chosen)


@dataclass(frozen=True)
class Chosen:
    """SA, KE, Nonce: the gateway's choice (one transform per type)."""

    algos: tuple[Algo, ...]


@dataclass(frozen=True)
class InvalidKe:
    group: int


@dataclass(frozen=True)
class Refused:
    notify: str  # NO_PROPOSAL_CHOSEN, or another error notify's name


@dataclass(frozen=True)
class NoAnswer:
    reason: str = "no answer"


Answer = Chosen | InvalidKe | Refused | NoAnswer


# -- the catalogue of what a scan tries ---------------------------------------------------------


def _bits(e: EncrId, sizes: Sequence[int] = (128, 192, 256)) -> list[Algo]:
    return [Algo(ENCR, int(e), b) for b in sizes]


def default_catalogue() -> Offer:
    """Every IKE SA transform a deployed gateway plausibly accepts, strongest first."""
    encr: list[Algo] = []
    for e in (EncrId.ENCR_AES_GCM_16, EncrId.ENCR_AES_GCM_12, EncrId.ENCR_AES_GCM_8):
        encr += _bits(e, (256, 192, 128))
    encr.append(Algo(ENCR, int(EncrId.ENCR_CHACHA20_POLY1305)))
    for e in (EncrId.ENCR_AES_CCM_16, EncrId.ENCR_AES_CCM_12, EncrId.ENCR_AES_CCM_8):
        encr += _bits(e, (256, 192, 128))
    for e in (EncrId.ENCR_AES_CBC, EncrId.ENCR_AES_CTR, EncrId.ENCR_CAMELLIA_CBC, EncrId.ENCR_CAMELLIA_CTR):
        encr += _bits(e, (256, 192, 128))
    encr += [Algo(ENCR, int(e)) for e in (EncrId.ENCR_3DES, EncrId.ENCR_CAST, EncrId.ENCR_DES)]
    encr.append(Algo(ENCR, int(EncrId.ENCR_BLOWFISH), 128))
    prf = [
        Algo(PRF, int(p))
        for p in (
            PrfId.PRF_HMAC_SHA2_512,
            PrfId.PRF_HMAC_SHA2_384,
            PrfId.PRF_HMAC_SHA2_256,
            PrfId.PRF_AES128_CMAC,
            PrfId.PRF_AES128_XCBC,
            PrfId.PRF_HMAC_SHA1,
            PrfId.PRF_HMAC_MD5,
            PrfId.PRF_HMAC_TIGER,
        )
    ]
    integ = [
        Algo(INTEG, int(i))
        for i in (
            IntegId.AUTH_HMAC_SHA2_512_256,
            IntegId.AUTH_HMAC_SHA2_384_192,
            IntegId.AUTH_HMAC_SHA2_256_128,
            IntegId.AUTH_AES_CMAC_96,
            IntegId.AUTH_AES_XCBC_96,
            IntegId.AUTH_HMAC_SHA1_160,
            IntegId.AUTH_HMAC_SHA1_96,
            IntegId.AUTH_HMAC_MD5_128,
            IntegId.AUTH_HMAC_MD5_96,
            IntegId.AUTH_DES_MAC,
        )
    ]
    ke = [
        Algo(KE, int(g))
        for g in KeGroup
        if g not in (KeGroup.NONE, KeGroup.GOST3410_2012_256, KeGroup.GOST3410_2012_512)
    ]
    # strongest first within families, as a gateway's own list would be
    ke.sort(key=lambda a: _KE_RANK.index(a.id) if a.id in _KE_RANK else 100 + a.id)
    return Offer(tuple(encr), tuple(prf), tuple(integ), tuple(ke))


_KE_RANK = [int(g) for g in (
    KeGroup.CURVE25519, KeGroup.ECP_256, KeGroup.ECP_384, KeGroup.ECP_521, KeGroup.CURVE448,
    KeGroup.ML_KEM_768, KeGroup.ML_KEM_1024, KeGroup.ML_KEM_512,
    KeGroup.ECP_256_BP, KeGroup.ECP_384_BP, KeGroup.ECP_512_BP, KeGroup.ECP_224_BP,
    KeGroup.MODP_2048, KeGroup.MODP_3072, KeGroup.MODP_4096, KeGroup.MODP_6144, KeGroup.MODP_8192,
    KeGroup.MODP_2048_256, KeGroup.MODP_2048_224, KeGroup.ECP_224, KeGroup.ECP_192,
    KeGroup.MODP_1536, KeGroup.MODP_1024, KeGroup.MODP_1024_160, KeGroup.MODP_768,
)]  # fmt: skip
ADDKE_GROUPS = (KeGroup.ML_KEM_768, KeGroup.ML_KEM_1024, KeGroup.ML_KEM_512)
# Groups with cheap public values, tried in order as the baseline's first guess and as decoys;
# then the dearer ones (a gateway that accepts all of these leaves no decoy outside the offer).
CHEAP_GROUPS = (KeGroup.ECP_256, KeGroup.CURVE25519, KeGroup.ECP_384, KeGroup.MODP_2048, KeGroup.CURVE448)
DECOY_GROUPS = (
    *CHEAP_GROUPS, KeGroup.ECP_521, KeGroup.ECP_256_BP, KeGroup.ECP_384_BP, KeGroup.MODP_1024,
    KeGroup.MODP_768, KeGroup.MODP_1536, KeGroup.ECP_512_BP, KeGroup.MODP_3072, KeGroup.MODP_4096,
)  # fmt: skip


# -- results -------------------------------------------------------------------------------------


@dataclass
class PlanResult:
    """What the plan learnt. Each catalogue transform ends in one of three outcomes: accepted
    (in a chosen proposal, or it made an offer acceptable), rejected (an offer holding it, with
    every other type's accepted transforms, was refused) or untested (the scan stopped before
    asking): a scan cut short by ``--max-time`` must not read as a refusal."""

    accepted: dict[int, list[Algo]] = field(default_factory=dict)  # transform type -> accepted
    tested: dict[int, list[Algo]] = field(default_factory=dict)  # transform type -> the catalogue's
    refused: dict[int, list[Algo]] = field(default_factory=dict)  # rejected by an answer so far
    finished: set[int] = field(default_factory=set)  # types whose stage ran to its end
    baseline: tuple[Algo, ...] | None = None  # the gateway's own choice from the full offer
    partners: dict[Algo, dict[int, list[Algo]]] = field(default_factory=dict)  # cipher -> type -> algos
    addke: list[Algo] = field(default_factory=list)
    addke_ignored: bool = False  # the gateway answered without the ADDKE transform
    queries: int = 0
    full_answers: int = 0  # half-open IKE SAs the scan left on the gateway
    anomalies: list[str] = field(default_factory=list)
    complete: bool = False  # the plan ran to its end (not cut by time or silence)
    pairing: str = ""  # "done", or why the per-cipher pairing was skipped
    silent: bool = False  # no answer at all to the first query

    def rejected(self, ttype: int) -> list[Algo]:
        acc = self.accepted.get(ttype, [])
        if ttype in self.finished:
            return [a for a in self.tested.get(ttype, []) if a not in acc]
        no = self.refused.get(ttype, [])
        return [a for a in self.tested.get(ttype, []) if a in no and a not in acc]

    def untested(self, ttype: int) -> list[Algo]:
        """Catalogue transforms of ``ttype`` no answer has decided (empty for a finished type)."""
        if ttype in self.finished:
            return []
        known = (*self.accepted.get(ttype, []), *self.refused.get(ttype, []))
        return [a for a in self.tested.get(ttype, []) if a not in known]

    def note(self, ttype: int, algos: Iterable[Algo], ok: bool) -> None:
        """Record answers as they come, so that a plan stopped mid-stage keeps them."""
        into = self.accepted if ok else self.refused
        have = into.setdefault(ttype, [])
        have.extend(a for a in algos if a not in have)

    def finish(self, ttype: int, accepted: Iterable[Algo]) -> None:
        """A stage ran to its end: ``accepted`` is final (what an answer already showed stays)."""
        got = list(accepted)
        have = self.accepted.get(ttype, [])
        self.accepted[ttype] = [a for a in self.tested.get(ttype, []) if a in got or a in have]
        self.accepted[ttype] += [a for a in got if a not in self.accepted[ttype]]
        self.finished.add(ttype)


class _Stop(Exception):
    """The gateway stopped answering: the plan ends with what it has."""


Plan = Generator[Query, Answer, None]


def plan(cat: Offer, result: PlanResult, *, addke: bool = True, pair_budget: int | None = 150) -> Plan:
    """The scan as a generator: yields queries, receives their answers, fills ``result``."""
    try:
        yield from _plan(cat, result, addke=addke, pair_budget=pair_budget)
        result.complete = True
    except _Stop:
        pass


def _ask(result: PlanResult, q: Query) -> Generator[Query, Answer, Answer]:
    a = yield q
    result.queries += 1
    if isinstance(a, Chosen):
        result.full_answers += 1
    if isinstance(a, NoAnswer):
        if result.queries == 1:
            result.silent = True
        raise _Stop
    if isinstance(a, Refused) and a.notify != "NO_PROPOSAL_CHOSEN":
        result.anomalies.append(f"{q.purpose} query answered with {a.notify}")
        raise _Stop
    return a


def _decoy(offer: Offer, prefer: int | None = None) -> tuple[int, bool]:
    """A KE payload group outside the offer (stateless answer), or the best one inside."""
    offered = {a.id for a in offer.ke}
    for g in DECOY_GROUPS:
        if g not in offered:
            return int(g), False
    return (prefer if prefer in offered else offer.ke[0].id), True  # type: ignore[return-value]


def _acceptable(
    result: PlanResult, offer: Offer, purpose: str
) -> Generator[Query, Answer, tuple[bool, int | None]]:
    """(acceptable, group the gateway picked); stateless unless the offer holds every cheap group."""
    if not offer.proposals():
        return False, None
    group, full = _decoy(offer)
    a = yield from _ask(result, Query(offer, group, purpose, full))
    if isinstance(a, InvalidKe):
        if a.group not in {x.id for x in offer.ke}:
            result.anomalies.append(f"INVALID_KE_PAYLOAD asked for {a.group}, which was not offered")
            return False, None
        return True, a.group
    if isinstance(a, Chosen):
        return True, next((x.id for x in a.algos if x.type == KE), None)
    return False, None


def _positives(
    result: PlanResult, items: Sequence[Algo], offer_with: Callable[[Sequence[Algo]], Offer], purpose: str
) -> Generator[Query, Answer, list[Algo]]:
    """Every item that makes the offer acceptable: binary splitting while positives look sparse,
    one item per query once they look dense (splitting an all-positive set costs 2m-1 queries,
    testing its items m; cf. Hwang's generalised binary splitting)."""
    seen = [0, 0]  # positives, items resolved

    def dense() -> bool:
        return (seen[0] + 1) / (seen[1] + 4) >= 0.5  # prior: one in four accepted

    def one_by_one(s: Sequence[Algo], known: bool) -> Generator[Query, Answer, list[Algo]]:
        found: list[Algo] = []
        for i, a in enumerate(s):
            if known and not found and i == len(s) - 1:
                ok = True  # the set holds a positive and no other item was one
            else:
                ok, _ = yield from _acceptable(result, offer_with([a]), purpose)
            _note(result, purpose, [a], ok)
            seen[0] += ok
            seen[1] += 1
            if ok:
                found.append(a)
        return found

    def search(s: Sequence[Algo], known: bool) -> Generator[Query, Answer, list[Algo]]:
        if len(s) > 1 and dense():
            return (yield from one_by_one(s, known))
        if not known:
            ok, _ = yield from _acceptable(result, offer_with(s), purpose)
            if not ok:
                _note(result, purpose, s, False)
                seen[1] += len(s)
                return []
        if len(s) == 1:
            _note(result, purpose, s, True)
            seen[0] += 1
            seen[1] += 1
            return list(s)
        mid = len(s) // 2
        left = yield from search(s[:mid], False)
        right = yield from search(s[mid:], not left)
        return left + right

    return (yield from search(list(items), False)) if items else []


def _groups(
    result: PlanResult, offer: Offer, candidates: Sequence[Algo], purpose: str
) -> Generator[Query, Answer, list[Algo]]:
    """Accepted KE groups among ``candidates`` by elimination (each INVALID_KE names one)."""
    found: list[Algo] = []
    left = list(candidates)
    aside = None
    if _decoy(offer.replace(ke=tuple(left)))[1]:
        # no decoy outside the offer: take one group out, test it alone at the end
        aside = next(a for a in left if a.id in DECOY_GROUPS)
        left.remove(aside)
    while left:
        ok, g = yield from _acceptable(result, offer.replace(ke=tuple(left)), purpose)
        pick = next((a for a in left if a.id == g), None)
        if not ok:
            _note(result, purpose, left, False)  # refused with every group still left in it
        if not ok or pick is None:
            break
        found.append(pick)
        _note(result, purpose, [pick], True)
        left.remove(pick)
    if aside is not None:
        ok, g = yield from _acceptable(result, offer.replace(ke=(aside,)), purpose)
        if ok and g == aside.id:
            found.append(aside)
        _note(result, purpose, [aside], ok and g == aside.id)
    return found


# The stages whose answers decide a transform type on their own (the per-cipher pairing and the
# ADDKE queries ask about combinations, not about one type).
_STAGE_TYPE = {"ke": KE, "prf": PRF, "encr": ENCR, "integ": INTEG}


def _note(result: PlanResult, purpose: str, algos: Sequence[Algo], ok: bool) -> None:
    t = _STAGE_TYPE.get(purpose)
    if t is not None:
        result.note(t, algos, ok)


def _finish_all(result: PlanResult) -> None:
    """The plan ended early because of an answer (nothing acceptable): every open type is decided."""
    for t in (ENCR, PRF, INTEG, KE):
        if t not in result.finished:
            result.finish(t, ())


def _plan(
    cat: Offer, result: PlanResult, *, addke: bool, pair_budget: int | None
) -> Generator[Query, Answer, None]:
    for t, items in ((ENCR, cat.encr), (PRF, cat.prf), (INTEG, cat.integ), (KE, cat.ke)):
        result.tested[t] = list(items)
        result.accepted[t] = []
    # 0. baseline: the whole catalogue, a real KE payload (full answer wanted)
    guess = next((int(g) for g in CHEAP_GROUPS if g in {a.id for a in cat.ke}), cat.ke[0].id)
    a = yield from _ask(result, Query(cat, guess, "baseline", True))
    if isinstance(a, InvalidKe) and a.group in {x.id for x in cat.ke} and a.group != guess:
        a = yield from _ask(result, Query(cat, a.group, "baseline", True))
    if isinstance(a, Refused):
        _finish_all(result)
        return  # nothing in the catalogue is acceptable
    known_ke: list[Algo] = []
    if isinstance(a, Chosen):
        result.baseline = a.algos
        for t in (ENCR, PRF, INTEG, KE):  # a chosen proposal is accepted, whatever happens next
            result.note(t, [x for x in a.algos if x.type == t and x in result.tested[t]], True)
        known_ke = [x for x in a.algos if x.type == KE and x in cat.ke]
    elif isinstance(a, InvalidKe):
        known_ke = [x for x in cat.ke if x.id == a.group]
        result.note(KE, known_ke, True)
    # 1. key exchange by elimination
    rest = [x for x in cat.ke if x not in known_ke]
    ke = known_ke + (yield from _groups(result, cat, rest, "ke"))
    result.finish(KE, [x for x in cat.ke if x in ke])
    if not ke:
        _finish_all(result)
        return
    base = cat.replace(ke=tuple(result.accepted[KE]))
    # 2. PRF, then encryption (with the accepted PRFs), then integrity (classic ciphers only)
    prf = yield from _positives(result, cat.prf, lambda s: base.replace(prf=tuple(s)), "prf")
    result.finish(PRF, prf)
    base = base.replace(prf=tuple(prf))
    encr = yield from _positives(result, cat.encr, lambda s: base.replace(encr=tuple(s)), "encr")
    result.finish(ENCR, encr)
    classic = tuple(e for e in encr if e.id not in AEAD)
    integ: list[Algo] = []
    if classic:
        integ = yield from _positives(
            result, cat.integ, lambda s: base.replace(encr=classic, integ=tuple(s)), "integ"
        )
    else:
        result.tested[INTEG] = []  # AEAD ciphers only: integrity cannot be asked about, not "rejected"
    result.finish(INTEG, integ)
    if not encr:
        return
    base = Offer(tuple(encr), tuple(prf), tuple(integ), tuple(result.accepted[KE]))
    # 3. per cipher: which PRFs, integrity algorithms and groups go with it (exact, but it costs
    # about as many round trips as there are partners per cipher: bounded by pair_budget)
    cost = sum(_pair_cost(e, prf, integ, result.accepted[KE]) for e in encr)
    if pair_budget is not None and cost > pair_budget:
        result.pairing = f"skipped: about {cost} more round trips than the budget of {pair_budget}"
    else:
        for e in encr:
            result.partners[e] = yield from _pair(result, base, e)
        result.pairing = "done"
    # 4. RFC 9370 additional key exchange (ML-KEM): full answers only
    if addke and result.baseline is not None:
        yield from _addke(result, cat)


def _pair_cost(e: Algo, prf: Sequence[Algo], integ: Sequence[Algo], ke: Sequence[Algo]) -> int:
    cost = len(ke) + 1 if len(ke) > 1 else 0
    cost += len(prf) if len(prf) > 1 else 0
    return cost + (len(integ) if len(integ) > 1 and e.id not in AEAD else 0)


def _pair(result: PlanResult, base: Offer, e: Algo) -> Generator[Query, Answer, dict[int, list[Algo]]]:
    """The PRFs, integrity algorithms and groups accepted together with cipher ``e``."""
    partners: dict[int, list[Algo]] = {PRF: list(base.prf), KE: list(base.ke)}
    partners[INTEG] = list(base.integ) if e.id not in AEAD else []
    one = base.replace(encr=(e,))
    if len(partners[KE]) > 1:
        partners[KE] = yield from _groups(result, one, partners[KE], "pair")
    one = one.replace(ke=tuple(partners[KE]))
    if len(partners[PRF]) > 1:
        partners[PRF] = yield from _positives(result, base.prf, lambda s: one.replace(prf=tuple(s)), "pair")
    one = one.replace(prf=tuple(partners[PRF]))
    if len(partners[INTEG]) > 1:
        partners[INTEG] = yield from _positives(
            result, base.integ, lambda s: one.replace(integ=tuple(s)), "pair"
        )
    return partners


def _addke(result: PlanResult, cat: Offer) -> Generator[Query, Answer, None]:
    assert result.baseline is not None
    chosen = {t: [a for a in result.baseline if a.type == t] for t in (ENCR, PRF, INTEG, KE)}
    left = [Algo(ADDKE1, int(g)) for g in ADDKE_GROUPS]
    group = chosen[KE][0].id
    while left:
        offer = Offer(
            tuple(chosen[ENCR]), tuple(chosen[PRF]), tuple(chosen[INTEG]), tuple(chosen[KE]), tuple(left)
        )
        a = yield from _ask(result, Query(offer, group, "addke", True))
        if not isinstance(a, Chosen):
            return
        pick = next((x for x in a.algos if x.type == ADDKE1), None)
        if pick is None:
            result.addke_ignored = True
            return
        if pick not in left:
            result.anomalies.append(f"ADDKE1 {pick.label} chosen but not offered")
            return
        result.addke.append(pick)
        left.remove(pick)


class ScanPlanner:
    """The plan driven step by step: :meth:`next_query`, then :meth:`answer` with its outcome."""

    def __init__(
        self, catalogue: Offer | None = None, *, addke: bool = True, pair_budget: int | None = 150
    ) -> None:
        self.catalogue = catalogue or default_catalogue()
        self.result = PlanResult()
        self._gen = plan(self.catalogue, self.result, addke=addke, pair_budget=pair_budget)
        self._pending: Query | None = None
        self._done = False
        self._advance(None)

    def _advance(self, answer: Answer | None) -> None:
        try:
            self._pending = next(self._gen) if answer is None else self._gen.send(answer)
        except StopIteration:
            self._pending, self._done = None, True

    @property
    def done(self) -> bool:
        return self._done

    def next_query(self) -> Query | None:
        return self._pending

    def answer(self, a: Answer) -> Query | None:
        if self._pending is None:
            raise RuntimeError("no query is waiting for an answer")
        self._advance(a)
        return self._pending

    def stop(self) -> None:
        """Time is up: close the plan (the result keeps what was learnt)."""
        self._gen.close()
        self._pending, self._done = None, True


__all__ = [
    "ADDKE_GROUPS",
    "Answer",
    "Chosen",
    "InvalidKe",
    "NoAnswer",
    "Offer",
    "PlanResult",
    "Query",
    "Refused",
    "ScanPlanner",
    "algos_of",
    "default_catalogue",
    "plan",
]
