"""``probe scan`` as a sans-I/O session: the planner's queries as IKE_SA_INIT datagrams, the
gateway's answers read back, then the IKEv1 probes and (optionally) the wait for the IKEv1
responder's retransmissions of its answers.

:class:`ScanSession` has the shape the probe's driver runs (``receive_datagram``,
``datagrams_to_send``, ``get_timer``, ``handle_timer``, ``next_event``), so pacing, the time
bound, the send budget and the recording are the driver's. Every IKE_SA_INIT request has a
fresh initiator SPI and nonce, so answers are matched by SPI and a late answer to an earlier
query is ignored. A COOKIE demand (RFC 7296 §2.6) is met by sending the same request again with
the cookie first. Nothing here ever sends IKE_AUTH: a half-open SA left by a full answer is
abandoned, and the gateway drops it after its half-open timeout.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..crypto.errors import UnsupportedAlgorithm
from ..crypto.ke import new_key_exchange, public_value_size
from ..crypto.rng import RandomSource, random_spi
from ..protocol.natd import natd_hash_v2
from ..protocol.notify_data import signature_hash_algorithms_data
from ..protocol.select import check_chosen
from ..wire.errors import WireError
from ..wire.ikev2 import FLAG_INITIATOR, Payload, build_message, parse_message, serialize_message
from ..wire.ikev2_payloads import KePayload, NoncePayload, NotifyPayload, VendorIdPayload
from ..wire.ikev2_sa import SaPayload
from ..wire.registry import ExchangeType, HashAlgorithm, NotifyType
from .config import Endpoint
from .scan_plan import Answer, Chosen, InvalidKe, NoAnswer, Query, Refused, ScanPlanner, algos_of
from .scan_v1 import V1Answer, aggressive_request, classify, main_mode_request
from .window import Datagram

NONCE_LEN = 32
_STATUS_ASKED = (
    NotifyType.IKEV2_FRAGMENTATION_SUPPORTED,
    NotifyType.REDIRECT_SUPPORTED,
    NotifyType.CHILDLESS_IKEV2_SUPPORTED,
    NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED,
)
_HASHES = (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512, HashAlgorithm.IDENTITY)


@dataclass(frozen=True)
class ScanSettings:
    timeout: float = 2.0  # seconds before a request is sent again
    tries: int = 3  # sends per request (the first included)
    cookie_retries: int = 2
    ikev1: bool = True
    backoff: float = 0.0  # seconds to wait for IKEv1 Main Mode retransmissions (0: not at all)
    aggressive_id: bytes = b"ipsecdiag-scan"  # IDi of the Aggressive Mode probe


@dataclass(frozen=True)
class QueryAnswered:
    """One round trip of the plan (narration)."""

    number: int
    purpose: str
    answer: Answer
    sends: int


@dataclass(frozen=True)
class ProbeAnswered:
    mode: str  # "main" / "aggressive"
    answer: V1Answer


@dataclass
class Observations:
    """What the answers showed besides the transforms."""

    notifies: dict[str, int] = field(default_factory=dict)  # notify name -> answers carrying it
    vendor_ids: list[bytes] = field(default_factory=list)
    signature_hashes: tuple[int, ...] = ()
    cookie_demanded: bool = False
    cookie_len: int = 0
    redirect: str | None = None
    nat_local: bool | None = None  # None: no full answer with NAT-D to tell
    nat_remote: bool | None = None
    ikev1: dict[str, V1Answer] = field(default_factory=dict)
    # IKEv1 mode -> seconds after its answer at which the same answer came again (the
    # responder's retransmission schedule; strongSwan retransmits Aggressive but not Main Mode)
    retransmissions: dict[str, list[float]] = field(default_factory=dict)
    malformed: int = 0
    late: int = 0  # answers to a request already given up on, or unrelated datagrams

    def add_notify(self, name: str) -> None:
        self.notifies[name] = self.notifies.get(name, 0) + 1

    def add_vendor(self, data: bytes) -> None:
        if data not in self.vendor_ids:
            self.vendor_ids.append(data)


@dataclass
class _InFlight:
    kind: str  # "v2", "main", "aggressive"
    spi: bytes
    payload: bytes
    query: Query | None = None
    nonce: bytes = b""
    sends: int = 0
    deadline: float = 0.0
    cookies: int = 0


class ScanSession:
    def __init__(
        self,
        planner: ScanPlanner,
        *,
        rng: RandomSource,
        local: Endpoint,
        remote: Endpoint,
        now: float,
        settings: ScanSettings = ScanSettings(),
    ) -> None:
        self.planner, self.rng, self.local, self.remote, self.settings = planner, rng, local, remote, settings
        self.obs = Observations()
        self.stage = "v2"
        self._out: deque[Datagram] = deque()
        self._events: deque[object] = deque()
        self._flight: _InFlight | None = None
        self._ke_values: dict[int, bytes] = {}
        self._v1_answers: dict[bytes, tuple[str, float]] = {}  # answer datagram -> (mode, when)
        self._backoff_until = 0.0
        self._next(now)

    # -- driver interface
    @property
    def done(self) -> bool:
        return self.stage == "done"

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        out = list(self._out)
        self._out.clear()
        return out

    def next_event(self) -> object | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        if self._flight is not None:
            return self._flight.deadline
        if self.stage == "backoff":
            return self._backoff_until
        return None

    def handle_timer(self, now: float) -> None:
        f = self._flight
        if f is not None and now >= f.deadline:
            # an IKEv1 probe is one question, not part of the plan: two sends are enough
            tries = self.settings.tries if f.kind == "v2" else min(2, self.settings.tries)
            if f.sends < tries:
                self._send(f, now)
                return
            self._flight = None
            if f.kind == "v2":
                self._answer(f, NoAnswer(f"no answer after {f.sends} sends"), now)
            else:
                self._v1_done(f.kind, V1Answer(f.kind), now)
        elif self.stage == "backoff" and now >= self._backoff_until:
            self.stage = "done"

    def stop(self) -> None:
        """Time is up: the plan ends with what it learnt."""
        self.planner.stop()
        self._flight, self.stage = None, "done"

    def receive_datagram(self, payload: bytes, src: Endpoint, dst: Endpoint, now: float) -> None:
        data = payload  # one socket, no NAT-T port: no non-ESP marker to strip
        if len(data) < 28:
            self.obs.malformed += 1
            return
        if data[17] >> 4 == 1:
            self._receive_v1(data, now)
            return
        f = self._flight
        if f is None or f.kind != "v2" or data[:8] != f.spi or not data[19] & 0x20:
            self.obs.late += 1
            return
        try:
            msg = parse_message(data)
        except WireError:
            self.obs.malformed += 1  # wait for a good answer or the timeout
            return
        if msg.header.exchange_type != ExchangeType.IKE_SA_INIT:
            self.obs.late += 1
            return
        self._read_v2(f, msg.header.spi_r, msg.payloads, src, now)

    # -- IKEv2
    def _next(self, now: float) -> None:
        if self.stage == "v2":
            q = self.planner.next_query()
            if q is not None:
                self._start_v2(q, now)
                return
            self.stage = "main" if self.settings.ikev1 else "done"
        if self.stage == "main":
            self._start_v1("main", now)
            return
        if self.stage == "aggressive":
            self._start_v1("aggressive", now)
            return
        if self.stage == "v1-done":
            first = min((t for _m, t in self._v1_answers.values()), default=None)
            wait = self.settings.backoff > 0 and first is not None
            self.stage = "backoff" if wait else "done"
            self._backoff_until = (first or now) + self.settings.backoff

    def _ke_value(self, group: int) -> bytes:
        if group not in self._ke_values:
            try:
                value = new_key_exchange(group, self.rng).public_value()
            except UnsupportedAlgorithm:
                # a group we cannot compute (only ever a decoy): the right size is all that is read
                value = self.rng.bytes(public_value_size(group, responder=False) or 64)
            self._ke_values[group] = value
        return self._ke_values[group]

    def _start_v2(self, q: Query, now: float) -> None:
        f = _InFlight("v2", random_spi(self.rng, 8), b"", q, self.rng.bytes(NONCE_LEN))
        f.payload = self._v2_request(f, b"")
        self._send(f, now)

    def _v2_request(self, f: _InFlight, cookie: bytes) -> bytes:
        assert f.query is not None
        payloads: list[Payload] = []
        if cookie:
            payloads.append(NotifyPayload(0, b"", NotifyType.COOKIE, cookie))
        payloads += [
            SaPayload(f.query.offer.proposals()),
            KePayload(f.query.ke_group, self._ke_value(f.query.ke_group)),
            NoncePayload(f.nonce),
            NotifyPayload(
                0,
                b"",
                NotifyType.NAT_DETECTION_SOURCE_IP,
                natd_hash_v2(f.spi, bytes(8), self.local.host, self.local.port),
            ),
            NotifyPayload(
                0,
                b"",
                NotifyType.NAT_DETECTION_DESTINATION_IP,
                natd_hash_v2(f.spi, bytes(8), self.remote.host, self.remote.port),
            ),
            NotifyPayload(
                0, b"", NotifyType.SIGNATURE_HASH_ALGORITHMS, signature_hash_algorithms_data(_HASHES)
            ),
            *(NotifyPayload(0, b"", n) for n in _STATUS_ASKED),
        ]
        msg = build_message(f.spi, bytes(8), ExchangeType.IKE_SA_INIT, 0, payloads, flags=FLAG_INITIATOR)
        return serialize_message(msg)

    def _send(self, f: _InFlight, now: float) -> None:
        f.sends += 1
        # exponential back-off of our own retransmissions (RFC 7296 §2.1)
        f.deadline = now + self.settings.timeout * (2 ** (f.sends - 1))
        self._flight = f
        self._out.append(Datagram(f.payload, self.local, self.remote))

    def _read_v2(
        self, f: _InFlight, spi_r: bytes, payloads: tuple[Payload, ...], src: Endpoint, now: float
    ) -> None:
        notifies = [p for p in payloads if isinstance(p, NotifyPayload)]
        for n in notifies:
            self.obs.add_notify(n.name)
        for p in payloads:
            if isinstance(p, VendorIdPayload):
                self.obs.add_vendor(p.data)
        by_type = {n.notify_type: n for n in notifies}
        cookie = by_type.get(NotifyType.COOKIE)
        if cookie is not None:
            self.obs.cookie_demanded, self.obs.cookie_len = True, len(cookie.data)
            if f.cookies < self.settings.cookie_retries and 1 <= len(cookie.data) <= 64:
                f.cookies += 1
                f.payload, f.sends = self._v2_request(f, cookie.data), 0
                self._send(f, now)
                return
            self._flight = None
            self._answer(f, Refused("COOKIE"), now)
            return
        self._flight = None
        invalid_ke = by_type.get(NotifyType.INVALID_KE_PAYLOAD)
        redirect = by_type.get(NotifyType.REDIRECT)
        sa = next((p for p in payloads if isinstance(p, SaPayload)), None)
        errors = [n for n in notifies if n.is_error]
        if invalid_ke is not None and invalid_ke.requested_group() is not None:
            a: Answer = InvalidKe(int(invalid_ke.requested_group() or 0))
        elif redirect is not None:
            info = redirect.redirect()
            self.obs.redirect = info.display() if info is not None else "(malformed)"
            a = Refused("REDIRECT")
        elif errors:
            a = Refused(errors[0].name)
        elif sa is not None:
            # a choice that was never offered is the gateway's error, not an accepted transform
            why = check_chosen(f.query.offer.proposals(), sa.proposals)  # type: ignore[union-attr]
            if why is None:
                a = Chosen(algos_of(sa.proposals[0]))
                self._capabilities(f, spi_r, by_type, notifies, src)
            else:
                a = Refused(f"an invalid choice ({why})")
        else:
            a = Refused("an answer without SA payload or error notify")
        self._answer(f, a, now)

    def _capabilities(
        self,
        f: _InFlight,
        spi_r: bytes,
        by_type: dict[int, NotifyPayload],
        notifies: list[NotifyPayload],
        src: Endpoint,
    ) -> None:
        sh = by_type.get(NotifyType.SIGNATURE_HASH_ALGORITHMS)
        if sh is not None:
            self.obs.signature_hashes = sh.signature_hash_algorithms() or ()
        srcs = [n.data for n in notifies if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
        dst = by_type.get(NotifyType.NAT_DETECTION_DESTINATION_IP)
        if srcs and dst is not None:  # RFC 7296 §2.23, as the engine reads it
            self.obs.nat_remote = natd_hash_v2(f.spi, spi_r, src.host, src.port) not in srcs
            self.obs.nat_local = dst.data != natd_hash_v2(f.spi, spi_r, self.local.host, self.local.port)

    def _answer(self, f: _InFlight, a: Answer, now: float) -> None:
        assert f.query is not None
        self._events.append(QueryAnswered(self.planner.result.queries + 1, f.query.purpose, a, f.sends))
        self.planner.answer(a)
        self._next(now)

    # -- IKEv1
    def _start_v1(self, mode: str, now: float) -> None:
        cookie = random_spi(self.rng, 8)
        payload = (
            main_mode_request(cookie)
            if mode == "main"
            else aggressive_request(cookie, self.rng, self.settings.aggressive_id)
        )
        self._send(_InFlight(mode, cookie, payload), now)

    def _receive_v1(self, data: bytes, now: float) -> None:
        f = self._flight
        seen = self._v1_answers.get(data)
        if seen is not None:
            self.obs.retransmissions.setdefault(seen[0], []).append(round(now - seen[1], 3))
            return
        if f is None or f.kind not in ("main", "aggressive") or data[:8] != f.spi:
            self.obs.late += 1
            return
        ans = classify(f.kind, data)
        if not ans.answered:
            self.obs.malformed += 1
            return
        self._flight = None
        for v in ans.vendor_ids:
            self.obs.add_vendor(v)
        if ans.chosen is not None:
            self._v1_answers[data] = (f.kind, now)
        self._v1_done(f.kind, ans, now)

    def _v1_done(self, mode: str, ans: V1Answer, now: float) -> None:
        self.obs.ikev1[mode] = ans
        self._events.append(ProbeAnswered(mode, ans))
        self.stage = "aggressive" if mode == "main" else "v1-done"
        self._next(now)


__all__ = ["Observations", "ProbeAnswered", "QueryAnswered", "ScanSession", "ScanSettings"]
