"""Finishing the IKE SAs the pass (ike_sas.py) read: their records put in time order, the IKE SA
rekeys inferred from timing where nothing was decrypted, and each SA's state settled from what the
capture shows. :meth:`IkeReconstructor.finish` and ``snapshot`` run all three; the reconstructor
settles the states again once it knows when the capture ended.
"""

from __future__ import annotations

from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.registry import EapCode, ExchangeType
from .decrypted import deletes_in_time_order
from .ike_records import ZERO_SPI
from .model import ExchangeRecord, IkeSaRecord
from .proposals import proposal_dict_v1, proposal_dicts_v1_all
from .sa_state import later_exchange_evidence


def in_time_order(sa: IkeSaRecord) -> None:
    """Put an SA's records in time order: each message's transmissions, an IKEv1 exchange's
    messages (with its request and response named again) and the SA's exchanges. They are
    recorded in capture order, which a merged capture or one taken on several interfaces does
    not keep in time; every span, interval and "first"/"last" read from them is a time. A
    capture in time order is left as it is (the sorts are stable)."""

    def unsorted(times: list[float]) -> bool:
        return any(b < a for a, b in zip(times, times[1:], strict=False))

    if sa.version == 1:
        _v1_roles(sa)
    for ex in sa.exchanges:
        for m in ex.all_messages():
            if unsorted([t.ts for t in m.transmissions]):
                m.transmissions.sort(key=lambda t: t.ts)
        if ex.version == 1 and unsorted([m.ts for m in ex.messages]):
            ex.messages.sort(key=lambda m: m.ts)
            first = ex.messages[0]
            ex.initiated_by_initiator = first.from_initiator
            ex.request = first
            ex.response = next((m for m in ex.messages if m.from_initiator != first.from_initiator), None)
            for m in ex.messages:
                m.is_response = m is not first and m.from_initiator != first.from_initiator
    if unsorted([e.first_ts for e in sa.exchanges]):
        sa.exchanges.sort(key=lambda e: e.first_ts)
    _first_endpoints(sa)
    deletes_in_time_order(sa)


def _first_endpoints(sa: IkeSaRecord) -> None:
    """The initiator's and responder's address and port as first seen in time (before any
    NAT-T float to 4500): the SA took them from its first message in the capture, which out of
    time order may be a later one."""
    msgs = [m for e in sa.exchanges for m in e.all_messages() if m.transmissions]
    if not msgs:
        return
    m = min(msgs, key=lambda x: x.ts)
    a, b = (m.src, m.sport), (m.dst, m.dport)
    sa.initiator, sa.responder = (a, b) if m.from_initiator else (b, a)


def _v1_roles(sa: IkeSaRecord) -> None:
    """An IKEv1 SA whose first message seen came from the responder (its answer captured before
    the initiator's first message) names the roles the other way round: only the initiator's
    first phase 1 message has a zero responder cookie (RFC 2408 §3.1), so its sender is the
    initiator."""
    for ex in sa.exchanges:
        for m in ex.messages:
            h = getattr(m.parsed, "header", None)
            if ex.message_id == 0 and h is not None and h.cookie_r == ZERO_SPI and not m.from_initiator:
                sa.initiator, sa.responder = sa.responder, sa.initiator
                for e in sa.exchanges:
                    e.initiated_by_initiator = not e.initiated_by_initiator
                    for x in e.messages:
                        x.from_initiator = not x.from_initiator
                        x.is_response = x.from_initiator != e.initiated_by_initiator
                sa.proposal, sa.offered = None, []  # read with the roles swapped: read again
                for x in ex.messages:
                    for p in getattr(x.parsed, "payloads", ()):
                        if isinstance(p, v1.V1SaPayload):
                            props = [proposal_dict_v1(pp) for pp in p.proposals]
                            if not x.from_initiator and props:
                                sa.proposal = props[0]
                            elif x.from_initiator and not sa.offered:
                                sa.offered = [o for pp in p.proposals for o in proposal_dicts_v1_all(pp)]
                return


# How soon after a CREATE_CHILD_SA on the old IKE SA the old SA must go quiet (its DELETE) for
# a new IKE SA between the same peers to be taken as its rekey when nothing was decrypted.
REKEY_DELETE_WINDOW = 30.0


