"""What a decrypted IKEv2 exchange tells the reconstruction: the CHILD SA an IKE_AUTH or
CREATE_CHILD_SA created (or rekeyed), the IKE SA a CREATE_CHILD_SA rekeyed, the SAs a DELETE
ended. The decryptors only decrypt; the reconstructor records their results and calls this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire import ikev2 as v2
from ..wire.registry import ExchangeType, ProtocolId
from .model import ChildSaRecord, IkeSaRecord, MessageRecord
from .proposals import proposal_dict_v2

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


def chosen_esn(p: v2.Proposal) -> bool | None:
    from ..wire.registry import TransformType

    vals = [t.id for t in p.transforms if t.type == TransformType.ESN]
    return bool(vals[0]) if vals else None
