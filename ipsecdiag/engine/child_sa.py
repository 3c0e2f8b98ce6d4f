"""CHILD SA negotiation pieces shared by IKE_AUTH and CREATE_CHILD_SA (RFC 7296 §1.3, §2.17).

* :func:`offer` builds our SA (ESP proposals carrying our inbound SPI), TSi and TSr.
* :func:`select` is the responder's choice: proposal, mode, narrowed selectors (§2.9), or a
  :class:`~ipsecdiag.engine.errors.Refuse` with NO_PROPOSAL_CHOSEN / TS_UNACCEPTABLE.
* :func:`accept` is the initiator's check of the answer.
* :func:`install` derives KEYMAT and records the :class:`ChildSa` (event ChildSaUp).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..crypto.prf import child_keymat
from ..keys.model import ChildSaKeys
from ..protocol.narrow import is_subset, narrow
from ..protocol.select import check_chosen, select_proposal, transform_of
from ..wire.ikev2 import Payload
from ..wire.ikev2_payloads import NotifyPayload
from ..wire.ikev2_sa import Proposal, SaPayload
from ..wire.ikev2_ts import TrafficSelector, TsPayload
from ..wire.registry import EsnId, NotifyType, PayloadType, ProtocolId, TransformType
from . import events as ev
from .config import ChildConfig, selector_for
from .errors import Refuse

if TYPE_CHECKING:
    from .ike_sa import IkeSa


@dataclass
class ChildSa:
    """An installed CHILD SA: ``spi_in`` is ours (inbound), ``spi_out`` the peer's."""

    spi_in: int
    spi_out: int
    proposal: Proposal
    keys_in: ChildSaKeys
    keys_out: ChildSaKeys
    ts_i: tuple[TrafficSelector, ...]
    ts_r: tuple[TrafficSelector, ...]
    mode: str
    esn: bool
    local_ts: tuple[TrafficSelector, ...] = ()  # our side, whoever initiated
    remote_ts: tuple[TrafficSelector, ...] = ()


def numbered(proposals: tuple[Proposal, ...], spi: bytes, *, keep_ke: bool) -> tuple[Proposal, ...]:
    """Our proposals as sent: numbered from 1, with our SPI; KE transforms only for
    CREATE_CHILD_SA (IKE_AUTH derives the first CHILD SA's keys without one, RFC 7296 §1.2)."""
    out = []
    for i, p in enumerate(proposals, 1):
        ts = p.transforms if keep_ke else tuple(t for t in p.transforms if t.type != TransformType.KE)
        out.append(Proposal(i, p.protocol_id, spi, ts))
    return tuple(out)


def ts_payloads(ts_i: tuple[TrafficSelector, ...], ts_r: tuple[TrafficSelector, ...]) -> list[Payload]:
    return [TsPayload(PayloadType.TSi, ts_i), TsPayload(PayloadType.TSr, ts_r)]


def requested_ts(payloads: list[Payload]) -> tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]]:
    tsi = next(p for p in payloads if isinstance(p, TsPayload) and p.which == PayloadType.TSi)
    tsr = next(p for p in payloads if isinstance(p, TsPayload) and p.which == PayloadType.TSr)
    return tsi.selectors, tsr.selectors


def payloads_of(payloads: tuple[Payload, ...], cls: type) -> list[Payload]:
    return [p for p in payloads if isinstance(p, cls)]


def notify_of(payloads: tuple[Payload, ...], ntype: int) -> NotifyPayload | None:
    return next((p for p in payloads if isinstance(p, NotifyPayload) and p.notify_type == ntype), None)


def ts_payload(payloads: tuple[Payload, ...], which: int) -> TsPayload | None:
    return next((p for p in payloads if isinstance(p, TsPayload) and p.which == which), None)


def vip_families(sa: IkeSa) -> tuple[int, ...]:
    """IP versions we ask a virtual IP for: configured, else the outer one."""
    return sa.config.virtual_ip_families or ((6,) if ":" in sa.remote.host else (4,))


def default_ts(
    sa: IkeSa, child: ChildConfig
) -> tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]]:
    """Our TSi/TSr (initiator view): configured, else our own address / the peer's address
    (strongSwan's ``dynamic``); with a virtual IP request, any address of our family for TSi."""
    anyv = {4: "0.0.0.0/0", 6: "::/0"}
    local = child.local_ts or (
        tuple(selector_for(anyv[f]) for f in vip_families(sa))
        if sa.config.request_virtual_ip
        else (selector_for(sa.local.host),)
    )
    remote = child.remote_ts or (selector_for(sa.remote.host),)
    return local, remote


