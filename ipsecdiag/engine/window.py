"""Message ids, the request window (size 1) and retransmission (RFC 7296 §2.1-§2.3).

We keep one request outstanding at a time and never announce a larger window
(SET_WINDOW_SIZE), so the peer may not send us more than one either. Requests the caller asks
for while one is outstanding wait in order. Our last response is kept with its message id:
a retransmitted request gets exactly the same datagrams again (§2.1), never a new answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import Endpoint, RetransmitPolicy


@dataclass(frozen=True)
class Datagram:
    """One UDP payload to send (non-ESP marker included on the NAT-T port)."""

    payload: bytes
    src: Endpoint
    dst: Endpoint


@dataclass
class Outstanding:
    """Our request in flight: what to resend and when, and what it was for."""

    exchange: int
    message_id: int
    datagrams: list[Datagram]
    policy: RetransmitPolicy
    sent_at: float
    context: dict[str, Any] = field(default_factory=dict)
    sent_count: int = 1

    @property
    def next_due(self) -> float:
        return self.sent_at + self.policy.delay(self.sent_count)

    @property
    def exhausted(self) -> bool:
        """True once the last retransmission's wait has run out too."""
        return self.sent_count > self.policy.tries


@dataclass
class CachedResponse:
    message_id: int
    exchange: int
    datagrams: list[Datagram]
    resent: int = 0


@dataclass
class PendingRequest:
    """A request the caller asked for while another was outstanding."""

    start: Callable[[float], None]
    label: str
