"""Message ids, the request window (size 1) and retransmission (RFC 7296 §2.1-§2.3).

We keep one request outstanding at a time and never announce a larger window
(SET_WINDOW_SIZE), so the peer may not send us more than one either. Requests the caller asks
for while one is outstanding wait in order. Our last response is kept with its message id:
a retransmitted request gets exactly the same datagrams again (§2.1), never a new answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

from .config import Endpoint, RetransmitPolicy

if TYPE_CHECKING:
    from ..crypto.ke import KeyExchange
    from ..wire.ikev2_ts import TrafficSelector
    from .config import ChildConfig

    SelectorPair = tuple[tuple[TrafficSelector, ...], tuple[TrafficSelector, ...]]


class RequestContext(TypedDict, total=False):
    """What an outstanding request was for; read back by its response handler."""

    kind: str  # "child", "ike", "delete-ike", "delete-child", "liveness"
    restart: PendingRequest  # to run again on the new SA if this one is rekeyed away
    requested_ts: SelectorPair  # IKE_AUTH: the selectors we asked for (TSi, TSr)
    requested: SelectorPair  # CREATE_CHILD_SA: the same
    spi: bytes  # our proposed SPI (inbound CHILD SA SPI or new IKE SPI)
    spi_in: int  # Delete(ESP): the CHILD SA deleted
    ni: bytes
    ke: KeyExchange | None
    group: int | None
    cfg: ChildConfig
    rekey_of: int | None
    retries: int
    blob: bytes  # IKE_INTERMEDIATE: the IntAuth data of our request


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
    context: RequestContext = field(default_factory=lambda: RequestContext())
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
