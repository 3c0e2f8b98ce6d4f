"""The I/O driver: UDP sockets, the clock and a send pacer around sans-I/O IKE SAs.

The engine (``ipsecdiag.engine``) never touches a socket or a clock; this module is where its
datagrams meet the network. :class:`Driver` runs one ``selectors`` loop that

* feeds received datagrams to the session they belong to (``receive_datagram(payload, src, dst,
  now)``, payload exactly as received, the non-ESP marker included on port 4500),
* fires the engines' timers (``get_timer()`` / ``handle_timer(now)``),
* sends what they queue (``datagrams_to_send(now)``) through a token-bucket :class:`Pacer`, so a
  probe never floods, and stops at a hard send budget,
* records every datagram with its wall-clock time (:mod:`ipsecdiag.probe.record`),
* and ends at an overall deadline whatever the peer does.

``now`` is ``time.monotonic()``; the recording uses the wall clock at the same instant.
Socket errors the user can act on (a privileged port, an address not on this host, no route)
become :class:`ProbeError` with a one-line message.
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ipsecdiag.engine.config import Endpoint
from ipsecdiag.probe import icmperr
from ipsecdiag.probe.record import Datagram, SessionRecord

IKE_PORT = 500
NATT_PORT = 4500
MAX_DATAGRAM = 65535
# Per loop turn and socket: a peer flooding us cannot starve timers or the deadline check.
_RECV_BATCH = 64
# The recording keeps the first datagrams of a flood and counts the rest.
MAX_RECORDED = 20000
_MAX_ICMP = 100


class ProbeError(Exception):
    """Something the user can fix (addresses, ports, privileges): one line, exit status 2."""


class Outgoing(Protocol):
    @property
    def payload(self) -> bytes: ...
    @property
    def src(self) -> Endpoint: ...
    @property
    def dst(self) -> Endpoint: ...


class Session(Protocol):
    """What the driver needs of an engine IKE SA (``ipsecdiag.engine.IkeSa`` has it)."""

    def receive_datagram(self, payload: bytes, src: Endpoint, dst: Endpoint, now: float) -> None: ...
    def datagrams_to_send(self, now: float) -> Iterable[Outgoing]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_event(self) -> object | None: ...


class Pacer:
    """Token bucket: ``rate`` sends per second on average, bursts of at most ``burst``.

    A burst lets the fragments of one IKE message (RFC 7383) leave together; the rate bounds
    what a confused engine or a retransmission storm can put on the wire.
    """

    def __init__(self, rate: float = 10.0, burst: int = 16, now: float = 0.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("pacer needs a positive rate and a burst of at least 1")
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def wait(self, now: float) -> float:
        """Seconds until one send is allowed (0 when it is allowed now)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1


def _describe_oserror(e: OSError, what: str) -> str:
    reason = {
        errno.EACCES: "permission denied",
        errno.EADDRINUSE: "already in use",
        errno.EADDRNOTAVAIL: "address not available on this host",
        errno.ENETUNREACH: "network unreachable",
        errno.EHOSTUNREACH: "host unreachable",
    }.get(e.errno or 0, e.strerror or str(e))
    return f"{what}: {reason}"


