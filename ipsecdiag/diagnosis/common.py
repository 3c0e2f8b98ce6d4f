"""Helpers the checks share (a check module imports no other check): who sent a message, where
it sits, its payloads, the notifies that reject authentication, Quick Modes before a message,
the CHILD SA of an SPI, the proposals in a message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from ..protocol.suites import Suite, suites_from_v1, suites_from_v2
from ..reconstruction.model import ChildSaRecord, ExchangeRecord, IkeSaRecord, MessageRecord, Report
from ..wire import ikev1 as v1
from ..wire import ikev2 as v2

_P = TypeVar("_P")


def peer(m: MessageRecord) -> str:
    return f"{m.src}:{m.sport}"


def role(m: MessageRecord) -> str:
    return "initiator" if m.from_initiator else "responder"


def who(m: MessageRecord) -> str:
    """``the responder (198.51.100.2:4500)``: the role in the IKE SA and the address."""
    return f"the {role(m)} ({peer(m)})"


def sentence(text: str) -> str:
    """``text`` with its first letter capitalised (explanations often start with :func:`who`)."""
    return text[:1].upper() + text[1:]


def where(ex: ExchangeRecord) -> str:
    return f"{ex.type} (message id {ex.message_id})"


def payloads_of(m: MessageRecord | None, *classes: type[_P]) -> list[_P]:
    """Outer and decrypted payloads of the given classes, in message order."""
    if m is None:
        return []
    return [p for p in m.all_payloads() if isinstance(p, classes)]


def first_of(m: MessageRecord | None, *classes: type[_P]) -> _P | None:
    found = payloads_of(m, *classes)
    return found[0] if found else None


def notifies_named(m: MessageRecord | None, name: str) -> list[v2.NotifyPayload | v1.V1NotifyPayload]:
    """Notify payload objects (IKEv2 or IKEv1) with this IANA name, outer and decrypted."""
    return [p for p in payloads_of(m, v2.NotifyPayload, v1.V1NotifyPayload) if p.name == name]


def exchanges_with(sa: IkeSaRecord) -> Iterator[tuple[ExchangeRecord, MessageRecord]]:
    for ex in sa.exchanges:
        for m in ex.all_messages():
            yield ex, m


def same_peers(a: IkeSaRecord, b: IkeSaRecord) -> bool:
    """Two IKE SAs between the same two hosts, in either direction (ports may float)."""
    return {a.initiator[0], a.responder[0]} == {b.initiator[0], b.responder[0]}


def hidden(m: MessageRecord | None) -> bool:
    """An encrypted message whose contents we could not read."""
    return m is not None and m.encrypted and not m.decrypted


def frames_of(*msgs: MessageRecord | None) -> list[int]:
    out: list[int] = []
    for m in msgs:
        if m is not None:
            out.extend(m.frames)
    return out


def sa_label(sa: IkeSaRecord) -> str:
    return f"IKEv{sa.version} SA {sa.key}"


# Notifies that reject authentication (IKEv2: RFC 7296 §3.10.1; IKEv1: RFC 2408 §3.14.1).
AUTH_NOTIFIES_V2 = frozenset({"AUTHENTICATION_FAILED"})
AUTH_NOTIFIES_V1 = frozenset({"AUTHENTICATION_FAILED", "INVALID_HASH_INFORMATION", "INVALID_SIGNATURE"})


def quick_modes_before(sa: IkeSaRecord, m: MessageRecord) -> list[ExchangeRecord]:
    """IKEv1 Quick Mode exchanges that started before ``m`` (a notify about phase 2 follows one)."""
    return [e for e in sa.exchanges if e.type == "QUICK_MODE" and e.messages and e.first_ts <= m.ts]


def child_spis(report: Report) -> dict[int, tuple[IkeSaRecord, ChildSaRecord]]:
    out: dict[int, tuple[IkeSaRecord, ChildSaRecord]] = {}
    for sa in report.ike_sas:
        for c in sa.child_sas:
            for spi in (c.spi_i, c.spi_r):
                if spi is not None:
                    out[spi] = (sa, c)
    return out


def message_suites(m: MessageRecord | None) -> list[Suite]:
    """Proposals in a message's SA payloads (IKEv2 or IKEv1, outer or decrypted)."""
    out: list[Suite] = []
    for p in payloads_of(m, v2.SaPayload, v1.V1SaPayload):
        out += suites_from_v2(p) if isinstance(p, v2.SaPayload) else suites_from_v1(p)
    return out
