"""``ipsecdiag responder``: a minimal IKEv2 responder on the engine, one IKE SA per client.

Datagrams are demultiplexed by the initiator's SPI and the client's address (an IKE_SA_INIT
request with a zero responder SPI from a new SPI opens a session, up to ``max_clients`` at a
time: a client whose IKE SA is gone frees its slot);
ESP-in-UDP and NAT keepalives go to the client's session, which hands ESP back as an event.
Every client's steps are printed with its address; findings use the catalogue like
``probe connect``. The run ends at the time bound, or with ``once`` after the first client that
brought a CHILD SA up has left (it deleted its IKE SA) or ``linger`` seconds after its CHILD SA
came up. SAs still up at the end are deleted (bounded) unless ``keep``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ipsecdiag.crypto.rng import RandomSource
from ipsecdiag.engine import events as ev
from ipsecdiag.engine.config import Endpoint, IkeConfig, Role
from ipsecdiag.keys.model import IkeSaKeys, SecretBytes
from ipsecdiag.probe.narrate import Narrator, Step
from ipsecdiag.probe.record import SessionRecord
from ipsecdiag.probe.transport import IKE_PORT, NATT_PORT, Counters, Driver, Pacer, UdpSockets
from ipsecdiag.probe.tunnel_echo import TunnelEcho
from ipsecdiag.reconstruction.model import Finding

_MAX_RETIRED = 1000
_IKE_HDR = 28
_NON_ESP_MARKER = b"\x00\x00\x00\x00"
_IKE_SA_INIT = 34
_FLAG_RESPONSE = 0x20
CLEANUP_SECONDS = 3.0


@dataclass(frozen=True)
class ResponderOptions:
    listen: str
    config: IkeConfig
    port: int = IKE_PORT
    natt_port: int = NATT_PORT  # where clients float to after NAT detection (0: any free port)
    timeout: float = 300.0
    once: bool = False
    linger: float = 30.0
    keep: bool = False
    max_clients: int = 32  # half-open SAs expire in the engine (IkeConfig.half_open_timeout)
    rate: float = 50.0
    max_sends: int = 5000
    write: Path | None = None
    accepted: tuple[str, str] = ("", "")  # our IKE and ESP proposal strings, for the evidence
    answer_pings: bool = False  # echo replies through the CHILD SAs (probe/tunnel_echo.py)
    # COOKIEs (RFC 7296 §2.6) from new clients while this many IKE SAs are half-open (0: always;
    # strongSwan's cookie_threshold defaults to 10)
    cookie_threshold: int = 10


class AnswerFrames:
    """The steps about what our response carries (the chosen proposal, the authentication, the
    CHILD SA) come out while the request is processed, before the response exists: they wait,
    with the steps after them, until the response is recorded and then cite its frame, not the
    request's (review 3, item 12)."""

    KINDS = frozenset({"chosen", "authenticated", "child-sa-up"})

    def __init__(self, emit: Callable[[Step], None]) -> None:
        self.emit = emit
        self.held: list[Step] = []

    def __call__(self, s: Step) -> None:
        if s.kind in self.KINDS or self.held:
            self.held.append(s)
        else:
            self.emit(s)

    def sent(self, frame: int | None) -> None:
        """Our next datagram to this client was recorded as ``frame`` (None: never sent)."""
        held, self.held = self.held, []
        for s in held:
            if s.kind in self.KINDS:
                s.frame = frame
            self.emit(s)


@dataclass
class Client:
    peer: Endpoint
    spi_i: bytes
    sa: object
    narrator: Narrator
    frames: AnswerFrames | None = None
    up_at: float | None = None
    opened_at: float = 0.0
    cookie_only: bool = False  # answered statelessly with a COOKIE demand: forgotten at once


