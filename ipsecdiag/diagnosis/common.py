"""Small helpers the IKE-level checks share: who sent a message, where it sits, its payloads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..reconstruction.model import ExchangeRecord, IkeSaRecord, MessageRecord
from ..wire import ikev1 as v1
from ..wire import ikev2 as v2


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


def payloads_of(m: MessageRecord | None, *classes: type) -> list[Any]:
    """Outer and decrypted payloads of the given classes, in message order."""
    if m is None:
        return []
    return [p for p in m.all_payloads() if isinstance(p, classes)]


def first_of(m: MessageRecord | None, *classes: type) -> Any:
    found = payloads_of(m, *classes)
    return found[0] if found else None


def notifies_named(m: MessageRecord | None, name: str) -> list[Any]:
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
