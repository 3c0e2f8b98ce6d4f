"""Build small synthetic Reports for check unit tests: messages, exchanges, IKE SAs.

The records look like what the reconstructor makes: ``parsed`` carries the outer payloads,
``inner`` the decrypted ones, and ``payloads``/``notifies`` name both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ipsecdiag.diagnosis.base import Check, CheckContext
from ipsecdiag.pipeline import rank_findings
from ipsecdiag.reconstruction.model import (
    ExchangeRecord,
    Finding,
    IkeSaRecord,
    MessageRecord,
    Report,
    Transmission,
)
from ipsecdiag.reconstruction.options import AnalysisOptions
from ipsecdiag.wire import ikev1 as v1
from ipsecdiag.wire import ikev2 as v2
from ipsecdiag.wire.ikev2_sa import Proposal, SaPayload, Transform, TransformAttribute
from ipsecdiag.wire.ikev2_ts import TrafficSelector, TsPayload
from ipsecdiag.wire.registry import ExchangeType, NotifyType, ProtocolId, TransformType, V1NotifyType

INIT = ("192.0.2.2", 500)
RESP = ("198.51.100.2", 500)

_EX_TYPES = {
    "IKE_SA_INIT": ExchangeType.IKE_SA_INIT,
    "IKE_AUTH": ExchangeType.IKE_AUTH,
    "CREATE_CHILD_SA": ExchangeType.CREATE_CHILD_SA,
    "INFORMATIONAL": ExchangeType.INFORMATIONAL,
    "MAIN_MODE": 2,
    "AGGRESSIVE_MODE": 4,
    "INFORMATIONAL_V1": 5,
    "QUICK_MODE": 32,
}


@dataclass(frozen=True)
class _Parsed:
    payloads: tuple[Any, ...]


def _names(payloads: Iterable[Any], version: int) -> tuple[list[str], list[str]]:
    ps = list(payloads)
    if version == 1:
        return v1.v1_payload_names(ps), v1.v1_notify_names(ps)
    return v2.payload_names(ps), v2.notify_names(ps)


def msg(
    *,
    from_initiator: bool = True,
    response: bool = False,
    payloads: Sequence[Any] = (),
    inner: Sequence[Any] | None = None,
    frame: int = 1,
    ts: float = 0.0,
    resend: Sequence[tuple[int, float]] = (),
    size: int = 200,
    natt: bool = False,
    version: int = 2,
    src: tuple[str, int] | None = None,
    dst: tuple[str, int] | None = None,
) -> MessageRecord:
    """A message; ``inner`` makes it encrypted-and-decrypted (``None``: cleartext).

    ``resend`` adds retransmissions as (frame, time) pairs.
    """
    a, b = (INIT, RESP) if from_initiator else (RESP, INIT)
    a, b = src or a, dst or b
    port = 4500 if natt else a[1]
    m = MessageRecord(
        src=a[0],
        dst=b[0],
        sport=port,
        dport=4500 if natt else b[1],
        size=size,
        is_response=response,
        from_initiator=from_initiator,
    )
    m.transmissions.append(Transmission((frame,), ts, size + 28, 1))
    for f, t in resend:
        m.transmissions.append(Transmission((f,), t, size + 28, 1))
    outer = list(payloads)
    m.payloads, m.notifies = _names(outer, version)
    if inner is not None:
        m.encrypted = True
        m.decrypted = True
        m.inner = tuple(inner)
        if version == 2:
            outer_names = ["SK"]
        else:
            outer_names = []
        names, notes = _names(inner, version)
        m.payloads = m.payloads + outer_names + names
        m.notifies = m.notifies + notes
    m.parsed = _Parsed(tuple(outer))
    return m


def hidden_msg(**kw: Any) -> MessageRecord:
    """An encrypted message without keys."""
    m = msg(**kw)
    m.encrypted = True
    m.decrypted = None
    m.payloads = m.payloads + ["SK"]
    return m


def exchange(
    kind: str,
    mid: int,
    request: MessageRecord | None,
    response: MessageRecord | None = None,
    *,
    by_initiator: bool = True,
    messages: Sequence[MessageRecord] | None = None,
) -> ExchangeRecord:
    if messages is not None:
        ex = ExchangeRecord(
            type="INFORMATIONAL" if kind == "INFORMATIONAL_V1" else kind,
            exchange_type=int(_EX_TYPES[kind]),
            message_id=mid,
            messages=list(messages),
            version=1,
            initiated_by_initiator=by_initiator,
        )
        ex.request = messages[0] if messages else None
        ex.response = next((m for m in messages if m.from_initiator != by_initiator), None)
        return ex
    return ExchangeRecord(
        type=kind,
        exchange_type=int(_EX_TYPES[kind]),
        message_id=mid,
        request=request,
        response=response,
        initiated_by_initiator=by_initiator,
    )


def ike_sa(
    *exchanges: ExchangeRecord,
    version: int = 2,
    spi_i: bytes = b"\x11" * 8,
    spi_r: bytes | None = b"\x22" * 8,
    state: str = "established",
    initiator: tuple[str, int] = INIT,
    responder: tuple[str, int] = RESP,
    proposal: dict[str, Any] | None = None,
) -> IkeSaRecord:
    sa = IkeSaRecord(
        version=version, spi_i=spi_i, spi_r=spi_r, initiator=initiator, responder=responder, state=state
    )
    sa.exchanges = list(exchanges)
    sa.proposal = proposal
    limit = 16384
    for e in exchanges:
        for m in e.all_messages():
            for n in m.notifies:
                enum = V1NotifyType if version == 1 else NotifyType
                try:
                    err = enum[n] < limit
                except KeyError:
                    err = False
                if err and n not in sa.error_notifies:
                    sa.error_notifies.append(n)
    return sa


def report(*sas: IkeSaRecord, last_ts: float | None = None) -> Report:
    r = Report()
    r.ike_sas = list(sas)
    ts = [t.ts for sa in sas for e in sa.exchanges for m in e.all_messages() for t in m.transmissions]
    r.source.first_ts = min(ts, default=0.0)
    r.source.last_ts = last_ts if last_ts is not None else max(ts, default=0.0)
    return r


def run(check: Check, r: Report, **options: Any) -> list[Finding]:
    return rank_findings(list(check.run(CheckContext(report=r, options=AnalysisOptions(**options)))))


# -- payloads ------------------------------------------------------------------------------


def transform(ttype: int, tid: int, bits: int | None = None) -> Transform:
    attrs = (TransformAttribute(14, bits),) if bits else ()
    return Transform(ttype, tid, attrs)


def proposal(
    *transforms: Transform, protocol: int = ProtocolId.IKE, number: int = 1, spi: bytes = b""
) -> Proposal:
    return Proposal(number, protocol, spi, tuple(transforms))


def sa_payload(*proposals: Proposal) -> SaPayload:
    return SaPayload(tuple(proposals))


def notify(kind: str, data: bytes = b"", *, protocol: int = 0, spi: bytes = b"") -> v2.NotifyPayload:
    return v2.NotifyPayload(protocol, spi, int(NotifyType[kind]), data)


def v1_notify(kind: str, *, protocol: int = 1, spi: bytes = b"", data: bytes = b"") -> Any:
    return v1.V1NotifyPayload(1, protocol, spi, int(V1NotifyType[kind]), data)


def ts(
    which: str, *ranges: tuple[str, str], proto: int = 0, ports: tuple[int, int] = (0, 0xFFFF)
) -> TsPayload:
    import ipaddress

    sels = []
    for a, b in ranges:
        sa_, sb = ipaddress.ip_address(a), ipaddress.ip_address(b)
        sels.append(
            TrafficSelector(7 if sa_.version == 4 else 8, proto, ports[0], ports[1], sa_.packed, sb.packed)
        )
    return TsPayload(44 if which == "TSi" else 45, tuple(sels))


TE, TI, TP, TK, TN = (
    TransformType.ENCR,
    TransformType.INTEG,
    TransformType.PRF,
    TransformType.KE,
    TransformType.ESN,
)