@dataclass
class ResponderResult:
    clients: list[Client]
    counters: Counters
    record: SessionRecord
    findings: list[Finding] = field(default_factory=list)
    refused: int = 0  # new clients beyond max_clients
    interrupted: bool = False  # ended by Ctrl-C
    forgotten: int = 0  # finished clients not kept for the report (beyond _MAX_RETIRED)
    cookies_demanded: int = 0  # IKE_SA_INITs answered with a COOKIE demand (half-open limit)

    @property
    def children_up(self) -> int:
        return sum(1 for c in self.clients if c.narrator.child is not None)


def client_offer(payload: bytes) -> str:
    """The IKE proposals of an IKE_SA_INIT request as strongSwan strings ("" if unreadable)."""
    from ipsecdiag.protocol.suites import strongswan_proposal, suites_from_v2
    from ipsecdiag.wire.errors import MalformedMessage
    from ipsecdiag.wire.ikev2 import parse_message
    from ipsecdiag.wire.ikev2_sa import SaPayload

    if payload.startswith(_NON_ESP_MARKER):
        payload = payload[4:]
    try:
        msg = parse_message(payload)
    except (MalformedMessage, ValueError):
        return ""  # the engine says what is wrong with it
    sas = msg.of_type(SaPayload)
    return ", ".join(strongswan_proposal(s) for s in suites_from_v2(sas[0])) if sas else ""  # type: ignore[arg-type]


def client_auth_offer(payload: bytes, keys: IkeSaKeys) -> list[str]:
    """What a client's IKE_AUTH request asks for, decrypted with the IKE SA's keys: IDi, IDr,
    ESP proposals and selectors (before our narrowing). [] when it cannot be read here (an
    RFC 7383 fragment: analyze of the --write pcapng reassembles it)."""
    from ipsecdiag.crypto.errors import CryptoError
    from ipsecdiag.crypto.sk import decrypt_sk
    from ipsecdiag.protocol.suites import strongswan_proposal, suites_from_v2
    from ipsecdiag.wire.errors import MalformedMessage
    from ipsecdiag.wire.ikev2 import parse_payloads
    from ipsecdiag.wire.ikev2_payloads import IdPayload
    from ipsecdiag.wire.ikev2_sa import SaPayload
    from ipsecdiag.wire.ikev2_ts import TsPayload
    from ipsecdiag.wire.registry import PayloadType

    if payload.startswith(_NON_ESP_MARKER):
        payload = payload[4:]
    if len(payload) < _IKE_HDR + 4 or payload[16] != PayloadType.SK:
        return []
    try:
        inner = parse_payloads(payload[_IKE_HDR], decrypt_sk(keys, payload, _IKE_HDR, from_initiator=True, fragment=False))
    except (MalformedMessage, ValueError, CryptoError):
        return []  # the engine reports what is wrong with it
    ids = {p.which: p.display() for p in inner if isinstance(p, IdPayload)}
    ts = {p.which: p.display() for p in inner if isinstance(p, TsPayload)}
    sas = [p for p in inner if isinstance(p, SaPayload)]
    lines = [
        f"the client sent IDi {ids.get(PayloadType.IDi, '(none)')}"
        + (f" and asked for IDr {ids[PayloadType.IDr]}" if PayloadType.IDr in ids else " (no IDr: any identity of ours)")
    ]
    if sas:
        lines.append("the client offered ESP proposals: " + ", ".join(strongswan_proposal(x) for x in suites_from_v2(sas[0])))  # type: ignore[arg-type]
    if ts:
        lines.append(f"the client proposed TSi {ts.get(PayloadType.TSi, '(none)')} and TSr {ts.get(PayloadType.TSr, '(none)')}")
    return lines


def ike_spi_i(payload: bytes) -> tuple[bytes, bool] | None:
    """(initiator SPI, is a new IKE_SA_INIT request) of an IKE datagram, None for ESP/keepalive."""
    if payload.startswith(_NON_ESP_MARKER):
        payload = payload[4:]
    elif len(payload) == 1 and payload == b"\xff":
        return None
    if len(payload) < _IKE_HDR or payload[17] >> 4 != 2:
        return None
    spi_i, spi_r = payload[:8], payload[8:16]
    new = payload[18] == _IKE_SA_INIT and not (payload[19] & _FLAG_RESPONSE) and spi_r == bytes(8)
    return spi_i, new


