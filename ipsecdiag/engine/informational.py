"""INFORMATIONAL exchanges (RFC 7296 §1.4, §1.5, §2.4, §3.11): liveness, Delete, notifies.

Deleting a CHILD SA: the request lists our inbound SPIs; the answer lists the peer's inbound
SPIs of the same pairs (§1.4.1). Deleting the IKE SA: Delete(IKE) with no SPIs, answered with
an empty INFORMATIONAL; it takes every CHILD SA with it. An empty request is a liveness check
and gets an empty answer. An error notify in a request about the IKE SA (e.g.
AUTHENTICATION_FAILED after our IKE_AUTH) ends it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire.ikev2 import IkeHeader, Payload
from ..wire.ikev2_payloads import DeletePayload, NotifyPayload
from ..wire.registry import ExchangeType, NotifyType, ProtocolId
from . import events as ev
from .config import Endpoint
from .errors import Refuse
from .state import State, Trigger
from .window import RequestContext

if TYPE_CHECKING:
    from .ike_sa import IkeSa

_X = ExchangeType.INFORMATIONAL


def start_delete_ike(sa: IkeSa, now: float) -> None:
    sa.send_request(_X, [DeletePayload(ProtocolId.IKE, 0, ())], now, RequestContext(kind="delete-ike"))
    if sa.state is State.ESTABLISHED:
        sa.transition(Trigger.DELETE_SENT)


def start_delete_child(sa: IkeSa, spi_in: int, now: float) -> None:
    child = sa.child_sas.get(spi_in)
    if child is None:
        raise ValueError(f"no CHILD SA with inbound SPI {spi_in:08x}")
    sa.send_request(
        _X,
        [DeletePayload(ProtocolId.ESP, 4, (spi_in.to_bytes(4, "big"),))],
        now,
        RequestContext(kind="delete-child", spi_in=spi_in),
    )


def start_liveness(sa: IkeSa, now: float) -> None:
    sa.send_request(_X, [], now, RequestContext(kind="liveness"))


def handle_request(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, dst: Endpoint, now: float
) -> None:
    deletes = [p for p in payloads if isinstance(p, DeletePayload)]
    notes = [p for p in payloads if isinstance(p, NotifyPayload)]
    sa.emit(ev.InformationalReceived(tuple(n.name for n in notes), len(deletes)))
    if any(d.protocol_id == ProtocolId.IKE for d in deletes):
        sa.send_response(_X, h.message_id, [], src, dst)
        sa.close("the peer deleted the IKE SA", by_peer=True)
        return
    fatal = next(
        (
            n
            for n in notes
            if n.is_error and n.notify_type in (NotifyType.AUTHENTICATION_FAILED, NotifyType.INVALID_SYNTAX)
        ),
        None,
    )
    answer: list[Payload] = []
    ours: list[bytes] = []
    for d in deletes:
        if d.protocol_id not in (ProtocolId.ESP, ProtocolId.AH):
            continue
        for spi in d.spis:
            peer_spi = int.from_bytes(spi, "big")
            child = next((c for c in sa.child_sas.values() if c.spi_out == peer_spi), None)
            if child is None:
                continue  # already gone (simultaneous delete, §1.4.1): nothing to list
            del sa.child_sas[child.spi_in]
            ours.append(child.spi_in.to_bytes(4, "big"))
            sa.emit(ev.ChildSaDeleted(child.spi_in, child.spi_out, by_peer=True))
    if ours:
        answer.append(DeletePayload(ProtocolId.ESP, 4, tuple(ours)))
    sa.send_response(_X, h.message_id, answer, src, dst)
    if fatal is not None:
        raise Refuse(
            fatal.notify_type,
            f"the peer reported {fatal.name}",
            fault="ours",
            received=True,
            respond=False,
            fatal=True,
        )


def handle_response(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, now: float, context: RequestContext
) -> None:
    kind = context.get("kind")
    if kind == "delete-ike":
        sa.close("IKE SA deleted", by_peer=False)
        return
    if kind == "delete-child":
        child = sa.child_sas.pop(context["spi_in"], None)
        if child is not None:
            sa.emit(ev.ChildSaDeleted(child.spi_in, child.spi_out, by_peer=False))
    errors = [p for p in payloads if isinstance(p, NotifyPayload) and p.is_error]
    if errors:
        e = errors[0]
        raise Refuse(
            e.notify_type, f"INFORMATIONAL answered with {e.name}", fault="ours", received=True, respond=False
        )
