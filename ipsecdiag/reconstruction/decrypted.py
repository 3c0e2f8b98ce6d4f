"""What a decrypted IKEv2 or IKEv1 exchange tells the reconstruction: the CHILD SA an IKE_AUTH or
CREATE_CHILD_SA created (or rekeyed), the IKE SA a CREATE_CHILD_SA rekeyed, the SAs a DELETE
ended. The decryptors only decrypt; the reconstructor records their results and calls this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..keys.rekey import exchange_from_payloads
from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.registry import ExchangeType, ProtocolId, V1EncapMode, V1IpsecAttr, V1ProtocolId, name_of
from .model import ChildSaRecord, ExchangeRecord, IkeSaRecord, MessageRecord
from .proposals import ipsec_transform_dict_v1, proposal_dict_v2

if TYPE_CHECKING:
    from .ike_sas import IkeReconstructor


def learn(ike: IkeReconstructor, sa: IkeSaRecord, m: MessageRecord) -> None:
    """Record what a decrypted IKEv2 response (with its decrypted request) says about the SA:
    the CHILD SA it created or rekeyed, the IKE SA it rekeyed, the SAs it deleted."""
    if not m.is_response:
        return
    ex = next((e for e in reversed(sa.exchanges) if e.response is m), None)
    if ex is None or ex.request is None or not ex.request.decrypted:
        # Request not decrypted (yet): nothing to pair.
        if ex is not None and ex.exchange_type == ExchangeType.INFORMATIONAL:
            _deletes(sa, m)
        return
    req = ex.request
    if ex.exchange_type in (ExchangeType.IKE_AUTH, ExchangeType.CREATE_CHILD_SA):
        _child_or_rekey(ike, sa, ex.exchange_type, req, m)
    _deletes(sa, req)

def _child_or_rekey(ike: IkeReconstructor, sa: IkeSaRecord, ex_type: int, req: MessageRecord, resp: MessageRecord) -> None:
    rsa = next((p for p in resp.inner if isinstance(p, v2.SaPayload)), None)
    qsa = next((p for p in req.inner if isinstance(p, v2.SaPayload)), None)
    if rsa is None or not rsa.proposals:
        return
    chosen = rsa.proposals[0]
    offered = None
    if qsa is not None:
        offered = next((p for p in qsa.proposals if p.number == chosen.number), None) or (
            qsa.proposals[0] if qsa.proposals else None
        )
    if chosen.protocol_id == ProtocolId.IKE:
        _ike_rekey(ike, sa, offered, chosen, resp)
        if ike.on_ike_rekey is not None and sa.spi_r is not None:
            rekey = exchange_from_payloads(
                sa.spi_i, sa.spi_r, req.inner, resp.inner, source=f"frames {req.first_frame}-{resp.first_frame}"
            )
            if rekey is not None:
                ike.on_ike_rekey(rekey)
        return
    notif = {n.name: n for n in req.inner if isinstance(n, v2.NotifyPayload)}
    rnotif = {n.name for n in resp.inner if isinstance(n, v2.NotifyPayload)}
    rekey_of = None
    if "REKEY_SA" in notif and len(notif["REKEY_SA"].spi) == 4:
        rekey_of = int.from_bytes(notif["REKEY_SA"].spi, "big")
    c = ChildSaRecord(
        spi_i=int.from_bytes(offered.spi, "big")
        if offered is not None and len(offered.spi) == 4
        else None,
        spi_r=int.from_bytes(chosen.spi, "big") if len(chosen.spi) == 4 else None,
        mode="transport"
        if "USE_TRANSPORT_MODE" in notif and "USE_TRANSPORT_MODE" in rnotif
        else "tunnel",
        proposal=proposal_dict_v2(chosen),
        protocol="AH" if chosen.protocol_id == ProtocolId.AH else "ESP",
        created_in=ExchangeType(ex_type).name,
        created_frame=resp.first_frame,
        rekey_of=rekey_of,
        ts_i=[
            s.display()
            for p in resp.inner
            if isinstance(p, v2.TsPayload) and p.payload_type == 44
            for s in p.selectors
        ],
        ts_r=[
            s.display()
            for p in resp.inner
            if isinstance(p, v2.TsPayload) and p.payload_type == 45
            for s in p.selectors
        ],
        esn=chosen_esn(chosen),
    )
    sa.child_sas.append(c)

def _ike_rekey(
    ike: IkeReconstructor, sa: IkeSaRecord, offered: v2.Proposal | None, chosen: v2.Proposal, resp: MessageRecord
) -> None:
    if offered is None or len(offered.spi) != 8 or len(chosen.spi) != 8:
        return
    new_key = f"{offered.spi.hex()}/{chosen.spi.hex()}"
    if new_key not in sa.rekeyed_to:
        sa.rekeyed_to.append(new_key)
    for other in ike.sas:
        if other.spi_i == offered.spi and other.spi_r == chosen.spi:
            other.rekeyed_from = sa.key
    ike.rekey_parents[(offered.spi, chosen.spi)] = sa

def _deletes(sa: IkeSaRecord, m: MessageRecord) -> None:
    for p in m.inner:
        if isinstance(p, v2.DeletePayload) and p.protocol_id == ProtocolId.IKE:
            for c in sa.child_sas:  # deleting the IKE SA ends its CHILD SAs (RFC 7296 §1.4.1)
                if c.deleted_frame is None:
                    c.deleted_frame = m.first_frame
        if isinstance(p, v2.DeletePayload) and p.protocol_id in (ProtocolId.ESP, ProtocolId.AH):
            for spi in p.spis:
                s = int.from_bytes(spi, "big")
                for c in sa.child_sas:
                    if s in (c.spi_i, c.spi_r) and c.deleted_frame is None:
                        c.deleted_frame = m.first_frame


def deletes_in_time_order(sa: IkeSaRecord) -> None:
    """End the CHILD SAs that a DELETE later in time ended although it came earlier in the
    capture. :func:`learn` and :func:`learn_v1` apply a DELETE when it is read, to the CHILD SAs
    known then; in a capture not in time order (merged files) an IKE SA's DELETE may be read
    before the IKE_AUTH or Quick Mode that created its CHILD SAs. Deleting an IKE SA deletes
    its CHILD SAs (RFC 7296 §1.4.1, RFC 2408 §4.8 for an ISAKMP SA)."""
    waiting = [c for c in sa.child_sas if c.deleted_frame is None]
    if not waiting:
        return
    events: list[tuple[float, int, bool, set[int]]] = []  # ts, frame, whole SA, SPIs ended
    for ex in sa.exchanges:
        if sa.version == 1:
            dels = [(m, m.inner) for m in ex.messages if m.decrypted]
        elif ex.response is None:
            continue  # learn() reads an exchange's deletes when its response arrives
        elif ex.request is not None and ex.request.decrypted:
            dels = [(ex.request, ex.request.inner)]
        else:
            dels = [(ex.response, ex.response.inner)] if ex.exchange_type == ExchangeType.INFORMATIONAL else []
        for m, inner in dels:
            whole, spis = False, set()
            for p in inner:
                if isinstance(p, v2.DeletePayload):
                    whole |= p.protocol_id == ProtocolId.IKE
                    if p.protocol_id in (ProtocolId.ESP, ProtocolId.AH):
                        spis |= {int.from_bytes(x, "big") for x in p.spis}
                elif isinstance(p, v1.V1DeletePayload):
                    whole |= p.protocol_id == V1ProtocolId.PROTO_ISAKMP
                    spis |= {int.from_bytes(x, "big") for x in p.spis if len(x) == 4}
            if whole or spis:
                events.append((m.ts, m.first_frame, whole, spis))
    if not events:
        return
    events.sort(key=lambda e: e[0])
    created = {f: m.ts for ex in sa.exchanges for m in ex.all_messages() for f in m.frames}
    for c in waiting:
        born = created.get(c.created_frame, float("-inf"))
        c.deleted_frame = next(
            (fr for ts, fr, whole, spis in events if ts >= born and (whole or spis & {c.spi_i, c.spi_r})), None
        )


def chosen_esn(p: v2.Proposal) -> bool | None:
    from ..wire.registry import TransformType

    vals = [t.id for t in p.transforms if t.type == TransformType.ESN]
    return bool(vals[0]) if vals else None


def learn_v1(sa: IkeSaRecord, ex: ExchangeRecord, m: MessageRecord) -> None:
    """Record what a decrypted IKEv1 message says: the IPsec SA a Quick Mode response
    created, the SAs a DELETE ended."""
    if ex.type == "QUICK_MODE" and m.from_initiator != ex.initiated_by_initiator:
        _child_from_quick_mode(sa, ex, m)
    for p in m.inner:
        if isinstance(p, v1.V1DeletePayload):
            gone = {int.from_bytes(x, "big") for x in p.spis if len(x) == 4}
            for c in sa.child_sas:
                ended = p.protocol_id == V1ProtocolId.PROTO_ISAKMP or gone & {c.spi_i, c.spi_r}
                if ended and c.deleted_frame is None:
                    c.deleted_frame = m.first_frame


def _child_from_quick_mode(sa: IkeSaRecord, ex: ExchangeRecord, resp: MessageRecord) -> None:
    """Quick Mode's first two messages carry each side's inbound SPI (RFC 2409 §5.5):
    the initiator's offer and the responder's chosen proposal, plus IDci/IDcr."""
    req = ex.request
    if req is None or not req.decrypted:
        return
    offer = next((p for p in req.inner if isinstance(p, v1.V1SaPayload)), None)
    chosen = next((p for p in resp.inner if isinstance(p, v1.V1SaPayload)), None)
    if offer is None or chosen is None or not chosen.proposals:
        return
    cp = chosen.proposals[0]
    op = next(
        (p for p in offer.proposals if p.number == cp.number and p.protocol_id == cp.protocol_id),
        offer.proposals[0] if offer.proposals else None,
    )
    if op is None or len(cp.spi) != 4 or len(op.spi) != 4:
        return
    t = cp.transforms[0] if cp.transforms else None
    mode = "tunnel"
    if t is not None:
        enc = next((a.int_value for a in t.attributes if a.type == V1IpsecAttr.ENCAPSULATION_MODE), None)
        if enc in (V1EncapMode.TRANSPORT, V1EncapMode.UDP_TRANSPORT, V1EncapMode.UDP_TRANSPORT_DRAFT):
            mode = "transport"
    ids = [p.display() for p in req.inner if isinstance(p, v1.V1IdPayload)]
    spi_i = int.from_bytes(op.spi, "big")
    if any(c.spi_i == spi_i for c in sa.child_sas):
        return  # the third Quick Mode message or a retransmission
    sa.child_sas.append(
        ChildSaRecord(
            spi_i=spi_i,
            spi_r=int.from_bytes(cp.spi, "big"),
            mode=mode,
            proposal=(
                ipsec_transform_dict_v1(cp.protocol_id, t)
                | {"summary": v1.v1_transform_summary(cp.protocol_id, t)}
                if t is not None
                else {"protocol": name_of(V1ProtocolId, cp.protocol_id), "summary": ""}
            ),
            protocol="AH" if cp.protocol_id == V1ProtocolId.PROTO_IPSEC_AH else "ESP",
            created_in="QUICK_MODE",
            created_frame=resp.first_frame,
            ts_i=ids[:1],
            ts_r=ids[1:2],
        )
    )
