"""CREATE_CHILD_SA (RFC 7296 §1.3, §2.8, §2.17, §2.18): new CHILD SA, CHILD SA rekey, IKE SA
rekey, with or without PFS, and CHILD SA rekey collisions (§2.8.1).

Who is "initiator" here is the side that sent the CREATE_CHILD_SA request: its nonce is Ni, its
selectors are TSi, the first half of KEYMAT protects its outbound traffic (§2.17), and after an
IKE SA rekey it is the *original initiator* of the new IKE SA (§2.18) - the IkeSa's role may
change then. The rekey initiator deletes what was replaced: the old CHILD SA, or the old IKE SA
(through the retired SA object that keeps its keys for that one exchange, see ``ike_sa.py``).

Collisions (§2.8.1, §2.8.2): when both ends rekey the same CHILD SA, or the IKE SA, both
exchanges complete; the one whose four nonces include the lowest made a redundant SA, which its
initiator deletes, and the initiator of the other deletes the old SA. For the IKE SA the peer's
new SA is kept aside (``Negotiation.peer_ike_rekey``) until our own exchange completes; a
colliding IKE rekey while any other request of ours is outstanding gets TEMPORARY_FAILURE
(§2.25).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..crypto.ke import InvalidKeyExchange, KeyExchange, new_key_exchange
from ..crypto.prf import rekey_skeyseed
from ..crypto.rng import random_spi
from ..protocol.select import check_chosen, ke_choice, proposal_groups, select_proposal
from ..wire.ikev2 import IkeHeader, Payload
from ..wire.ikev2_payloads import KePayload, NoncePayload, NotifyPayload
from ..wire.ikev2_sa import Proposal, SaPayload
from ..wire.registry import ExchangeType, NotifyType, ProtocolId
from . import child_sa
from . import events as ev
from .common import ike_sa_keys, name_of_group, one
from .config import ChildConfig, Endpoint, Role
from .errors import Refuse
from .init_exchange import NONCE_LEN
from .negotiation import PeerIkeRekey
from .window import RequestContext

if TYPE_CHECKING:
    from ..keys.model import IkeSaKeys
    from .ike_sa import IkeSa

_X = ExchangeType.CREATE_CHILD_SA
_CHILD_ERRORS = (
    NotifyType.NO_PROPOSAL_CHOSEN,
    NotifyType.TS_UNACCEPTABLE,
    NotifyType.NO_ADDITIONAL_SAS,
    NotifyType.CHILD_SA_NOT_FOUND,
    NotifyType.TEMPORARY_FAILURE,
    NotifyType.SINGLE_PAIR_REQUIRED,
    NotifyType.INVALID_SELECTORS,
)


def _notify(payloads: tuple[Payload, ...], ntype: int) -> NotifyPayload | None:
    return next((p for p in payloads if isinstance(p, NotifyPayload) and p.notify_type == ntype), None)


def _ke(group: int | None, sa: IkeSa) -> KeyExchange | None:
    return new_key_exchange(group, sa.rng) if group else None


# -- initiator of the exchange ---------------------------------------------------------------


def start_new_child(
    sa: IkeSa,
    now: float,
    child: ChildConfig | None = None,
    *,
    rekey_of: int | None = None,
    group: int | None = None,
    retries: int = 0,
) -> None:
    cfg = child or sa.config.child
    if cfg is None:
        raise ValueError("no CHILD SA configuration to negotiate")
    old = sa.child_sas.get(rekey_of) if rekey_of is not None else None
    if rekey_of is not None and old is None:
        raise ValueError(f"no CHILD SA with inbound SPI {rekey_of:08x} to rekey")
    groups = proposal_groups(cfg.proposals)
    group = group or (groups[0] if groups else None)
    ke = _ke(group, sa)
    spi, ni = random_spi(sa.rng, 4), sa.rng.bytes(NONCE_LEN)
    offer = child_sa.offer(sa, cfg, spi, keep_ke=True)
    if old is not None:
        # Rekey the same traffic: our side of the old SA as TSi, the peer's as TSr.
        offer = [p for p in offer if not isinstance(p, child_sa.TsPayload)]
        offer += child_sa.ts_payloads(old.local_ts, old.remote_ts)
    requested = child_sa.requested_ts(offer)
    payloads: list[Payload] = []
    if old is not None:
        payloads.append(NotifyPayload(ProtocolId.ESP, old.spi_in.to_bytes(4, "big"), NotifyType.REKEY_SA))
    notes = [p for p in offer if isinstance(p, NotifyPayload)]
    rest = [p for p in offer if not isinstance(p, NotifyPayload)]
    payloads += notes + [rest[0], NoncePayload(ni)]  # SA, Ni, [KEi], TSi, TSr (§1.3.1)
    if ke is not None:
        payloads.append(KePayload(group, ke.public_value()))
    payloads += rest[1:]
    sa.send_request(
        _X,
        payloads,
        now,
        RequestContext(
            kind="child",
            spi=spi,
            ni=ni,
            ke=ke,
            group=group,
            cfg=cfg,
            rekey_of=rekey_of,
            requested=requested,
            retries=retries,
        ),
    )


def start_rekey_child(sa: IkeSa, spi_in: int, now: float) -> None:
    start_new_child(sa, now, rekey_of=spi_in)


def start_rekey_ike(sa: IkeSa, now: float, group: int | None = None, retries: int = 0) -> None:
    groups = proposal_groups(sa.config.ike_proposals)
    group = group or sa.neg.ke_group or groups[0]
    if group not in groups:
        group = groups[0]
    ke = new_key_exchange(group, sa.rng)
    spi, ni = random_spi(sa.rng, 8), sa.rng.bytes(NONCE_LEN)
    proposals = tuple(replace(p, number=i, spi=spi) for i, p in enumerate(sa.config.ike_proposals, 1))
    payloads: list[Payload] = [SaPayload(proposals), NoncePayload(ni), KePayload(group, ke.public_value())]
    sa.send_request(_X, payloads, now, RequestContext(kind="ike", spi=spi, ni=ni, ke=ke, group=group, retries=retries))


def handle_response(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, now: float, ctx: RequestContext
) -> None:
    invalid_ke = _notify(payloads, NotifyType.INVALID_KE_PAYLOAD)
    if invalid_ke is not None:
        wanted = invalid_ke.requested_group()
        groups = proposal_groups(ctx["cfg"].proposals if ctx["kind"] == "child" else sa.config.ike_proposals)
        if wanted in groups and wanted != ctx["group"] and ctx["retries"] < sa.config.max_ke_retries:
            sa.emit(ev.KeRetry(wanted, ctx["group"] or 0))
            if ctx["kind"] == "child":
                start_new_child(
                    sa, now, ctx["cfg"], rekey_of=ctx["rekey_of"], group=wanted, retries=ctx["retries"] + 1
                )
            else:
                start_rekey_ike(sa, now, wanted, ctx["retries"] + 1)
            return
        raise Refuse(
            NotifyType.INVALID_KE_PAYLOAD,
            f"peer wants {name_of_group(wanted)} for PFS, which we cannot retry with",
            fault="ours",
            received=True,
            respond=False,
        )
    errors = [p for p in payloads if isinstance(p, NotifyPayload) and p.is_error]
    if errors and ctx["kind"] == "ike" and sa.neg.peer_ike_rekey is not None:
        # Our IKE rekey was refused, the peer's (answered meanwhile) stands: continue on it;
        # its initiator, the peer, deletes the old SA (§2.8.2 without a second new SA).
        _adopt_peer_ike_rekey(sa, now)
        return
    if errors:
        e = errors[0]
        retry = ""
        if e.notify_type == NotifyType.TEMPORARY_FAILURE and _retry_later(sa, ctx):
            retry = " (retrying later, §2.25)"
        raise Refuse(
            e.notify_type,
            f"CREATE_CHILD_SA refused with {e.name}{retry}",
            fault="ours",
            received=True,
            respond=False,
        )
    nonce = one(payloads, NoncePayload)
    if nonce is None or not 16 <= len(nonce.data) <= 256:
        raise Refuse(
            NotifyType.INVALID_SYNTAX, "CREATE_CHILD_SA response without a valid Nonce", respond=False
        )
    shared = _shared(ctx["ke"], ctx["group"], one(payloads, KePayload))
    if ctx["kind"] == "ike":
        _ike_rekeyed(sa, payloads, ctx, nonce.data, shared, now, initiated=True)
        return
    sel = child_sa.accept(sa, payloads, ctx["cfg"], ctx["requested"], keep_ke=True)
    new = child_sa.install(
        sa,
        sel,
        spi_in=ctx["spi"],
        spi_out=sel.proposal.spi,
        ni=ctx["ni"],
        nr=nonce.data,
        shared_secret=shared,
        rekey_of=ctx["rekey_of"],
        initiated=True,
    )
    old_spi = ctx["rekey_of"]
    if old_spi is None:
        return
    sa.emit(ev.ChildSaRekeyed(old_spi, new.spi_in))
    rival = sa.neg.peer_rekeys.pop(old_spi, None)
    ours = (ctx["ni"], nonce.data)
    if rival is not None and min(*ours, *rival) in ours:
        sa.delete_child(new.spi_in, now)  # §2.8.1: our exchange had the lowest nonce: ours is redundant
    elif old_spi in sa.child_sas:
        sa.delete_child(old_spi, now)


_MAX_RETRIES = 5


def _retry_later(sa: IkeSa, ctx: RequestContext) -> bool:
    """Queue the refused request again after a random 1-4 s (both ends backing off the same
    fixed time would collide again); at most five times per request."""
    req = ctx.get("restart")
    tries = sa.neg.temporary_failures
    if req is None or tries.get(id(req), 0) >= _MAX_RETRIES:
        return False
    tries[id(req)] = tries.get(id(req), 0) + 1
    sa.defer(req, 1.0 + 3.0 * sa.rng.bytes(1)[0] / 255)
    return True


def _shared(ke: KeyExchange | None, group: int | None, ke_p: KePayload | None) -> bytes:
    if ke is None:
        if ke_p is not None:
            raise Refuse(
                NotifyType.INVALID_SYNTAX, "KE payload in the answer although we sent none", respond=False
            )
        return b""
    if ke_p is None or ke_p.group != group:
        raise Refuse(
            NotifyType.INVALID_KE_PAYLOAD,
            f"answer without a {name_of_group(group)} KE payload",
            respond=False,
        )
    try:
        return ke.shared_secret(ke_p.data)
    except InvalidKeyExchange as e:
        raise Refuse(NotifyType.INVALID_SYNTAX, f"peer's key exchange value: {e}", respond=False) from None


# -- responder of the exchange ------------------------------------------------------------------


def handle_request(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, dst: Endpoint, now: float
) -> None:
    sa_p, nonce = one(payloads, SaPayload), one(payloads, NoncePayload)
    if sa_p is None or nonce is None or not 16 <= len(nonce.data) <= 256:
        raise Refuse(NotifyType.INVALID_SYNTAX, "CREATE_CHILD_SA request without SA or a valid Nonce")
    ke_p = one(payloads, KePayload)
    if all(p.protocol_id == ProtocolId.IKE for p in sa_p.proposals):
        _answer_ike_rekey(sa, h, sa_p, nonce.data, ke_p, src, dst, now)
        return
    cfg = sa.config.child
    if cfg is None:
        raise Refuse(NotifyType.NO_ADDITIONAL_SAS, "no CHILD SA configuration on this side")
    rekey = _notify(payloads, NotifyType.REKEY_SA)
    old = None
    if rekey is not None:
        peer_spi = int.from_bytes(rekey.spi, "big") if len(rekey.spi) == 4 else -1
        old = next((c for c in sa.child_sas.values() if c.spi_out == peer_spi), None)
        if old is None:
            raise Refuse(NotifyType.CHILD_SA_NOT_FOUND, f"REKEY_SA for unknown SPI {rekey.spi.hex()}")
    spi = random_spi(sa.rng, 4)
    sel = child_sa.select(
        sa, payloads, cfg, spi, keep_ke=True, allowed=(old.remote_ts, old.local_ts) if old else None
    )
    ok, want = ke_choice(sel.proposal, ke_p.group if ke_p is not None else None)
    if not ok:
        if want == 0:
            raise Refuse(
                NotifyType.INVALID_SYNTAX, "KE payload without a key exchange in the chosen proposal"
            )
        sa.emit(ev.KeRetry(want, ke_p.group if ke_p else 0, sent_by_us=True))
        raise Refuse(
            NotifyType.INVALID_KE_PAYLOAD,
            f"PFS group {name_of_group(want)} wanted",
            data=want.to_bytes(2, "big"),
        )
    our_ke, shared = _respond_ke(sa, want, ke_p)
    nr = sa.rng.bytes(NONCE_LEN)
    answer = child_sa.answer(sel)
    out = [p for p in answer if isinstance(p, NotifyPayload)]
    rest = [p for p in answer if not isinstance(p, NotifyPayload)]
    out += [rest[0], NoncePayload(nr)] + ([our_ke] if our_ke is not None else []) + rest[1:]
    sa.send_response(_X, h.message_id, out, src, dst)
    peer_spi_new = next(p.spi for p in sa_p.proposals if p.number == sel.proposal.number)
    new = child_sa.install(
        sa,
        sel,
        spi_in=spi,
        spi_out=peer_spi_new,
        ni=nonce.data,
        nr=nr,
        shared_secret=shared,
        rekey_of=old.spi_in if old else None,
        initiated=False,
    )
    if old is not None:
        sa.emit(ev.ChildSaRekeyed(old.spi_in, new.spi_in))
        if sa.outstanding_context().get("rekey_of") == old.spi_in:
            sa.neg.peer_rekeys[old.spi_in] = (nonce.data, nr)


def _respond_ke(sa: IkeSa, group: int, ke_p: KePayload | None) -> tuple[KePayload | None, bytes]:
    if not group or ke_p is None:
        return None, b""
    try:
        value, shared = new_key_exchange(group, sa.rng).respond(ke_p.data)
    except InvalidKeyExchange as e:
        raise Refuse(NotifyType.INVALID_SYNTAX, f"peer's key exchange value: {e}") from None
    return KePayload(group, value), shared


def _answer_ike_rekey(
    sa: IkeSa,
    h: IkeHeader,
    sa_p: SaPayload,
    ni: bytes,
    ke_p: KePayload | None,
    src: Endpoint,
    dst: Endpoint,
    now: float,
) -> None:
    running = sa.outstanding_context()
    colliding = running.get("kind") == "ike" and sa.neg.peer_ike_rekey is None
    if running and not colliding:
        # §2.25: not while one of our own exchanges is running on this SA (it would be lost
        # with the old SA, or answered twice); the peer retries later.
        raise Refuse(
            NotifyType.TEMPORARY_FAILURE, "IKE SA rekey while our own request is outstanding (§2.25)"
        )
    if any(len(p.spi) != 8 for p in sa_p.proposals):
        raise Refuse(NotifyType.INVALID_SYNTAX, "IKE rekey proposal SPI is not 8 octets")
    spi_r = random_spi(sa.rng, 8)
    chosen = select_proposal(sa_p.proposals, sa.config.ike_proposals, spi=spi_r)
    if chosen is None:
        raise Refuse(NotifyType.NO_PROPOSAL_CHOSEN, "no IKE proposal in common for the rekey")
    ok, want = ke_choice(chosen, ke_p.group if ke_p is not None else None)
    if not ok:
        raise Refuse(
            NotifyType.INVALID_KE_PAYLOAD,
            f"IKE rekey needs {name_of_group(want)}",
            data=want.to_bytes(2, "big"),
        )
    our_ke, shared = _respond_ke(sa, want, ke_p)
    nr = sa.rng.bytes(NONCE_LEN)
    sa.send_response(_X, h.message_id, [SaPayload((chosen,)), NoncePayload(nr), our_ke], src, dst)  # type: ignore[list-item]
    peer_spi = next(p.spi for p in sa_p.proposals if p.number == chosen.number)
    keys = _rekey_keys(sa, chosen, ni, nr, shared, new_spi_i=peer_spi, new_spi_r=spi_r)
    if colliding:
        # Simultaneous IKE SA rekey (§2.8.2): both exchanges complete; which new SA survives
        # is known once our own answer brings the fourth nonce.
        sa.neg.peer_ike_rekey = PeerIkeRekey(keys, chosen, want, ni, nr)
        return
    sa.replace_ike_sa(keys, Role.RESPONDER, want, chosen, now, delete_old=False)


def _ike_rekeyed(
    sa: IkeSa,
    payloads: tuple[Payload, ...],
    ctx: RequestContext,
    nr: bytes,
    shared: bytes,
    now: float,
    *,
    initiated: bool,
) -> None:
    sa_p = one(payloads, SaPayload)
    offered = tuple(replace(p, number=i, spi=b"") for i, p in enumerate(sa.config.ike_proposals, 1))
    chosen_list = tuple(replace(p, spi=b"") for p in sa_p.proposals) if sa_p is not None else ()
    why = check_chosen(offered, chosen_list) if sa_p is not None else "no SA payload"
    if why is None and len(sa_p.proposals[0].spi) != 8:
        why = "the new responder SPI is not 8 octets"
    if why is not None:
        raise Refuse(NotifyType.NO_PROPOSAL_CHOSEN, f"unacceptable IKE rekey answer: {why}", respond=False)
    chosen = sa_p.proposals[0]
    ni = ctx["ni"]
    keys = _rekey_keys(sa, chosen, ni, nr, shared, new_spi_i=ctx["spi"], new_spi_r=chosen.spi)
    group = ctx["group"] or 0
    rival = sa.neg.peer_ike_rekey
    if rival is None:
        sa.replace_ike_sa(keys, Role.INITIATOR, group, chosen, now, delete_old=True)
        return
    sa.neg.peer_ike_rekey = None
    if min(ni, nr, rival.ni, rival.nr) in (ni, nr):
        # §2.8.2: the SA created with the lowest of the four nonces is deleted by the side
        # that created it - ours. The peer's SA survives; the peer deletes the old one.
        sa.replace_ike_sa(rival.keys, Role.RESPONDER, rival.group, rival.chosen, now, delete_old=False)
        sa.add_redundant_ike_sa(keys, Role.INITIATOR, now, delete=True)
    else:
        # Ours survives: we delete the old SA; the peer deletes the SA it created.
        sa.replace_ike_sa(keys, Role.INITIATOR, group, chosen, now, delete_old=True)
        sa.add_redundant_ike_sa(rival.keys, Role.RESPONDER, now, delete=False)


def _adopt_peer_ike_rekey(sa: IkeSa, now: float) -> None:
    rival = sa.neg.peer_ike_rekey
    assert rival is not None
    sa.neg.peer_ike_rekey = None
    sa.replace_ike_sa(rival.keys, Role.RESPONDER, rival.group, rival.chosen, now, delete_old=False)


def _rekey_keys(
    sa: IkeSa,
    chosen: Proposal,
    ni: bytes,
    nr: bytes,
    shared: bytes,
    *,
    new_spi_i: bytes,
    new_spi_r: bytes,
) -> IkeSaKeys:
    """RFC 7296 §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) with the old SA's PRF,
    then the §2.14 keys with the new algorithms and SPIs."""
    old = sa.keys
    assert old is not None and old.prf is not None
    seed = rekey_skeyseed(old.prf, old.sk_d.reveal(), shared, ni, nr)
    return ike_sa_keys(chosen, seed, ni, nr, new_spi_i, new_spi_r)