class Responder:
    def __init__(
        self,
        opts: ResponderOptions,
        *,
        rng: RandomSource,
        emit: Callable[[Step], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.opts, self.rng, self.emit, self.clock = opts, rng, emit, clock
        self.clients: dict[tuple[str, bytes], Client] = {}
        self.by_host: dict[str, Client] = {}  # the latest client per address, for ESP/keepalives
        self.refused = 0
        self.retired: list[Client] = []  # finished clients moved out of the table (reported)
        self.forgotten = 0  # finished clients beyond _MAX_RETIRED (counted only)
        self.internal_errors = 0
        self.started = clock()
        self.driver: Driver | None = None
        self.local: Endpoint | None = None
        self.local_natt: Endpoint | None = None
        self.echo: TunnelEcho | None = TunnelEcho(rng) if opts.answer_pings else None
        # the COOKIE secret of this run and the config that demands cookies (engine: stateless)
        self.cookie_config = dataclasses.replace(opts.config, cookie_secret=SecretBytes(rng.bytes(32)))
        self.cookies_demanded = 0

    def _emit_for(self, peer: Endpoint) -> Callable[[Step], None]:
        def emit(s: Step) -> None:
            s.text = f"[{peer}] {s.text}"
            self.emit(s)

        return emit

    def route(self, payload: bytes, src: Endpoint, dst: Endpoint, now: float) -> object | None:
        # on the NAT-T port only the non-ESP marker makes a datagram IKE (RFC 3948 §2.2): ESP
        # whose 18th octet happens to read as IKE version 2 must still go to the client's SA
        natt = self.local_natt is not None and dst.port == self.local_natt.port != (self.local.port if self.local else -1)
        head = None if natt and not payload.startswith(_NON_ESP_MARKER) else ike_spi_i(payload)
        if head is None:
            c = self.by_host.get(src.host)
            return c.sa if c else None
        spi_i, new = head
        self._forget_cookie_only()
        c = self.clients.get((src.host, spi_i)) or (None if new else self._rekeyed(src.host, spi_i))
        if c is not None:
            return c.sa
        if not new:
            return None
        if len(self.clients) >= self.opts.max_clients:
            self._retire_closed()
        if len(self.clients) >= self.opts.max_clients:
            self.refused += 1
            return None
        return self._open(src, spi_i, payload, now).sa

    def _rekeyed(self, host: str, spi_i: bytes) -> Client | None:
        """The client whose IKE SA answers for ``spi_i`` after an IKE SA rekey (RFC 7296 §2.18):
        the SPIs change (a rekey by the client brings its new SPIi), the old ones still route
        here until their Delete is done. Only on a miss, over at most ``max_clients`` SAs."""
        for c in self.clients.values():
            spis = getattr(c.sa, "ike_spis", None)
            if c.peer.host == host and spis is not None and any(i == spi_i for i, _ in spis()):
                return c
        return None

    def half_open(self) -> int:
        """IKE SAs whose IKE_AUTH has not completed yet (strongSwan counts these for cookies)."""
        from ipsecdiag.engine.state import State

        return sum(
            1 for c in self.clients.values()
            if not c.cookie_only and getattr(c.sa, "state", None) in (State.INITIAL, State.INIT_DONE)
        )  # fmt: skip

    def _forget_cookie_only(self) -> None:
        """A client we only asked for a COOKIE holds no state (RFC 7296 §2.6): drop it. Its
        COOKIE response is already queued in the driver; the retry opens a new session."""
        for key, c in list(self.clients.items()):
            if c.cookie_only:
                del self.clients[key]
                if self.by_host.get(c.peer.host) is c:
                    del self.by_host[c.peer.host]
                if self.driver is not None and c.sa in self.driver.sessions:
                    self.driver.sessions.remove(c.sa)  # type: ignore[arg-type]

    def _retire_closed(self) -> None:
        """Free the slots of clients whose IKE SA is gone (deleted, failed, or half-open past the
        engine's ``IkeConfig.half_open_timeout``); the report keeps the first ones."""
        from ipsecdiag.engine.state import State

        for key, c in list(self.clients.items()):
            if getattr(c.sa, "state", None) is State.CLOSED:
                del self.clients[key]
                if self.by_host.get(c.peer.host) is c:
                    del self.by_host[c.peer.host]
                if self.driver is not None and c.sa in self.driver.sessions:
                    self.driver.sessions.remove(c.sa)  # type: ignore[arg-type]
                if len(self.retired) < _MAX_RETIRED:
                    self.retired.append(c)
                else:
                    self.forgotten += 1

    def _open(self, src: Endpoint, spi_i: bytes, payload: bytes, now: float) -> Client:
        from ipsecdiag.engine import IkeSa

        assert self.local is not None and self.local_natt is not None
        # above the half-open threshold a new client must return a COOKIE first (its retry
        # carries it and the engine checks it statelessly)
        cfg = self.cookie_config if self.half_open() >= self.opts.cookie_threshold else self.opts.config
        sa = IkeSa(
            cfg, role=Role.RESPONDER, rng=self.rng, now=now, local=self.local, remote=src,
            local_natt=self.local_natt,
        )  # fmt: skip
        frames = AnswerFrames(self._emit_for(src))
        narrator = Narrator(
            gateway=src.host, peer="the client", offered_ike=client_offer(payload), offered_esp="",
            offer_by="the client", accepted=self.opts.accepted,
            emit=frames, clock=self.clock, frame=lambda: self.driver.frame if self.driver else 0,
            t0=self.started, rx_time=lambda: self.driver.last_rx if self.driver else None,
            mode=self.opts.config.child.mode if self.opts.config.child else "tunnel",
        )  # fmt: skip
        c = Client(src, spi_i, sa, narrator, frames=frames, opened_at=now)
        self.clients[(src.host, spi_i)] = c
        self.by_host[src.host] = c
        # timed at the datagram's arrival like its "received" step, so the steps print in time order
        narrator.step("client", f"new IKE_SA_INIT from {src} (SPI {spi_i.hex()})", at=now)
        if narrator.offered_ike:
            narrator.step("offer", f"the client offered IKE proposals: {narrator.offered_ike}", at=now)
        return c

    def on_sent(self, sa: object, frame: int) -> None:
        for c in self.clients.values():
            if c.sa is sa and c.frames is not None:
                c.frames.sent(frame)

    def on_event(self, sa: object, e: object) -> None:
        if self.echo is not None:
            self.echo.on_event(sa, e)
        for c in self.clients.values():
            if c.sa is sa:
                if isinstance(e, ev.CookieRequested) and e.sent_by_us:
                    c.cookie_only = True
                    self.cookies_demanded += 1
                    c.narrator.step("cookie", f"{self.half_open()} IKE SAs half-open (--cookie-threshold "
                                    f"{self.opts.cookie_threshold}): COOKIE demanded, no state kept")  # fmt: skip
                    return
                c.narrator.on_event(sa, e)
                self._report_auth_offer(c, e)
                if c.up_at is None and c.narrator.child is not None:
                    c.up_at = self.clock()
                return

    def _report_auth_offer(self, c: Client, e: object) -> None:
        """Issue 9: say what every client asked for in IKE_AUTH, on success too."""
        n = c.narrator
        if not (isinstance(e, ev.Received) and e.exchange == "IKE_AUTH" and not e.is_response):
            return
        if n.init_done is None or self.driver is None or not self.driver.record.datagrams:
            return
        lines = client_auth_offer(self.driver.record.datagrams[-1].payload, n.init_done.keys)
        if not lines:
            n.step("offer", "IKE_AUTH arrived in RFC 7383 fragments: `ipsecdiag analyze` of the --write pcapng shows its IDs and selectors")
        for line in lines:
            n.step("offer", line)
            if line.startswith("the client offered ESP proposals: "):
                n.offered_esp = line.removeprefix("the client offered ESP proposals: ")

    def on_error(self, sa: object, e: Exception) -> None:
        """An exception out of one client's engine: reported, that client dropped, others go on."""
        for c in self.clients.values():
            if c.sa is sa:
                c.narrator.step("internal-error", f"the IKEv2 engine failed: {type(e).__name__}: {e}")
                c.narrator.failed = True
        self.internal_errors += 1

    def _done(self) -> bool:
        if not self.opts.once:
            return False
        now = self.clock()
        return any(
            c.up_at is not None and (c.narrator.deleted is not None or now - c.up_at >= self.opts.linger)
            for c in (*self.retired, *self.clients.values())
        )

    def wake_at(self) -> float | None:
        """When ``--once --linger`` ends the run: the driver must wake then even if idle."""
        if not self.opts.once:
            return None
        ups = [c.up_at for c in (*self.retired, *self.clients.values()) if c.up_at is not None]
        return min(ups) + self.opts.linger if ups else None

    def run(self) -> ResponderResult:
        o = self.opts
        # two sockets: the engine tells NAT-T traffic (non-ESP marker) by our local port
        ports = [o.port, o.natt_port]
        sockets = UdpSockets(o.listen, ports)
        bound = sockets.open()
        self.local, self.local_natt = Endpoint(o.listen, bound[0]), Endpoint(o.listen, bound[-1])
        try:
            start = self.started = self.clock()
            self.driver = Driver(
                sockets, route=self.route, on_event=self.on_event, on_error=self.on_error, on_sent=self.on_sent,  # type: ignore[arg-type]
                pacer=Pacer(rate=o.rate, burst=32, now=start), max_sends=o.max_sends, clock=self.clock,
            )  # fmt: skip
            if self.echo is not None:
                self.driver.add(self.echo)
            interrupted = False
            try:
                self.emit(Step(0.0, "listening", f"IKEv2 responder on {self.local}" + (
                    f" and {self.local_natt}" if self.local_natt != self.local else "")))  # fmt: skip
                self.driver.run(self._done, deadline=start + o.timeout, wake_at=self.wake_at)
            except KeyboardInterrupt:
                # Ctrl-C ends the run: the SAs are still deleted and the record kept
                interrupted = True
                self.emit(Step(round(self.clock() - start, 3), "interrupted", "interrupted: cleaning up"))
            if not o.keep:
                self._cleanup()
            clients = [c for c in (*self.retired, *self.clients.values()) if not c.cookie_only]
            for c in clients:
                if c.frames is not None:
                    c.frames.sent(None)  # steps still waiting for a response that was never sent
            findings = [f for c in clients for f in c.narrator.findings]
            return ResponderResult(
                clients, self.driver.counters, self.driver.record, findings, self.refused, interrupted,
                self.forgotten, self.cookies_demanded,
            )  # fmt: skip
        finally:
            sockets.close()

    def _cleanup(self) -> None:
        from ipsecdiag.engine.state import State

        assert self.driver is not None
        live = [c for c in self.clients.values() if getattr(c.sa, "state", None) is State.ESTABLISHED]
        if not live:
            return
        now = self.clock()
        for c in live:
            c.sa.delete(now)  # type: ignore[attr-defined]
            c.narrator.step("cleanup", "deleting the IKE SA (INFORMATIONAL Delete)")
        self.driver.run(
            lambda: all(getattr(c.sa, "state", None) is State.CLOSED for c in live), deadline=now + CLEANUP_SECONDS
        )


def collect_keys(result: ResponderResult) -> None:
    """Every client's IKE and CHILD SA keys into the recording (for ``--write``)."""
    for c in result.clients:
        n = c.narrator
        if n.init_done is not None:
            result.record.add_keys([n.init_done.keys])
        keys = getattr(c.sa, "keys", None)
        if keys is not None:
            result.record.add_keys([keys])
        if n.child is not None:
            result.record.add_keys([n.child.keys_in, n.child.keys_out])


__all__ = ["Client", "Responder", "ResponderOptions", "ResponderResult", "collect_keys", "ike_spi_i"]
