"""The IKE SA endpoint: public API, send path, timers, dispatch state (see ``receive.py`` for
the receive path).

This module is plumbing only. What each exchange *means* lives in ``init_exchange.py``,
``auth_exchange.py``, ``informational.py`` and ``create_child.py``; whether a message is legal
in the current state lives in ``state.py``. The public surface is :class:`IkeSa` (see
``ENGINE_API.md``).
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..crypto.errors import CryptoError
from ..crypto.rng import RandomSource, random_spi
from ..crypto.sk import SkContext
from ..keys.model import IkeSaKeys
from ..wire.errors import WireError
from ..wire.ikev2 import Payload
from ..wire.registry import ExchangeType, name_of
from . import events as ev
from .config import ChildConfig, Endpoint, Identity, IkeConfig, Role
from .errors import Drop, Refuse
from .fragments import Reassembler
from .negotiation import Negotiation
from .protect import encode, flags_for
from .receive import NON_ESP_MARKER, ReceivePath
from .state import State, Trigger, next_state
from .window import CachedResponse, Datagram, Outstanding, PendingRequest, RequestContext

if TYPE_CHECKING:
    from ..wire.ikev2_sa import Proposal
    from .child_sa import ChildSa
    from .pool import AddressPool

__all__ = ["Datagram", "IkeSa"]


class IkeSa(ReceivePath):
    """One IKEv2 SA, initiator or responder, driven by the caller's datagrams and clock.

    :param config: what to negotiate and with which credentials.
    :param role: the original role; it never changes over the SA's life.
    :param rng: every nonce, SPI, IV and private value comes from here.
    :param now: the current time (any monotonic clock, in seconds).
    :param local: our address and port as the peer should see it before any NAT (used for
        NAT detection, so it must be a real address, not 0.0.0.0).
    :param remote: the peer's address and port (the responder: the first request's source).
    :param local_natt: our NAT-T socket (default ``local`` host, port 4500).
    :param pool: responder: the virtual IP pool to assign from (shared between SAs).
    """

    def __init__(
        self,
        config: IkeConfig,
        *,
        role: Role,
        rng: RandomSource,
        now: float,
        local: Endpoint,
        remote: Endpoint,
        local_natt: Endpoint | None = None,
        pool: AddressPool | None = None,
    ) -> None:
        from .pool import AddressPool

        self.config = config
        self.role = role
        self.rng = rng
        self.created = now
        self.local = local
        self.remote = remote
        self.local_natt = local_natt or local.with_port(config.natt_port)
        self.pool = pool if pool is not None else (AddressPool(config.pool) if config.pool else None)
        self.state = State.INITIAL
        self.spi_i = random_spi(rng, 8) if role is Role.INITIATOR else bytes(8)
        self.spi_r = bytes(8)
        self.keys: IkeSaKeys | None = None
        self.child_sas: dict[int, ChildSa] = {}
        self.neg = Negotiation()
        self.peer_id: Identity | None = None
        self.drops: Counter[str] = Counter()
        # UDP encapsulation: True once IKE moved to the NAT-T port (or started there).
        self.encap = remote.port == config.natt_port
        self._events: deque[ev.Event] = deque()
        self._out: deque[Datagram] = deque()
        self._tx: SkContext | None = None
        self._rx: SkContext | None = None
        self._next_mid = 0  # id of our next request
        self._peer_mid = 0  # id of the next request we accept
        self._outstanding: Outstanding | None = None
        self._pending: deque[PendingRequest] = deque()
        self._cached: CachedResponse | None = None
        self._reassembler = Reassembler(config.max_fragments)
        self._invalid_spi_answers = 0
        self.last_raw = b""
        self.last_plain: tuple[int, bytes] = (0, b"")
        # After an IKE SA rekey: the old SA, kept only to complete its Delete exchange.
        # Old SAs after IKE rekeys, kept to finish (and re-answer) their Delete exchange.
        self._retired: list[IkeSa] = []
        self._successor: IkeSa | None = None  # set on a retired SA: where CHILD SAs live now
        self._starting: PendingRequest | None = None  # the queued request being started
        self._deferred: list[tuple[float, PendingRequest]] = []  # retries after TEMPORARY_FAILURE
        self.clock = now  # the latest time the caller gave us
        # Responder: when a still half-open IKE SA (no IKE_AUTH completed) is given up.
        self._half_open_until = (
            now + config.half_open_timeout
            if role is Role.RESPONDER and config.half_open_timeout is not None
            else None
        )
        self.wall_time: datetime | None = None  # the caller's real time, for certificate dates
        self.rx_marked = False  # did the datagram being handled come with the non-ESP marker?

    # -- public API --------------------------------------------------------------------------

    @property
    def is_initiator(self) -> bool:
        return self.role is Role.INITIATOR

    def initiate(self, now: float) -> None:
        """Initiator: queue the IKE_SA_INIT request."""
        from . import init_exchange

        self._transition(Trigger.INITIATE)
        init_exchange.start(self, now)

    def receive_datagram(
        self,
        data: bytes,
        src: Endpoint,
        dst: Endpoint,
        now: float,
        *,
        wall_time: datetime | float | None = None,
    ) -> None:
        """Process one UDP payload exactly as received on ``dst`` from ``src``.

        ``wall_time`` (an aware datetime, or POSIX seconds) is the real time; when given (here
        or earlier, or set as ``sa.wall_time``) the peer's certificates must be within their
        validity period at it. ``now`` stays the monotonic clock of every timer."""
        self.clock = max(self.clock, now)
        if wall_time is not None:
            self.wall_time = as_utc(wall_time)
        try:
            self._receive(bytes(data), src, dst, now)
        except Drop as d:
            self._drop(d.reason, d.kind)
        except (WireError, CryptoError, ValueError, LookupError, struct.error, OverflowError) as e:
            # A safety net: input we failed to classify above must still not escape.
            self._drop(f"unprocessable message ({type(e).__name__}: {e})")

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        out = list(self._out)
        self._out.clear()
        for r in self._retired:
            out += r.datagrams_to_send(now)
        return out

    def next_event(self) -> ev.Event | None:
        self._drain_retired()
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must be called next (None: nothing pending)."""
        times = [t for t in (self._retransmit_due(), self._reassembler.deadline) if t is not None]
        times += [t for r in self._retired if (t := r.get_timer()) is not None]
        times += [when for when, _req in self._deferred]
        if self._half_open_until is not None and self.state is not State.CLOSED:
            times.append(self._half_open_until)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self.clock = max(self.clock, now)
        if self._half_open_until is not None and now >= self._half_open_until:
            self._half_open_until = None
            if self.state in (State.INITIAL, State.INIT_DONE):
                after = now - self.created
                self._emit(ev.HalfOpenExpired(after, self.state.value))
                self._close(f"half-open for {after:g} s: IKE_AUTH never completed", by_peer=False)
                return
        due = [req for when, req in self._deferred if when <= now]
        if due:
            self._deferred = [(w, r) for w, r in self._deferred if w > now]
            self._pending.extend(due)
            self.after_response(now)
        for r in self._retired:
            r.handle_timer(now)
        if self._reassembler.expire(now):
            self._drop("incomplete fragmented message expired")
        out = self._outstanding
        if out is None or now < out.next_due or self.state is State.CLOSED:
            return
        if out.exhausted:
            self._outstanding = None
            self._emit(ev.Timeout(name_of(ExchangeType, out.exchange), out.message_id, out.sent_count - 1))
            self._close("no answer after the retransmission schedule (RFC 7296 §2.1)", by_peer=False)
            return
        out.sent_count += 1
        out.sent_at = now
        self._out.extend(out.datagrams)
        self._emit_sent(out.exchange, out.message_id, False, out.sent_count - 1, out.datagrams)

    def delete(self, now: float) -> None:
        """Delete the IKE SA (INFORMATIONAL with Delete(IKE)); its CHILD SAs go with it.

        Before the IKE SA is established there is nothing the peer could match a Delete to
        (RFC 7296 §1.4.1 needs an IKE SA): the SA is abandoned locally, nothing is sent.
        Closed already: nothing happens.
        """
        from . import informational

        if self.state is State.CLOSED:
            return
        if self.state not in (State.ESTABLISHED, State.DELETING):
            self._close("abandoned before it was established", by_peer=False)
            return
        self._request_when_free(lambda t: informational.start_delete_ike(self, t), "delete IKE SA", now)

    def delete_child(self, spi_in: int, now: float) -> None:
        if self._successor is not None:  # a retired SA: the CHILD SA lives on in the new one
            self._successor.delete_child(spi_in, now)
            return
        from . import informational

        self._request_when_free(
            lambda t: informational.start_delete_child(self, spi_in, t), "delete CHILD SA", now
        )

    def send_liveness(self, now: float) -> None:
        """An empty INFORMATIONAL request (liveness check, RFC 7296 §1.4)."""
        from . import informational

        self._request_when_free(lambda t: informational.start_liveness(self, t), "liveness", now)

    def create_child(self, now: float, child: ChildConfig | None = None) -> None:
        """CREATE_CHILD_SA for another CHILD SA (PFS when the ESP proposals name a KE method)."""
        from . import create_child

        self._request_when_free(
            lambda t: create_child.start_new_child(self, t, child), "create CHILD SA", now
        )

    def rekey_child(self, spi_in: int, now: float) -> None:
        """Rekey the CHILD SA whose inbound SPI is ``spi_in``; the old one is deleted after."""
        from . import create_child

        self._request_when_free(
            lambda t: create_child.start_rekey_child(self, spi_in, t), "rekey CHILD SA", now
        )

    def rekey_ike(self, now: float) -> None:
        """Rekey the IKE SA (RFC 7296 §1.3.2); this object continues as the new IKE SA."""
        from . import create_child

        self._request_when_free(lambda t: create_child.start_rekey_ike(self, t), "rekey IKE SA", now)

    # -- helpers for the exchange modules -----------------------------------------------------

    def emit(self, event: ev.Event) -> None:
        self._events.append(event)

    _emit = emit

    def transition(self, trigger: Trigger) -> None:
        self._transition(trigger)
        if trigger is Trigger.AUTH_OK:
            self._half_open_until = None
            self._schedule_ike_rekey()

    # -- rekeying on our own (IkeConfig.rekey_time, ChildConfig.rekey_time) ---------------------

    def _jittered(self, delay: float) -> float:
        # Up to 10 % earlier, so that two peers with the same setting rarely collide (§2.8.1).
        return delay * (1.0 - 0.1 * self.rng.bytes(1)[0] / 255)

    def _schedule_ike_rekey(self) -> None:
        if self.config.rekey_time is None:
            return
        spis = (self.spi_i, self.spi_r)

        def start(now: float) -> None:
            from . import create_child

            # Only the SA it was scheduled for, and only while nothing else is going on.
            if self.state is State.ESTABLISHED and (self.spi_i, self.spi_r) == spis:
                create_child.start_rekey_ike(self, now)

        self.defer(PendingRequest(start, "scheduled IKE SA rekey"), self._jittered(self.config.rekey_time))

    def schedule_child_rekey(self, spi_in: int) -> None:
        """Called when a CHILD SA comes up: rekey it after ``ChildConfig.rekey_time``."""
        child = self.config.child
        if child is None or child.rekey_time is None:
            return

        def start(now: float) -> None:
            from . import create_child

            if self.state is State.ESTABLISHED and spi_in in self.child_sas:
                create_child.start_rekey_child(self, spi_in, now)

        self.defer(PendingRequest(start, "scheduled CHILD SA rekey"), self._jittered(child.rekey_time))

    def _transition(self, trigger: Trigger) -> None:
        self.state = next_state(self.role, self.state, trigger)

    def install_keys(self, keys: IkeSaKeys) -> None:
        """Use ``keys`` for SK from now on (IKE_SA_INIT done, or the IKE SA rekeyed)."""
        self.keys = keys
        self._tx = SkContext(keys, from_initiator=self.is_initiator)
        self._rx = SkContext(keys, from_initiator=not self.is_initiator)

    def move_to_natt(self) -> None:
        """RFC 7296 §2.23: after NAT detection the initiator continues on port 4500."""
        if not self.encap:
            self.encap = True
            self.remote = self.remote.with_port(self.config.natt_port)

    def send_request(
        self, exchange: int, payloads: list[Payload], now: float, context: RequestContext | None = None
    ) -> None:
        """Send a new request with the next message id (IKE_SA_INIT reuses id 0 on retries)."""
        if self._outstanding is not None:
            raise RuntimeError("engine bug: a request is already outstanding (window size 1)")
        mid = 0 if exchange == ExchangeType.IKE_SA_INIT else self._next_mid
        datagrams = self._datagrams(exchange, mid, payloads, response=False, dst=self.remote)
        if exchange == ExchangeType.IKE_SA_INIT:
            self.neg.init_request = (
                _unmarked(datagrams[0].payload)
            )
        context = RequestContext(**context) if context is not None else RequestContext()
        if self._starting is not None:
            context["restart"] = self._starting  # to run again on the new SA if this one is rekeyed away
        self._outstanding = Outstanding(exchange, mid, datagrams, self.config.retransmit, now, context)
        self._out.extend(datagrams)
        self._emit_sent(exchange, mid, False, 0, datagrams)

    def send_response(
        self,
        exchange: int,
        message_id: int,
        payloads: list[Payload],
        src: Endpoint,
        dst: Endpoint,
        *,
        stateless: bool = False,
    ) -> bytes:
        """Answer the request that came from ``src`` to our ``dst``; returns the first message
        (IKE_SA_INIT: RealMessage2). Stateless answers are neither cached nor consume the id."""
        datagrams = self._datagrams(exchange, message_id, payloads, response=True, dst=src, local=dst)
        if not stateless:
            self._cached = CachedResponse(message_id, exchange, datagrams)
            self._peer_mid = message_id + 1
        self._out.extend(datagrams)
        self._emit_sent(exchange, message_id, True, 0, datagrams)
        return _unmarked(datagrams[0].payload)

    def send_oneway(self, exchange: int, payloads: list[Payload]) -> None:
        """A request we do not wait for (e.g. AUTHENTICATION_FAILED before closing, §2.21.2)."""
        mid = self._next_mid
        datagrams = self._datagrams(exchange, mid, payloads, response=False, dst=self.remote)
        self._next_mid += 1
        self._out.extend(datagrams)
        self._emit_sent(exchange, mid, False, 0, datagrams)

    def refuse(self, r: Refuse, exchange: int) -> None:
        self._emit(
            ev.ProtocolError(
                r.notify,
                r.notify_name,
                r.fault,
                r.received,
                r.detail,
                name_of(ExchangeType, exchange),
                r.fatal,
            )
        )
        if r.fatal:
            self._close(f"{r.notify_name or 'failure'}: {r.detail}", by_peer=r.received)

    def close(self, reason: str, *, by_peer: bool) -> None:
        self._close(reason, by_peer=by_peer)

    @property
    def next_message_id(self) -> int:
        """The id our next request will carry."""
        return self._next_mid

    @property
    def busy(self) -> bool:
        """A request of ours is in flight or queued (the window holds one at a time)."""
        return self._outstanding is not None or bool(self._pending) or bool(self._deferred)

    def ike_spis(self) -> list[tuple[bytes, bytes]]:
        """(SPIi, SPIr) of this IKE SA and of the old ones it still answers for after rekeys:
        what a demultiplexer must route here (the SPIs change with every IKE SA rekey)."""
        return [(self.spi_i, self.spi_r), *((r.spi_i, r.spi_r) for r in self._retired)]

    def defer(self, req: PendingRequest, delay: float) -> None:
        """Queue ``req`` again after ``delay`` seconds (RFC 7296 §2.25: retry later)."""
        self._deferred.append((self.clock + delay, req))

    def outstanding_context(self) -> RequestContext:
        return self._outstanding.context if self._outstanding is not None else RequestContext()

    def replace_ike_sa(
        self, keys: IkeSaKeys, role: Role, group: int, chosen: Proposal, now: float, *, delete_old: bool
    ) -> None:
        """Continue as the rekeyed IKE SA (RFC 7296 §2.18): new SPIs, keys and role, message
        ids from 0, CHILD SAs kept. The old SA lives on in a retired object only to finish its
        Delete exchange (sent by us when ``delete_old``, else expected from the peer)."""
        # The CHILD SAs belong to both until the old SA is gone: an exchange still running on
        # the old SA (a CREATE_CHILD_SA that crossed the rekey) installs into the same table.
        retired = self._retired_copy()
        old_i, old_r = self.spi_i, self.spi_r
        # The last few are kept, closed too: they answer retransmitted Deletes from their cache.
        self._retired = [*self._retired, retired][-3:]
        self.role = role
        self.spi_i, self.spi_r = keys.spi_i, keys.spi_r
        self.install_keys(keys)
        self._next_mid = self._peer_mid = 0
        self._cached, self._outstanding = None, None
        self.neg.chosen, self.neg.ke_group = chosen, group
        self._emit(ev.IkeSaRekeyed(old_i, old_r, keys))
        self._schedule_ike_rekey()
        if delete_old:
            retired.delete(now)
        # Requests queued while the old SA's window was busy now go out on the new SA.
        self.after_response(now)

    def _retired_copy(self) -> IkeSa:
        """A side object sharing our state, living only to finish an old SA's Delete."""
        retired = IkeSa.__new__(IkeSa)
        retired.__dict__.update(self.__dict__)
        retired._events, retired._out, retired._pending, retired._deferred = deque(), deque(), deque(), []
        retired.pool, retired._retired, retired._successor = None, [], self
        retired._reassembler = Reassembler(self.config.max_fragments)
        return retired

    def add_redundant_ike_sa(self, keys: IkeSaKeys, role: Role, now: float, *, delete: bool) -> None:
        """RFC 7296 §2.8.2: the new IKE SA a simultaneous rekey made redundant. It carries no
        CHILD SA and lives in a retired object only until deleted: by us when our exchange
        created it (``delete``), else when the peer's Delete for it arrives (answered)."""
        extra = self._retired_copy()
        extra.child_sas = {}
        extra.role = role
        extra.spi_i, extra.spi_r = keys.spi_i, keys.spi_r
        extra.install_keys(keys)
        extra._next_mid = extra._peer_mid = 0
        extra._cached, extra._outstanding, extra._half_open_until = None, None, None
        extra.state = State.ESTABLISHED
        self._retired = [*self._retired, extra][-3:]
        if delete:
            extra.delete(now)

    def owns(self, data: bytes, dst: Endpoint) -> bool:
        """Do the datagram's IKE SPIs name this SA? (routing to a retired SA)"""
        off = 4 if data[:4] == NON_ESP_MARKER else 0  # IKE SPIi is never zero (§3.1)
        return (
            len(data) >= off + 16
            and data[off : off + 8] == self.spi_i
            and data[off + 8 : off + 16] == self.spi_r
        )

    def _drain_retired(self) -> None:
        for r in self._retired:
            while (e := r.next_event()) is not None:
                # The old SA's own end (deleted, or its Delete unanswered) is implied by
                # IkeSaRekeyed and says nothing about the new SA; everything else is reported.
                if not isinstance(e, ev.IkeSaDeleted | ev.Timeout):
                    self._events.append(e)

    def after_response(self, now: float) -> None:
        """Start the next queued request once the window is free."""
        self.clock = max(self.clock, now)
        while self._outstanding is None and self._pending and self.state is not State.CLOSED:
            req = self._pending.popleft()
            self._starting = req
            try:
                req.start(now)
            finally:
                self._starting = None

    # -- send path ----------------------------------------------------------------------------

    @property
    def source(self) -> Endpoint:
        """Where our requests leave from: the NAT-T socket once IKE moved there."""
        return self.local_natt if self.encap else self.local

    def natt_socket(self, ours: Endpoint) -> bool | None:
        """Is ``ours`` (the socket a datagram came in on or goes out on) the NAT-T socket?
        None when one socket serves both roles: then the datagram (or our state) tells."""
        if ours.natt is not None:
            return ours.natt
        if self.local.port == self.local_natt.port:
            return None
        return ours.port == self.local_natt.port

    def _marked(self, msg: bytes, ours: Endpoint, *, response: bool = True) -> bytes:
        """``msg`` with the non-ESP marker when it leaves on the NAT-T path (RFC 3948 §2.2):
        by the socket; on a shared socket a response as its request came, a request once IKE
        moved to NAT-T."""
        natt = self.natt_socket(ours)
        if natt is None:
            natt = self.rx_marked if response else self.encap
        return NON_ESP_MARKER + msg if natt else msg

    def _datagrams(
        self,
        exchange: int,
        mid: int,
        payloads: list[Payload],
        *,
        response: bool,
        dst: Endpoint,
        local: Endpoint | None = None,
    ) -> list[Datagram]:
        src = local or self.source
        marker = self._marked(b"", src, response=response) != b""
        frag = (
            self.config.fragment_size if self.neg.peer_fragmentation and self.config.fragmentation else None
        )
        msgs = encode(
            spi_i=self.spi_i,
            spi_r=self.spi_r,
            exchange=exchange,
            message_id=mid,
            flags=flags_for(original_initiator=self.is_initiator, response=response),
            payloads=payloads,
            ctx=None if exchange == ExchangeType.IKE_SA_INIT else self._tx,
            rng=self.rng,
            fragment_size=frag,
            ipv6=":" in dst.host,
            marker=marker,
        )
        return [Datagram(self._marked(m, src, response=response), src, dst) for m in msgs]

    def _emit_sent(
        self, exchange: int, mid: int, response: bool, retransmission: int, datagrams: list[Datagram]
    ) -> None:
        size = sum(len(d.payload) for d in datagrams)
        self._emit(
            ev.Sent(name_of(ExchangeType, exchange), mid, response, retransmission, size, len(datagrams))
        )

    def _request_when_free(self, start: Callable[[float], None], label: str, now: float) -> None:
        if self.state is State.CLOSED:
            raise RuntimeError(f"cannot {label}: the IKE SA is closed")
        if self.state not in (State.ESTABLISHED, State.DELETING):
            raise RuntimeError(f"cannot {label} before the IKE SA is established (state {self.state.value})")
        self._pending.append(PendingRequest(start, label))
        self.after_response(now)

    def _retransmit_due(self) -> float | None:
        out = self._outstanding
        return out.next_due if out is not None and self.state is not State.CLOSED else None

    # -- bookkeeping --------------------------------------------------------------------------

    def _drop(self, reason: str, kind: str | None = None) -> None:
        key = kind or reason.split(":")[0].split(" (")[0]
        self.drops[key] += 1
        self._emit(ev.MessageDropped(reason))

    def _close(self, reason: str, *, by_peer: bool) -> None:
        if self.state is State.CLOSED:
            return
        self.state = next_state(self.role, self.state, Trigger.FAILED)
        out, self._outstanding = self._outstanding, None
        self._pending.clear()
        if self._successor is not None:
            # A retired SA: its CHILD SAs moved to the new one. A CHILD SA request or check
            # still unanswered when the old SA went away is asked again on the new SA.
            restart = out.context.get("restart") if out is not None else None
            if (
                restart is not None
                and out is not None
                and out.context.get("kind") not in ("ike", "delete-ike")
            ):
                self._successor._pending.appendleft(restart)
                self._successor.after_response(self._successor.clock)
            self._emit(ev.IkeSaDeleted(reason, by_peer))
            return
        for child in list(self.child_sas.values()):
            self._emit(ev.ChildSaDeleted(child.spi_in, child.spi_out, by_peer))
        self.child_sas.clear()
        if self.pool is not None:
            self.pool.release_owner(self.spi_i + self.spi_r)
        self._emit(ev.IkeSaDeleted(reason, by_peer))


def _unmarked(payload: bytes) -> bytes:
    """The IKE message of a datagram we built (a non-zero SPIi never looks like the marker)."""
    return payload[4:] if payload[:4] == NON_ESP_MARKER else payload


def as_utc(wall_time: datetime | float) -> datetime:
    """An aware UTC datetime from a datetime (naive = UTC) or POSIX seconds."""
    if isinstance(wall_time, datetime):
        return wall_time.replace(tzinfo=UTC) if wall_time.tzinfo is None else wall_time.astimezone(UTC)
    return datetime.fromtimestamp(float(wall_time), tz=UTC)
