"""The receive path of :class:`~ipsecdiag.engine.ike_sa.IkeSa` (a mixin, split out for size).

For one datagram (every failure is a counted drop or a ProtocolError event, never an exception
to the caller):

1. on the NAT-T port: a 0xFF keepalive is ignored, ESP-in-UDP is handed back as an event, the
   non-ESP marker is removed (RFC 3948 §2.2);
2. the IKE header: size, version 2, the I flag (must be the peer's role), the SPIs (a request
   for an SA we do not have gets INVALID_IKE_SPI, §2.21.4);
3. message ids: a retransmitted request gets the cached response again, other unexpected ids
   are dropped silently (§2.3); a response must answer our outstanding request;
4. decode and decrypt (SK, or SKF fragments collected until complete); a bad ICV is a silent
   drop (§2.21.2), a malformed authenticated request gets INVALID_SYNTAX;
5. unknown payloads with the critical bit set get UNSUPPORTED_CRITICAL_PAYLOAD (§2.5);
6. the state table names the handler, or the message does not fit (a protocol error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ..crypto.errors import CryptoError, IntegrityError
from ..wire.errors import MalformedMessage
from ..wire.ikev2 import (
    HEADER_LEN,
    IkeHeader,
    Payload,
    build_message,
    parse_message,
    peek_header,
    serialize_message,
)
from ..wire.ikev2_payloads import NotifyPayload, SkfPayload, UnknownPayload
from ..wire.registry import ExchangeType, NotifyType, PayloadType, name_of
from . import events as ev
from .config import Endpoint
from .errors import Drop, Refuse
from .protect import decrypt, flags_for, inner_payloads
from .state import State, handler_for
from .window import CachedResponse, Datagram, Outstanding, RequestContext

if TYPE_CHECKING:
    from ..crypto.sk import SkContext
    from .ike_sa import IkeSa

    RequestHandler = Callable[[IkeSa, IkeHeader, tuple[Payload, ...], Endpoint, Endpoint, float], None]
    ResponseHandler = Callable[[IkeSa, IkeHeader, tuple[Payload, ...], Endpoint, float, RequestContext], None]

NON_ESP_MARKER = b"\x00\x00\x00\x00"
_MAX_INVALID_SPI_NOTIFIES = 3  # answers to requests for unknown SPIs, per IKE SA (rate limit)


class ReceivePath:
    """Mixed into IkeSa; uses its state (``self.keys``, ``self._rx``, windows...)."""

    # Attributes provided by IkeSa (declared for readers; set in IkeSa.__init__).
    _retired: list[IkeSa]
    _cached: CachedResponse | None
    _outstanding: Outstanding | None
    _peer_mid: int
    _rx: SkContext | None
    _invalid_spi_answers: int
    encap: bool
    rx_marked: bool
    natt_socket: Callable[[Endpoint], bool | None]
    last_plain: tuple[int, bytes]

    # -- receive path -------------------------------------------------------------------------

    def _receive(self, data: bytes, src: Endpoint, dst: Endpoint, now: float) -> None:
        for r in self._retired:
            if r.owns(data, dst):
                r._receive(data, src, dst, now)
                return
        natt = self.natt_socket(dst)
        if natt is None:  # one socket for both: marked IKE, or anything once IKE moved to NAT-T
            natt = data[:4] == NON_ESP_MARKER or self.encap
        self.rx_marked = natt
        if natt:
            if data == b"\xff":
                return  # NAT-keepalive (RFC 3948 §2.3): nothing to count
            if len(data) < 4:
                raise Drop(f"{len(data)}-byte datagram on the NAT-T port", "truncated")
            if data[:4] != NON_ESP_MARKER:
                self._emit(ev.EspReceived(data, src, dst))
                return
            data = data[4:]
        if len(data) < HEADER_LEN:
            raise Drop(f"{len(data)} bytes: shorter than the IKE header", "truncated")
        h = peek_header(data)
        if h.major != 2:
            if h.major > 2 and not h.is_response:
                # §2.5: answer with INVALID_MAJOR_VERSION in a version 2 header (rate limited)
                self._answer_unprotected(h, NotifyType.INVALID_MAJOR_VERSION, h.exchange_type, src, dst)
            raise Drop(f"IKE major version {h.major}", "unsupported version")
        if h.length > len(data) or h.length < HEADER_LEN:
            raise Drop(f"header length {h.length} does not fit the {len(data)}-byte datagram", "bad length")
        self.last_raw = data[: h.length]  # the message being handled (RealMessage1/2 for AUTH)
        if h.is_initiator == self.is_initiator:
            raise Drop("the I flag says the message comes from our own role")
        if self.state is State.CLOSED:
            # Only a retransmitted request still gets its cached answer: the peer's Delete
            # whose response was lost must not time out on its side (§2.1).
            c = self._cached
            if h.is_response or c is None or (h.message_id, h.exchange_type) != (c.message_id, c.exchange):
                raise Drop("IKE SA closed")
        if not self._spis_match(h):
            self._unknown_spi(h, data, src, dst)
            return
        if h.is_response:
            self._receive_response(data, h, src, now)
        else:
            self._receive_request(data, h, src, dst, now)

    def _spis_match(self, h: IkeHeader) -> bool:
        if self.is_initiator:
            if h.spi_i != self.spi_i:
                return False
            return self.state is State.INIT_SENT or h.spi_r == self.spi_r
        if self.state is State.INITIAL:
            return h.spi_r == bytes(8) and h.exchange_type == ExchangeType.IKE_SA_INIT
        if h.spi_i != self.spi_i:
            return False
        # A retransmitted IKE_SA_INIT still carries a zero responder SPI.
        return h.spi_r == self.spi_r or (h.spi_r == bytes(8) and h.exchange_type == ExchangeType.IKE_SA_INIT)

    def _unknown_spi(self, h: IkeHeader, data: bytes, src: Endpoint, dst: Endpoint) -> None:
        # RFC 7296 §2.21.4: a request for an SA we do not have may get an unprotected
        # INVALID_IKE_SPI (rate limited); a response is dropped.
        if not h.is_response and h.exchange_type != ExchangeType.IKE_SA_INIT:
            self._answer_unprotected(h, NotifyType.INVALID_IKE_SPI, ExchangeType.INFORMATIONAL, src, dst)
        raise Drop("unknown IKE SPIs")

    def _answer_unprotected(
        self, h: IkeHeader, notify: int, exchange: int, src: Endpoint, dst: Endpoint
    ) -> None:
        """An unprotected error answer outside any IKE SA state (§2.21.4), a few per SA."""
        if self._invalid_spi_answers >= _MAX_INVALID_SPI_NOTIFIES:
            return
        self._invalid_spi_answers += 1
        flags = flags_for(original_initiator=not h.is_initiator, response=True)
        note = NotifyPayload(0, b"", notify)
        msg = serialize_message(build_message(h.spi_i, h.spi_r, exchange, h.message_id, [note], flags=flags))
        self._out.append(Datagram(self._marked(msg, dst), dst, src))
        name = name_of(NotifyType, notify)
        self._emit(
            ev.ProtocolError(
                notify, name, "peer", False, f"answered {h.exchange_name} with {name}", h.exchange_name
            )
        )

    def _receive_request(self, data: bytes, h: IkeHeader, src: Endpoint, dst: Endpoint, now: float) -> None:
        cached = self._cached
        if cached is not None and h.message_id == cached.message_id and h.exchange_type == cached.exchange:
            # A retransmitted request: the same answer again, byte for byte (§2.1); for a
            # fragmented request only on its first fragment (RFC 7383 §2.6.1), not once per
            # fragment.
            if h.next_payload == PayloadType.SKF and data[32:34] != b"\x00\x01":
                raise Drop("retransmitted fragment other than the first", "retransmitted fragment")
            cached.resent += 1
            for d in cached.datagrams:
                self._out.append(Datagram(d.payload, d.src, src))
            self._emit_sent(cached.exchange, cached.message_id, True, cached.resent, cached.datagrams)
            return
        if h.message_id != self._peer_mid:
            raise Drop(
                f"request message id {h.message_id}, expected {self._peer_mid} (INVALID_MESSAGE_ID, dropped §2.3)",
                "INVALID_MESSAGE_ID",
            )
        payloads = self._decode(data, h, now, request=True, src=src, dst=dst)
        if payloads is None:
            return
        self._note_received(h, payloads)
        if self.encap and self.keys is not None:
            self.remote = src  # §2.23: follow the peer's NAT mapping on authenticated requests
        handler = handler_for(self.role, self.state, h.exchange_type, False)
        try:
            self._check_critical(payloads)
            if handler is None:
                raise Refuse(
                    NotifyType.INVALID_SYNTAX if self.keys is not None else 0,
                    f"{h.exchange_name} request does not fit state {self.state.value}",
                    respond=self.keys is not None,
                )
            self._call(handler, h, payloads, src, dst, now)
        except Refuse as r:
            if r.respond and r.notify:
                note = NotifyPayload(0, b"", r.notify, r.data)
                self.send_response(h.exchange_type, h.message_id, [note], src, dst, stateless=r.stateless)
            self.refuse(r, h.exchange_type)

    def _receive_response(self, data: bytes, h: IkeHeader, src: Endpoint, now: float) -> None:
        out = self._outstanding
        if out is None or h.message_id != out.message_id or h.exchange_type != out.exchange:
            raise Drop(
                f"{h.exchange_name} response with message id {h.message_id} answers no request of ours",
                "unexpected response",
            )
        payloads = self._decode(data, h, now, request=False, src=src, dst=None)
        if payloads is None:
            return
        self._outstanding = None
        self._next_mid = out.message_id + 1  # an IKE_SA_INIT retry reuses id 0 by itself
        self._note_received(h, payloads)
        if self.encap and self.keys is not None and h.exchange_type != ExchangeType.IKE_SA_INIT:
            self.remote = src
        handler = handler_for(self.role, self.state, h.exchange_type, True)
        try:
            if handler is None:
                raise Refuse(
                    0, f"{h.exchange_name} response does not fit state {self.state.value}", respond=False
                )
            self._call(handler, h, payloads, src, None, now, context=out.context)
        except Refuse as r:
            self.refuse(r, h.exchange_type)
        self.after_response(now)

    def _call(
        self,
        handler: str,
        h: IkeHeader,
        payloads: tuple[Payload, ...],
        src: Endpoint,
        dst: Endpoint | None,
        now: float,
        context: RequestContext | None = None,
    ) -> None:
        from . import auth_exchange, create_child, informational, init_exchange, intermediate

        requests: dict[str, RequestHandler] = {
            "init_request": init_exchange.handle_request,
            "auth_request": auth_exchange.handle_request,
            "intermediate_request": intermediate.handle_request,
            "informational_request": informational.handle_request,
            "create_child_request": create_child.handle_request,
        }
        responses: dict[str, ResponseHandler] = {
            "init_response": init_exchange.handle_response,
            "intermediate_response": intermediate.handle_response,
            "auth_response": auth_exchange.handle_response,
            "informational_response": informational.handle_response,
            "create_child_response": create_child.handle_response,
        }
        sa = cast("IkeSa", self)
        if h.is_response:
            responses[handler](sa, h, payloads, src, now, context if context is not None else RequestContext())
        else:
            assert dst is not None  # requests always come with the socket they arrived on
            requests[handler](sa, h, payloads, src, dst, now)

    def _decode(
        self, data: bytes, h: IkeHeader, now: float, *, request: bool, src: Endpoint, dst: Endpoint | None
    ) -> tuple[Payload, ...] | None:
        """The message's payloads (decrypted, reassembled); None while fragments are missing."""
        try:
            msg = parse_message(data[: h.length])
        except MalformedMessage as e:
            if h.exchange_type == ExchangeType.IKE_SA_INIT or self.keys is None:
                raise Drop(f"malformed unprotected message: {e}") from None
            # The outer chain of a protected message is broken: nothing is authenticated yet.
            raise Drop(f"malformed protected message: {e}") from None
        enc = msg.encrypted
        if enc is None:
            if h.exchange_type != ExchangeType.IKE_SA_INIT:
                raise Drop(f"unprotected {h.exchange_name} message", "unprotected")
            return msg.payloads
        if self._rx is None:
            raise Drop(f"protected {h.exchange_name} before keys exist", "no keys")
        try:
            plaintext = decrypt(self._rx, data, msg)
        except IntegrityError:
            raise Drop("integrity check failed (ICV)") from None
        except CryptoError as e:
            raise Drop(f"cannot decrypt: {e}") from None
        first = enc.next_payload
        if isinstance(enc, SkfPayload):
            deadline = now + self.config.retransmit.timeout * 8
            done = self._reassembler.add(h.message_id, enc, plaintext, deadline)
            if isinstance(done, str):
                if done != "waiting":
                    self._drop(f"fragment: {done}")
                return None
            first, plaintext = done
        self.last_plain = (first, plaintext)  # RFC 9242 IntAuth covers the inner payloads as sent
        try:
            return inner_payloads(msg, first, plaintext)
        except MalformedMessage as e:
            r = Refuse(
                NotifyType.INVALID_SYNTAX,
                f"malformed inner payloads: {e}",
                fatal=not request or h.exchange_type == ExchangeType.IKE_AUTH,
            )
            if request and dst is not None:
                self.send_response(
                    h.exchange_type,
                    h.message_id,
                    [NotifyPayload(0, b"", NotifyType.INVALID_SYNTAX)],
                    src,
                    dst,
                )
            self.refuse(r, h.exchange_type)
            return None

    def _check_critical(self, payloads: tuple[Payload, ...]) -> None:
        for p in payloads:
            if isinstance(p, UnknownPayload) and p.critical:
                raise Refuse(
                    NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD,
                    f"critical payload {name_of(PayloadType, p.type)} not supported",
                    data=bytes((p.type & 0xFF,)),
                    fatal=self.state in (State.INITIAL, State.INIT_DONE),
                    stateless=self.state is State.INITIAL,
                )

    def _note_received(self, h: IkeHeader, payloads: tuple[Payload, ...]) -> None:
        names = tuple(name_of(PayloadType, p.payload_type) for p in payloads)
        notes = tuple(p.name for p in payloads if isinstance(p, NotifyPayload))
        self._emit(ev.Received(h.exchange_name, h.message_id, h.is_response, names, notes))