def resolve(host: str) -> str:
    """An IP address literal for ``host`` (names resolved once, IPv4 preferred)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        raise ProbeError(f"cannot resolve {host!r}: {getattr(e, 'strerror', None) or e}") from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)
    return str(infos[0][4][0])


def source_address(gateway: str, port: int = IKE_PORT) -> str:
    """The local address the kernel would use towards ``gateway`` (no packet is sent)."""
    fam = socket.AF_INET6 if ":" in gateway else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        try:
            s.connect((gateway, port))
        except OSError as e:
            raise ProbeError(_describe_oserror(e, f"no route to {gateway}")) from None
        return str(s.getsockname()[0])


class UdpSockets:
    """Non-blocking UDP sockets on one local address, one per distinct local port.

    ``ports`` are what the engine will use as source ports, in order; each 0 asks the kernel
    for another free port. :meth:`open` returns the real numbers in the same order (a port
    listed twice is bound once and returned twice).
    """

    def __init__(self, local: str, ports: Iterable[int]) -> None:
        self.local = local
        self.wanted = list(ports)
        self.socks: dict[int, socket.socket] = {}

    def open(self) -> list[int]:
        fam = socket.AF_INET6 if ":" in self.local else socket.AF_INET
        bound = []
        try:
            for port in self.wanted:
                if port and port in self.socks:
                    bound.append(port)
                    continue
                s = socket.socket(fam, socket.SOCK_DGRAM)
                try:
                    s.setblocking(False)
                    s.bind((self.local, port))
                except OSError as e:
                    s.close()
                    raise ProbeError(self._bind_error(e, port)) from None
                icmperr.enable(s)  # ICMP errors about our datagrams: "nothing listens there"
                real = int(s.getsockname()[1])
                self.socks[real] = s
                bound.append(real)
        except ProbeError:
            self.close()
            raise
        return bound

    def _bind_error(self, e: OSError, port: int) -> str:
        where = f"UDP port {port} on {self.local}"
        if e.errno == errno.EACCES:
            return (
                f"cannot bind {where}: ports below 1024 need root or CAP_NET_BIND_SERVICE; "
                "use --port 0 (or a port above 1023) for an unprivileged source port (NAT-T makes it legal)"
            )
        if e.errno == errno.EADDRINUSE:
            return f"cannot bind {where}: already in use (an IKE daemon running here?); choose another --port"
        if e.errno == errno.EADDRNOTAVAIL:
            return f"cannot bind {where}: {self.local} is not an address of this host"
        return "cannot bind " + _describe_oserror(e, where)

    def sock_for(self, port: int) -> socket.socket | None:
        return self.socks.get(port)

    def close(self) -> None:
        for s in self.socks.values():
            s.close()
        self.socks.clear()


@dataclass
class Counters:
    sent: int = 0
    received: int = 0
    send_errors: int = 0
    ignored: int = 0  # datagrams from addresses no session talks to
    not_recorded: int = 0
    last_send_error: str = ""
    paced_delays: int = 0  # times a send had to wait for the pacer
    icmp_errors: list[icmperr.IcmpError] = field(default_factory=list)  # first _MAX_ICMP kept


@dataclass
class Driver:
    """One select loop for the sessions of a run.

    ``route(payload, src, dst)`` picks the session a received datagram belongs to (None drops
    it, counted as ``ignored``); ``on_event(session, event)`` sees every engine event as it
    comes out. :meth:`run` returns when ``done()`` is true, the deadline passes or the send
    budget is spent (``reason`` says which).
    """

    sockets: UdpSockets
    route: Callable[[bytes, Endpoint, Endpoint, float], Session | None]
    on_event: Callable[[Session, object], None]
    pacer: Pacer = field(default_factory=Pacer)
    max_sends: int = 500
    record: SessionRecord = field(default_factory=SessionRecord)
    clock: Callable[[], float] = time.monotonic
    wallclock: Callable[[], float] = time.time
    counters: Counters = field(default_factory=Counters)
    sessions: list[Session] = field(default_factory=list)
    reason: str = ""
    last_rx: float | None = None  # clock() time of the datagram delivered last
    # With several sessions (the responder), an exception out of one engine ends that session
    # only: it goes to on_error and the session is dropped. Without it, the exception propagates.
    on_error: Callable[[Session, Exception], None] | None = None
    # ``on_sent(session, frame)``: a datagram of ``session`` was just recorded as ``frame``
    on_sent: Callable[[Session, int], None] | None = None

    def __post_init__(self) -> None:
        self._queue: deque[tuple[Session, Outgoing]] = deque()
        self._wall_offset = self.wallclock() - self.clock()

    def add(self, session: Session) -> None:
        if session not in self.sessions:
            self.sessions.append(session)

    def wall(self, now: float) -> float:
        return now + self._wall_offset

    @property
    def frame(self) -> int:
        """Frame number (in the written pcapng) of the datagram recorded last; 0 before any."""
        return len(self.record.datagrams)

    # -- one turn of the loop
    def _guarded(self, s: Session, call: Callable[..., None], *args: object) -> None:
        if self.on_error is None:
            call(*args)
            return
        try:
            call(*args)
        except Exception as e:  # noqa: BLE001 - one broken session must not end the others
            if s in self.sessions:
                self.sessions.remove(s)
            self.on_error(s, e)

    def _collect(self, now: float) -> None:
        for s in list(self.sessions):
            self._guarded(s, self._collect_one, s, now)

    def _collect_one(self, s: Session, now: float) -> None:
        for d in s.datagrams_to_send(now):
            self._queue.append((s, d))
        self._drain_events(s)

    def _deliver(self, s: Session, payload: bytes, src: Endpoint, dst: Endpoint, now: float) -> None:
        # an engine IKE SA checks certificate dates against the real time it is given with each
        # datagram (settable ``sa.wall_time``, an aware datetime); this layer owns the clock.
        # Other sessions (scan, ESP echo) have no dates to check.
        if hasattr(s, "wall_time"):
            s.wall_time = datetime.datetime.fromtimestamp(self.wallclock(), datetime.UTC)
        s.receive_datagram(payload, src, dst, now)
        # events right away, so that on_event can cite this datagram's frame number
        self._drain_events(s)

    def _drain_events(self, s: Session) -> None:
        # bounded: an engine that keeps producing events must not spin us forever
        for _ in range(10000):
            ev = s.next_event()
            if ev is None:
                return
            self.on_event(s, ev)

    def _send(self, now: float) -> float | None:
        """Send what the pacer allows; returns the wait until the next allowed send, if any."""
        while self._queue:
            if self.counters.sent >= self.max_sends:
                self.reason = "budget"
                self._queue.clear()
                return None
            wait = self.pacer.wait(now)
            if wait > 0:
                self.counters.paced_delays += 1
                return wait
            s, d = self._queue.popleft()
            self.pacer.take(now)
            before = self.frame
            self._sendto(now, d)
            if self.on_sent is not None and self.frame > before:
                self.on_sent(s, self.frame)
        return None

    def _sendto(self, now: float, d: Outgoing) -> None:
        sock = self.sockets.sock_for(d.src.port) or next(iter(self.sockets.socks.values()))
        local = sock.getsockname()
        src = (str(local[0]), int(local[1]))
        self.counters.sent += 1
        try:
            try:
                sock.sendto(d.payload, (d.dst.host, d.dst.port))
            except ConnectionRefusedError:
                # an earlier datagram's ICMP error, reported on this send (IP_RECVERR): read it, retry
                self._icmp(sock)
                sock.sendto(d.payload, (d.dst.host, d.dst.port))
        except OSError as e:
            # The engine retransmits; the summary says why nothing arrived.
            self.counters.send_errors += 1
            self.counters.last_send_error = _describe_oserror(e, f"send to {d.dst}")
            return
        self._record(Datagram(self.wall(now), src, (d.dst.host, d.dst.port), bytes(d.payload), True))

    def _icmp(self, sock: socket.socket) -> None:
        errors = self.counters.icmp_errors
        new = icmperr.drain(sock)[: max(0, _MAX_ICMP - len(errors))]
        errors += new
        local = sock.getsockname()
        now = self.wall(self.clock())
        for e in new:
            # into the session's pcapng too: analyze of the file then sees why nothing answered
            raw = icmperr.error_packet(e, (str(local[0]), int(local[1])))
            if raw is not None:
                self._record(Datagram(now, (e.offender, 0), (str(local[0]), 0), e.quoted, False, raw))

    def _record(self, d: Datagram) -> None:
        if len(self.record.datagrams) < MAX_RECORDED:
            self.record.add(d)
        else:
            self.counters.not_recorded += 1

    def _receive(self, sock: socket.socket, now: float) -> None:
        local = sock.getsockname()
        dst = Endpoint(str(local[0]), int(local[1]))
        for _ in range(_RECV_BATCH):
            try:
                payload, addr = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # an ICMP error about one of our datagrams (IP_RECVERR): its details are queued
                self._icmp(sock)
                continue
            src = Endpoint(str(addr[0]), int(addr[1]))
            self.counters.received += 1
            session = self.route(payload, src, dst, now)
            if session is None:
                self.counters.ignored += 1
                continue
            self._record(Datagram(self.wall(now), (src.host, src.port), (dst.host, dst.port), payload, False))
            self.last_rx = now
            self.add(session)
            self._guarded(session, self._deliver, session, payload, src, dst, now)

    def _fire_timers(self, now: float) -> None:
        for s in list(self.sessions):
            t = s.get_timer()
            if t is not None and t <= now:
                self._guarded(s, s.handle_timer, now)

    def run(self, done: Callable[[], bool], deadline: float, wake_at: Callable[[], float | None] | None = None) -> str:
        """Loop until ``done()``, ``deadline`` (a ``clock()`` value) or the send budget.

        Returns ``"done"``, ``"deadline"`` or ``"budget"``.
        """
        sel = selectors.DefaultSelector()
        try:
            for s in self.sockets.socks.values():
                sel.register(s, selectors.EVENT_READ)
            while True:
                now = self.clock()
                self._fire_timers(now)
                self._collect(now)
                pace_wait = self._send(now)
                self._collect(now)  # events queued by the sends themselves
                if self._queue and pace_wait is None:
                    pace_wait = self.pacer.wait(now)
                if done() and not self._queue:  # what is queued (e.g. a Delete response) goes first
                    self.reason = "done"
                    return self.reason
                if self.reason == "budget":
                    return self.reason
                if now >= deadline:
                    self.reason = "deadline"
                    return self.reason
                wake = deadline
                for s in self.sessions:
                    t = s.get_timer()
                    if t is not None:
                        wake = min(wake, t)
                if pace_wait is not None:
                    wake = min(wake, now + pace_wait)
                extra = wake_at() if wake_at is not None else None  # e.g. the responder's --linger end
                if extra is not None:
                    wake = min(wake, extra)
                # a floor keeps an engine whose timer stays in the past from spinning the CPU
                for key, _mask in sel.select(max(0.0005, wake - now)):
                    self._receive(key.fileobj, self.clock())  # type: ignore[arg-type]
        finally:
            sel.close()


__all__ = [
    "IKE_PORT",
    "MAX_RECORDED",
    "NATT_PORT",
    "Counters",
    "Driver",
    "Pacer",
    "ProbeError",
    "Session",
    "UdpSockets",
    "resolve",
    "source_address",
]