def offer(sa: IkeSa, child: ChildConfig, spi: bytes, *, keep_ke: bool = False) -> list[Payload]:
    """SA, TSi, TSr for our request (mode notify first, as RFC 7296 §1.3.1 orders it)."""
    proposals = numbered(child.proposals, spi, keep_ke=keep_ke)
    tsi, tsr = default_ts(sa, child)
    out: list[Payload] = []
    if child.mode == "transport":
        out.append(NotifyPayload(0, b"", NotifyType.USE_TRANSPORT_MODE))
    out += [SaPayload(proposals), TsPayload(PayloadType.TSi, tsi), TsPayload(PayloadType.TSr, tsr)]
    return out


@dataclass(frozen=True)
class Selection:
    proposal: Proposal
    ts_i: tuple[TrafficSelector, ...]
    ts_r: tuple[TrafficSelector, ...]
    mode: str


def select(
    sa: IkeSa,
    payloads: tuple[Payload, ...],
    child: ChildConfig,
    our_spi: bytes,
    *,
    virtual_ip: str | None = None,
    keep_ke: bool = False,
    allowed: tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]] | None = None,
) -> Selection:
    """Responder: choose a proposal and narrow the selectors, or refuse (non-fatal notify)."""
    sa_p = next((p for p in payloads if isinstance(p, SaPayload)), None)
    tsi_p, tsr_p = ts_payload(payloads, PayloadType.TSi), ts_payload(payloads, PayloadType.TSr)
    if sa_p is None or tsi_p is None or tsr_p is None:
        raise Refuse(NotifyType.INVALID_SYNTAX, "CHILD SA request without SA, TSi or TSr")
    esp = [p for p in sa_p.proposals if p.protocol_id == ProtocolId.ESP]
    if any(len(p.spi) != 4 for p in esp):
        raise Refuse(NotifyType.INVALID_SYNTAX, "ESP proposal SPI is not 4 octets")
    if not keep_ke:
        esp = [
            Proposal(
                p.number, p.protocol_id, p.spi, tuple(t for t in p.transforms if t.type != TransformType.KE)
            )
            for p in esp
        ]
    chosen = select_proposal(esp, numbered(child.proposals, b"", keep_ke=keep_ke), spi=our_spi)
    if chosen is None:
        raise Refuse(NotifyType.NO_PROPOSAL_CHOSEN, "no ESP proposal in common", fatal=False)
    # Initiator's side (TSi) against what we allow as remote, ours (TSr) against our local.
    allowed_i = child.remote_ts or (selector_for(virtual_ip or sa.remote.host),)
    if virtual_ip is not None:
        allowed_i = narrow((selector_for(virtual_ip),), allowed_i)
    allowed_r = child.local_ts or (selector_for(sa.local.host),)
    if allowed is not None:  # a rekey keeps the old SA's selectors
        allowed_i, allowed_r = allowed
    ts_i, ts_r = narrow(tsi_p.selectors, allowed_i), narrow(tsr_p.selectors, allowed_r)
    if not ts_i or not ts_r:
        raise Refuse(
            NotifyType.TS_UNACCEPTABLE,
            f"requested TSi {tsi_p.display()} TSr {tsr_p.display()} outside the allowed selectors",
            fatal=False,
        )
    wants_transport = notify_of(payloads, NotifyType.USE_TRANSPORT_MODE) is not None
    mode = "transport" if wants_transport and child.mode == "transport" else "tunnel"
    return Selection(chosen, ts_i, ts_r, mode)


def answer(sel: Selection) -> list[Payload]:
    out: list[Payload] = []
    if sel.mode == "transport":
        out.append(NotifyPayload(0, b"", NotifyType.USE_TRANSPORT_MODE))
    out += [
        SaPayload((sel.proposal,)),
        TsPayload(PayloadType.TSi, sel.ts_i),
        TsPayload(PayloadType.TSr, sel.ts_r),
    ]
    return out


