"""What an :class:`~ipsecdiag.engine.ike_sa.IkeSa` tells its caller (``next_event()``).

Frozen dataclasses, one per thing that happened, in the order it happened. Fields are data the
caller can print or act on; keys are :class:`~ipsecdiag.keys.model.SecretBytes` records.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..keys.model import ChildSaKeys, IkeSaKeys
from ..wire.ikev2_sa import Proposal
from ..wire.ikev2_ts import TrafficSelector
from .config import Endpoint, Identity

__all__ = [
    "Authenticated",
    "ChildSaDeleted",
    "ChildSaRekeyed",
    "CertificateInvalid",
    "ChildSaUp",
    "CookieRequested",
    "EspReceived",
    "Event",
    "HalfOpenExpired",
    "IkeSaDeleted",
    "IkeSaInitDone",
    "IkeSaRekeyed",
    "InformationalReceived",
    "KeRetry",
    "MessageDropped",
    "ProtocolError",
    "Received",
    "Redirected",
    "Sent",
    "Timeout",
]


@dataclass(frozen=True)
class Event:
    """Base class of every engine event."""


@dataclass(frozen=True)
class Sent(Event):
    """A message left (``retransmission`` 0 = first send; ``fragments`` > 1 with RFC 7383)."""

    exchange: str
    message_id: int
    is_response: bool
    retransmission: int
    size: int
    fragments: int = 1


@dataclass(frozen=True)
class Received(Event):
    """A message was accepted (decrypted and reassembled when protected)."""

    exchange: str
    message_id: int
    is_response: bool
    payloads: tuple[str, ...]
    notifies: tuple[str, ...]


@dataclass(frozen=True)
class MessageDropped(Event):
    """A datagram was discarded without an answer (RFC 7296 §2.21.1 and friends); counted."""

    reason: str


@dataclass(frozen=True)
class CookieRequested(Event):
    """The responder asked for a cookie (initiator) / we asked for one (responder)."""

    cookie_len: int
    sent_by_us: bool = False


@dataclass(frozen=True)
class KeRetry(Event):
    """INVALID_KE_PAYLOAD: the responder wants ``requested_group`` (we retry with it, or we sent it)."""

    requested_group: int
    offered_group: int
    sent_by_us: bool = False


@dataclass(frozen=True)
class Redirected(Event):
    """REDIRECT (RFC 5685): ``to`` is where we go next (``followed`` False when not allowed)."""

    to: str
    followed: bool
    new_remote: Endpoint | None = None


@dataclass(frozen=True)
class IkeSaInitDone(Event):
    """IKE_SA_INIT succeeded and the IKE SA keys are derived.

    ``nat_local``: we are behind a NAT (the peer saw another address than ours);
    ``nat_remote``: the peer is. ``encap`` is True when later traffic moves to UDP 4500 (a NAT,
    or forced). ``notifies`` are the names of the status notifies the peer sent.
    """

    chosen: Proposal
    ke_group: int
    keys: IkeSaKeys
    nat_local: bool
    nat_remote: bool
    encap: bool
    fragmentation: bool
    peer_signature_hashes: tuple[int, ...]
    peer_vendor_ids: tuple[bytes, ...]
    notifies: tuple[str, ...]


@dataclass(frozen=True)
class Authenticated(Event):
    """The peer proved its identity (IKE_AUTH done; the IKE SA is established)."""

    peer_id: Identity
    peer_id_text: str
    auth_method: int
    peer_certs: tuple[bytes, ...]


@dataclass(frozen=True)
class ChildSaUp(Event):
    """A CHILD SA is installed: ``spi_in`` is ours (the peer sends with it), ``spi_out`` the peer's."""

    spi_in: int
    spi_out: int
    keys_in: ChildSaKeys
    keys_out: ChildSaKeys
    ts_i: tuple[TrafficSelector, ...]
    ts_r: tuple[TrafficSelector, ...]
    mode: str
    encap: bool
    esn: bool
    proposal: Proposal
    virtual_ips: tuple[str, ...] = ()
    rekey_of: int | None = None  # our inbound SPI of the CHILD SA this one replaces


@dataclass(frozen=True)
class ChildSaDeleted(Event):
    spi_in: int
    spi_out: int
    by_peer: bool


@dataclass(frozen=True)
class ChildSaRekeyed(Event):
    old_spi_in: int
    new_spi_in: int


@dataclass(frozen=True)
class IkeSaRekeyed(Event):
    """The IKE SA was replaced; the IkeSa object continues with ``keys`` (new SPIs)."""

    old_spi_i: bytes
    old_spi_r: bytes
    keys: IkeSaKeys


@dataclass(frozen=True)
class InformationalReceived(Event):
    """An INFORMATIONAL request (liveness when ``notifies`` and ``deletes`` are empty)."""

    notifies: tuple[str, ...]
    deletes: int


@dataclass(frozen=True)
class CertificateInvalid(Event):
    """A certificate of the peer's chain is outside its validity period at the caller's wall
    time (RFC 5280 §4.1.2.5); AUTHENTICATION_FAILED follows. ``problem`` is "expired" or
    "not-yet-valid" (the analyze ids ``cert-expired`` / ``cert-not-yet-valid``); times are
    ISO 8601 UTC."""

    subject: str
    problem: str
    not_before: str
    not_after: str
    wall_time: str
    end_entity: bool


@dataclass(frozen=True)
class HalfOpenExpired(Event):
    """Responder: the IKE SA was still not established ``after`` seconds after its IKE_SA_INIT
    (state ``state``); it is closed (IkeSaDeleted follows). A peer that went away, or a
    spoofed/flooding initiator (RFC 7296 §2.6)."""

    after: float
    state: str


@dataclass(frozen=True)
class IkeSaDeleted(Event):
    """The IKE SA is gone (state CLOSED): ``reason`` in words, ``by_peer`` who ended it."""

    reason: str
    by_peer: bool


@dataclass(frozen=True)
class ProtocolError(Event):
    """A message did not fit: ``notify`` is the Notify we sent or received (0 when none),
    ``fault`` whose mistake it is (``"ours"``: our configuration or request; ``"peer"``),
    ``received`` True when the peer sent the notify, ``fatal`` when the IKE SA is closed."""

    notify: int
    notify_name: str
    fault: str
    received: bool
    detail: str
    exchange: str = ""
    fatal: bool = False


@dataclass(frozen=True)
class Timeout(Event):
    """A request went unanswered after the whole RFC 7296 §2.1 schedule; the IKE SA is closed."""

    exchange: str
    message_id: int
    retransmissions: int


@dataclass(frozen=True)
class EspReceived(Event):
    """A datagram on the NAT-T port that is ESP-in-UDP (RFC 3948), handed back untouched."""

    data: bytes
    src: Endpoint
    dst: Endpoint