def _infer_rekeys(sas: list[IkeSaRecord]) -> None:
    """Link IKEv2 SAs that appear without IKE_SA_INIT to the SA they probably rekey.

    Without keys the CREATE_CHILD_SA that rekeyed an IKE SA cannot be read. An IKE SA whose first
    exchange is not IKE_SA_INIT, between the same two hosts, starting after an answered
    CREATE_CHILD_SA on an older SA whose last exchange (the DELETE) follows it within
    ``REKEY_DELETE_WINDOW``, is recorded as its rekey with ``rekey_inferred``.
    """
    for new in sas:
        if new.version != 2 or new.rekeyed_from is not None or not new.exchanges:
            continue
        if any(e.exchange_type == ExchangeType.IKE_SA_INIT for e in new.exchanges):
            continue
        hosts = {new.initiator[0], new.responder[0]}
        start = new.first_ts
        best = None
        for old in sas:
            if old is new or old.version != 2 or {old.initiator[0], old.responder[0]} != hosts:
                continue
            ccs = [
                e
                for e in old.exchanges
                if e.exchange_type == ExchangeType.CREATE_CHILD_SA
                and e.response is not None
                and e.response.ts <= start
            ]
            if not ccs:
                continue
            last_ccs = max(ccs, key=lambda e: e.response.ts if e.response else 0.0)
            t_ccs = last_ccs.response.ts if last_ccs.response else 0.0
            later = [e.first_ts for e in old.exchanges if e.first_ts > t_ccs]
            if later and min(later) - t_ccs > REKEY_DELETE_WINDOW:
                continue
            if best is None or t_ccs > best[0]:
                best = (t_ccs, old)
        if best is not None:
            old = best[1]
            new.rekeyed_from = old.key
            new.rekey_inferred = True
            if new.key not in old.rekeyed_to:
                old.rekeyed_to.append(new.key)



# "error types that don't prevent the IKE SA from being set up" in IKE_AUTH (RFC 7296 §2.21.2)
_CHILD_ONLY_ERRORS = frozenset(
    {"NO_PROPOSAL_CHOSEN", "TS_UNACCEPTABLE", "SINGLE_PAIR_REQUIRED", "INTERNAL_ADDRESS_FAILURE", "FAILED_CP_REQUIRED"}
)


def settle_states(sas: list[IkeSaRecord], end: float | None = None) -> None:
    """Settle every SA's state. ``end``: when the capture ended, once known (the report's last
    record time): a request sent within ``IN_FLIGHT_SECONDS`` of it and not retransmitted may
    still be answered, so an SA waiting on it is incomplete, not failed. Without ``end`` (the
    reconstructor alone does not know it) such an SA reads failed until settled again with it."""
    by_key = {sa.key: sa for sa in sas}
    for sa in sas:
        if end is None or sa.state == "failed":
            _settle_state(sa, by_key, end)


def _in_flight(e: ExchangeRecord, end: float | None) -> bool:
    return end is not None and e.unanswered and not e.unanswered_at(end)


def _rekey_evidence(sa: IkeSaRecord, by_key: dict[str, IkeSaRecord]) -> str:
    """Which answered CREATE_CHILD_SA of its parent created a rekeyed IKE SA (the last one
    answered before the new SA's first message, as _infer_rekeys links them)."""
    parent = by_key.get(sa.rekeyed_from or "")
    what = f"created by rekey of IKE SA {sa.rekeyed_from}"
    if parent is None:
        return what
    ccs = [
        e
        for e in parent.exchanges
        if e.exchange_type == ExchangeType.CREATE_CHILD_SA and e.response is not None and e.response.ts <= sa.first_ts
    ]
    if not ccs:
        return what
    e = max(ccs, key=lambda x: x.response.ts if x.response else 0.0)
    frames = [m.first_frame for m in (e.request, e.response) if m is not None]
    return f"{what} (its CREATE_CHILD_SA at frame{'s' if len(frames) > 1 else ''} {', '.join(map(str, frames))})"