def accept(
    sa: IkeSa,
    payloads: tuple[Payload, ...],
    child: ChildConfig,
    requested: tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]],
    *,
    keep_ke: bool = False,
) -> Selection:
    """Initiator: the responder's CHILD SA answer, checked against our offer."""
    sa_p = next((p for p in payloads if isinstance(p, SaPayload)), None)
    tsi_p, tsr_p = ts_payload(payloads, PayloadType.TSi), ts_payload(payloads, PayloadType.TSr)
    if sa_p is None or tsi_p is None or tsr_p is None:
        raise Refuse(0, "CHILD SA answer without SA, TSi or TSr", respond=False)
    offered = numbered(child.proposals, b"", keep_ke=keep_ke)
    why = check_chosen(offered, sa_p.proposals)
    if why is None and len(sa_p.proposals[0].spi) != 4:
        why = "the chosen ESP proposal's SPI is not 4 octets"
    if why is not None:
        raise Refuse(NotifyType.NO_PROPOSAL_CHOSEN, f"unacceptable ESP answer: {why}", respond=False)
    if not is_subset(tsi_p.selectors, requested[0]) or not is_subset(tsr_p.selectors, requested[1]):
        raise Refuse(NotifyType.TS_UNACCEPTABLE, "the responder widened the traffic selectors", respond=False)
    transport = notify_of(payloads, NotifyType.USE_TRANSPORT_MODE) is not None
    return Selection(
        sa_p.proposals[0], tsi_p.selectors, tsr_p.selectors, "transport" if transport else "tunnel"
    )


def install(
    sa: IkeSa,
    sel: Selection,
    *,
    spi_in: bytes,
    spi_out: bytes,
    ni: bytes,
    nr: bytes,
    shared_secret: bytes = b"",
    rekey_of: int | None = None,
    initiated: bool | None = None,
) -> ChildSa:
    """Derive KEYMAT (RFC 7296 §2.17) and record the CHILD SA; emits ChildSaUp."""
    keys = sa.keys
    assert keys is not None and keys.prf is not None
    p = sel.proposal
    encr = transform_of(p, TransformType.ENCR)
    integ = transform_of(p, TransformType.INTEG)
    esn_t = transform_of(p, TransformType.ESN)
    assert encr is not None
    esn = esn_t is not None and esn_t.id == EsnId.EXT_SEQ
    integ_id = integ.id if integ is not None else 0
    km = child_keymat(
        prf_id=keys.prf,
        sk_d=keys.sk_d.reveal(),
        ni=ni,
        nr=nr,
        encr_id=encr.id,
        integ_id=integ_id,
        encr_key_bits=encr.key_length,
        shared_secret=shared_secret,
    )
    # The first half of KEYMAT protects initiator -> responder traffic (§2.17).
    i_to_r = (km.encr_i, km.integ_i)
    r_to_i = (km.encr_r, km.integ_r)
    # "Initiator" is the side that sent this exchange's request (IKE_AUTH: the IKE initiator).
    we_initiated = sa.is_initiator if initiated is None else initiated
    ours_in, ours_out = (r_to_i, i_to_r) if we_initiated else (i_to_r, r_to_i)
    src_in, dst_in = sa.remote.host, sa.local.host
    common = {
        "encr": encr.id,
        "integ": integ_id,
        "encr_key_bits": encr.key_length,
        "esn": esn,
        "mode": sel.mode,
        "source": "negotiated by ipsecdiag",
    }
    k_in = ChildSaKeys(
        spi=int.from_bytes(spi_in, "big"),
        encr_key=ours_in[0],
        integ_key=ours_in[1],
        src=src_in,
        dst=dst_in,
        **common,
    )  # type: ignore[arg-type]
    k_out = ChildSaKeys(
        spi=int.from_bytes(spi_out, "big"),
        encr_key=ours_out[0],
        integ_key=ours_out[1],
        src=dst_in,
        dst=src_in,
        **common,
    )  # type: ignore[arg-type]
    local_ts, remote_ts = (sel.ts_i, sel.ts_r) if we_initiated else (sel.ts_r, sel.ts_i)
    child = ChildSa(
        k_in.spi, k_out.spi, p, k_in, k_out, sel.ts_i, sel.ts_r, sel.mode, esn, local_ts, remote_ts
    )
    sa.child_sas[child.spi_in] = child
    sa.schedule_child_rekey(child.spi_in)
    sa.emit(
        ev.ChildSaUp(
            child.spi_in,
            child.spi_out,
            k_in,
            k_out,
            sel.ts_i,
            sel.ts_r,
            sel.mode,
            sa.encap,
            esn,
            p,
            sa.neg.virtual_ips,
            rekey_of,
        )
    )
    return child
