"""The records the IKE pass (ike_sas.py) builds: a message's record and its transmissions from
the datagrams that carried it, what the SA's record takes from the payloads (proposals, vendor
ids, error notifies), and copies of an SA's records for a snapshot taken mid-pass.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import fields
from typing import TypeVar

from ..capture.model import IkeDatagram
from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.registry import ExchangeType
from .model import IkeSaRecord, MessageRecord, Transmission
from .proposals import proposal_dict_v1, proposal_dict_v2, proposal_dicts_v1_all

_R = TypeVar("_R")

ZERO_SPI = bytes(8)


def _message_record(d: IkeDatagram, size: int, is_response: bool, from_initiator: bool) -> MessageRecord:
    """A message's record with its first transmission, addressed as the datagram ``d``."""
    rec = MessageRecord(
        src=d.src,
        dst=d.dst,
        sport=d.sport,
        dport=d.dport,
        size=size,
        is_response=is_response,
        from_initiator=from_initiator,
        non_esp_marker=d.non_esp_marker,
        transport=d.transport,
    )
    rec.transmissions.append(_transmission(d))
    return rec


def _transmission(d: IkeDatagram) -> Transmission:
    return Transmission(d.frames, d.ts, d.ip_len, d.ip_fragments)


def _extend(t: Transmission, d: IkeDatagram) -> Transmission:
    # One more RFC 7383 fragment: ip_fragments stays per datagram (the most any of them needed),
    # so separate IKE fragments are not mistaken for IP fragmentation.
    return Transmission(t.frames + d.frames, t.ts, t.ip_len + d.ip_len, max(t.ip_fragments, d.ip_fragments))



def _note_v2(sa: IkeSaRecord, rec: MessageRecord, msg: v2.IkeMessage) -> None:
    """Facts visible in clear payloads: proposals, vendor ids, error notifies."""
    h = msg.header
    for p in msg.payloads:
        if isinstance(p, v2.VendorIdPayload):
            name = _vendor_name(p.data)
            if name not in sa.vendor_ids:
                sa.vendor_ids.append(name)
    if h.exchange_type == ExchangeType.IKE_SA_INIT:
        sa_p = next((p for p in msg.payloads if isinstance(p, v2.SaPayload)), None)
        if sa_p is not None:
            props = [proposal_dict_v2(p) for p in sa_p.proposals]
            if h.is_response and props:
                sa.proposal = props[0]
            elif not h.is_response:
                sa.offered = props
    note_error_notifies(sa, msg.payloads)


def _note_v1(sa: IkeSaRecord, rec: MessageRecord, msg: v1.V1Message) -> None:
    for p in msg.payloads:
        if isinstance(p, v1.V1VendorIdPayload):
            name = _vendor_name(p.data)
            if name not in sa.vendor_ids:
                sa.vendor_ids.append(name)
        elif isinstance(p, v1.V1SaPayload) and msg.header.message_id == 0:
            props = [proposal_dict_v1(pp) for pp in p.proposals]
            if not rec.from_initiator and props:
                sa.proposal = props[0]
            elif rec.from_initiator and not sa.offered:
                sa.offered = [o for pp in p.proposals for o in proposal_dicts_v1_all(pp)]
    note_error_notifies(sa, msg.payloads)


def _vendor_name(data: bytes) -> str:
    from ..wire.vendors import identify_vendor

    return identify_vendor(data) or f"unknown ({data[:16].hex()}{'…' if len(data) > 16 else ''})"


def note_error_notifies(sa: IkeSaRecord, payloads: Iterable[object]) -> None:
    """Record the SA's error notifies (IKEv1 or IKEv2 Notify payloads, clear or decrypted)."""
    for p in payloads:
        if (
            isinstance(p, v2.NotifyPayload | v1.V1NotifyPayload)
            and p.is_error
            and p.name not in sa.error_notifies
        ):
            sa.error_notifies.append(p.name)




def _copied(obj: _R) -> _R:
    """A shallow copy whose list, dict and set fields are copies too."""
    new = copy.copy(obj)
    for f in fields(new):  # type: ignore[arg-type]
        v = getattr(new, f.name)
        if isinstance(v, list | dict | set):
            setattr(new, f.name, type(v)(v))
    return new


def _copy_sa(sa: IkeSaRecord) -> IkeSaRecord:
    new = _copied(sa)
    msgs: dict[int, MessageRecord] = {}

    def m(rec: MessageRecord | None) -> MessageRecord | None:
        if rec is None:
            return None
        if id(rec) not in msgs:
            msgs[id(rec)] = _copied(rec)
        return msgs[id(rec)]

    exchanges = []
    for ex in sa.exchanges:
        e = _copied(ex)
        e.request, e.response = m(ex.request), m(ex.response)
        e.messages = [m(x) for x in ex.messages]  # type: ignore[misc]
        exchanges.append(e)
    new.exchanges = exchanges
    new.child_sas = [_copied(c) for c in sa.child_sas]
    return new