def _settle_state(sa: IkeSaRecord, by_key: dict[str, IkeSaRecord] | None = None, end: float | None = None) -> None:
    """Decide established/failed/incomplete/deleted/redirected from what the capture shows."""
    sa.state_basis, sa.state_evidence = "seen", ""
    if sa.version == 1:
        _settle_v1(sa, end)
        return
    init = [e for e in sa.exchanges if e.exchange_type == ExchangeType.IKE_SA_INIT]
    auth = [e for e in sa.exchanges if e.exchange_type == ExchangeType.IKE_AUTH]
    later = [
        e
        for e in sa.exchanges
        if e.exchange_type in (ExchangeType.CREATE_CHILD_SA, ExchangeType.INFORMATIONAL)
    ]
    fatal = {
        "NO_PROPOSAL_CHOSEN",
        "INVALID_KE_PAYLOAD",
        "AUTHENTICATION_FAILED",
        "INVALID_SYNTAX",
        "UNSUPPORTED_CRITICAL_PAYLOAD",
        "INVALID_MAJOR_VERSION",
        "INTERNAL_ADDRESS_FAILURE",
        "FAILED_CP_REQUIRED",
        "AUTHORIZATION_FAILED",
    }
    ok_init = any(
        e.response is not None and not (set(e.response.notifies) & fatal) and "SA" in e.response.payloads
        for e in init
    )
    deleted = False
    for e in sa.exchanges:
        for m in e.all_messages():
            for p in m.inner:
                if isinstance(p, v2.DeletePayload) and p.protocol_id == 1:
                    deleted = True
    # Established means both AUTH payloads were sent and accepted: an IKE_AUTH request carrying
    # the initiator's AUTH answered by the responder's AUTH without a failure. With EAP (RFC 7296
    # §2.16) the responder's AUTH comes in the first round, the initiator's only in the last one,
    # after EAP-Success; an EAP-Failure (RFC 3748 §4.2) ends the exchange without it.
    auth_ok = False
    auth_failed = False
    for e in auth:
        if e.response is None:
            continue
        if e.response.decrypted:
            names = set(e.response.notifies)
            if "AUTH" in e.response.payloads:
                # errors about the CHILD SA do not prevent the IKE SA (RFC 7296 §2.21.2)
                names -= _CHILD_ONLY_ERRORS
            if names & fatal or any(
                isinstance(p, v2.EapPayload) and p.code == EapCode.FAILURE for p in e.response.inner
            ):
                auth_failed = True
            elif "AUTH" in e.response.payloads and (
                e.request is None or not e.request.decrypted or "AUTH" in e.request.payloads
            ):
                auth_ok = True
        elif e.response.payloads and "SK" not in e.response.payloads and "SKF" not in e.response.payloads:
            if set(e.response.notifies) & fatal:
                auth_failed = True
    # The initiator rejecting the responder's AUTH says so in a separate INFORMATIONAL after
    # IKE_AUTH (RFC 7296 §2.21.2): the responder's AUTH was sent but not accepted.
    for e in later:
        for m in e.all_messages():
            if m.decrypted and "AUTHENTICATION_FAILED" in m.notifies:
                auth_failed = True
                auth_ok = False
    if not ok_init and init:
        if any("REDIRECT" in e.response.notifies for e in init if e.response is not None):
            # RFC 5685 §3: the gateway hands the client to another one, a deliberate step
            sa.state = "redirected"
            return
        any_resp = any(e.response is not None for e in init)
        lost = any(e.unanswered and not _in_flight(e, end) for e in init)
        sa.state = "failed" if any_resp or lost else "incomplete"
        return
    if auth_failed:
        sa.state = "failed"  # a Delete that follows the failure does not make it a closed tunnel
    elif deleted:
        sa.state = "deleted"
    elif auth_ok:
        sa.state = "established"
    elif not init and not auth and sa.rekeyed_from is not None:
        # created by its parent's answered CREATE_CHILD_SA (RFC 7296 §1.3.2), which set it up:
        # it has no IKE_SA_INIT or IKE_AUTH of its own
        sa.state = "established"
        if sa.rekey_inferred:  # the link itself is from timing (no decrypted CREATE_CHILD_SA)
            sa.state_basis, sa.state_evidence = "inferred", _rekey_evidence(sa, by_key or {})
    elif (evidence := later_exchange_evidence(sa)) is not None:
        # AUTH not read, but only an established IKE SA has such exchanges (sa_state.py)
        sa.state, sa.state_basis, sa.state_evidence = "established", "inferred", evidence
    elif auth and all(e.unanswered and not _in_flight(e, end) for e in auth):
        sa.state = "failed"
    else:
        sa.state = "incomplete"


def _settle_v1(sa: IkeSaRecord, end: float | None = None) -> None:
    p1 = [e for e in sa.exchanges if e.message_id == 0]
    qm_done = any(e.type == "QUICK_MODE" and len(e.messages) >= 2 for e in sa.exchanges)
    deleted = any(
        e.type == "INFORMATIONAL" and any("D" in m.payloads for m in e.messages) for e in sa.exchanges
    )
    errors = bool(sa.error_notifies)
    phase1_msgs = sum(len(e.messages) for e in p1)
    p1_type = p1[0].type if p1 else ""
    complete = (
        qm_done
        or (p1_type == "MAIN_MODE" and phase1_msgs >= 6)
        or (p1_type == "AGGRESSIVE_MODE" and phase1_msgs >= 3)
    )
    if deleted and complete:
        sa.state = "deleted"
    elif complete:
        sa.state = "established"
        if not any(m.decrypted for e in sa.exchanges for m in e.messages):
            # the authenticating messages (Main Mode 5 and 6, Aggressive Mode 2 and 3) unread
            sa.state_basis = "inferred"
            sa.state_evidence = "Quick Mode answered" if qm_done else f"{p1_type} completed ({phase1_msgs} messages)"
    elif errors:
        sa.state = "failed"
    elif p1 and all(m.from_initiator for m in p1[0].messages) and not _in_flight(p1[0], end):
        sa.state = "failed"  # the responder never answered
    else:
        sa.state = "incomplete"
