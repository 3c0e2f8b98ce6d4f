"""The I/O driver on loopback with scripted sessions: pacing, budget, deadline, routing, errors."""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass, field

import pytest

from ipsecdiag.engine.config import Endpoint
from ipsecdiag.probe.transport import Driver, Pacer, ProbeError, UdpSockets, resolve, source_address


@dataclass(frozen=True)
class Out:
    payload: bytes
    src: Endpoint
    dst: Endpoint


@dataclass
class Scripted:
    """A session that sends ``to_send`` datagrams at once and records what it receives."""

    local: Endpoint
    peer: Endpoint
    to_send: int = 0
    endless: bool = False
    timer: float | None = None
    received: list[tuple[bytes, Endpoint, Endpoint]] = field(default_factory=list)
    timers_fired: int = 0
    events: list[str] = field(default_factory=list)

    def receive_datagram(self, payload: bytes, src: Endpoint, dst: Endpoint, now: float) -> None:
        self.received.append((payload, src, dst))
        self.events.append("got")

    def datagrams_to_send(self, now: float) -> list[Out]:
        n = 1 if self.endless else self.to_send
        self.to_send = 0
        return [Out(b"x%d" % i, self.local, self.peer) for i in range(n)]

    def get_timer(self) -> float | None:
        return self.timer

    def handle_timer(self, now: float) -> None:
        self.timers_fired += 1
        self.timer = None

    def next_event(self) -> str | None:
        return self.events.pop(0) if self.events else None


@pytest.fixture
def peer() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    yield s
    s.close()


def _driver(session: Scripted, **kw: object) -> tuple[Driver, UdpSockets, list[object]]:
    socks = UdpSockets("127.0.0.1", [0])
    port = socks.open()[0]
    session.local = Endpoint("127.0.0.1", port)
    seen: list[object] = []
    drv = Driver(socks, route=lambda p, s, d, now: session, on_event=lambda s, e: seen.append(e), **kw)  # type: ignore[arg-type]
    drv.add(session)
    return drv, socks, seen


def _drain(sock: socket.socket, n: int) -> list[bytes]:
    return [sock.recvfrom(100)[0] for _ in range(n)]


def test_pacer_token_bucket() -> None:
    p = Pacer(rate=4.0, burst=2, now=0.0)
    assert p.wait(0.0) == 0
    p.take(0.0)
    p.take(0.0)
    assert p.wait(0.0) == pytest.approx(0.25)
    assert p.wait(0.25) == 0
    p.take(0.25)
    assert p.wait(10.0) == 0  # refills, but never beyond the burst
    p.take(10.0)
    p.take(10.0)
    assert p.wait(10.0) > 0
    with pytest.raises(ValueError):
        Pacer(rate=0)


def test_sends_are_paced_and_recorded(peer: socket.socket) -> None:
    s = Scripted(Endpoint("127.0.0.1", 0), Endpoint(*peer.getsockname()), to_send=6)
    drv, socks, _ = _driver(s, pacer=Pacer(rate=20.0, burst=2, now=time.monotonic()))
    t0 = time.monotonic()
    try:
        reason = drv.run(lambda: drv.counters.sent >= 6, deadline=t0 + 5)
    finally:
        socks.close()
    elapsed = time.monotonic() - t0
    assert reason == "done" and drv.counters.sent == 6
    assert elapsed >= 0.18  # 2 at once, then 4 more at 20/s
    assert drv.counters.paced_delays > 0
    assert _drain(peer, 6) == [b"x%d" % i for i in range(6)]
    assert [d.outgoing for d in drv.record.datagrams] == [True] * 6


def test_send_budget_stops_an_endless_sender(peer: socket.socket) -> None:
    s = Scripted(Endpoint("127.0.0.1", 0), Endpoint(*peer.getsockname()), endless=True)
    drv, socks, _ = _driver(s, pacer=Pacer(rate=1000.0, burst=50), max_sends=25)
    try:
        reason = drv.run(lambda: False, deadline=time.monotonic() + 5)
    finally:
        socks.close()
    assert reason == "budget" and drv.counters.sent == 25


def test_deadline_ends_a_silent_session_and_timers_fire() -> None:
    s = Scripted(Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", 9), timer=time.monotonic() + 0.05)
    drv, socks, _ = _driver(s)
    t0 = time.monotonic()
    try:
        reason = drv.run(lambda: False, deadline=t0 + 0.3)
    finally:
        socks.close()
    assert reason == "deadline" and 0.3 <= time.monotonic() - t0 < 1.0
    assert s.timers_fired == 1


def test_received_datagrams_reach_the_routed_session_with_frames(peer: socket.socket) -> None:
    s = Scripted(Endpoint("127.0.0.1", 0), Endpoint(*peer.getsockname()), to_send=1)
    frames: list[int] = []
    socks = UdpSockets("127.0.0.1", [0])
    port = socks.open()[0]
    s.local = Endpoint("127.0.0.1", port)

    def on_event(sess: object, ev: object) -> None:
        frames.append(drv.frame)

    drv = Driver(socks, route=lambda p, src, dst, now: s if p != b"ignore me" else None, on_event=on_event)
    drv.add(s)
    peer.sendto(b"ignore me", ("127.0.0.1", port))
    peer.sendto(b"hello", ("127.0.0.1", port))
    try:
        drv.run(lambda: bool(s.received), deadline=time.monotonic() + 3)
    finally:
        socks.close()
    assert s.received == [(b"hello", Endpoint(*peer.getsockname()), Endpoint("127.0.0.1", port))]
    assert drv.counters.ignored == 1 and drv.counters.received == 2
    # frame 1 is our send, frame 2 the datagram whose event the handler saw
    assert [d.payload for d in drv.record.datagrams] == [b"x0", b"hello"] and frames == [2]


def test_privileged_port_gives_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, addr: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refuse)
    with pytest.raises(ProbeError, match=r"ports below 1024 need root .* --port 0"):
        UdpSockets("127.0.0.1", [500]).open()


def test_address_not_on_this_host_and_port_in_use(peer: socket.socket) -> None:
    with pytest.raises(ProbeError, match="not an address of this host"):
        UdpSockets("192.0.2.123", [0]).open()
    with pytest.raises(ProbeError, match="already in use"):
        UdpSockets("127.0.0.1", [peer.getsockname()[1]]).open()


def test_resolve_and_source_address() -> None:
    assert resolve("127.0.0.1") == "127.0.0.1"
    assert resolve("::1") == "::1"
    with pytest.raises(ProbeError, match="cannot resolve"):
        resolve("no-such-host.invalid")
    assert source_address("127.0.0.1") == "127.0.0.1"


def test_on_error_drops_only_the_broken_session() -> None:
    class Broken(Scripted):
        def handle_timer(self, now: float) -> None:
            raise RuntimeError("engine bug")

    good = Scripted(Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", 9))
    bad = Broken(Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", 9), timer=time.monotonic())
    errors: list[tuple[object, str]] = []
    socks = UdpSockets("127.0.0.1", [0, 0])
    assert len(set(socks.open())) == 2  # two free ports, not one
    drv = Driver(socks, route=lambda *a: None, on_event=lambda s, e: None, on_error=lambda s, e: errors.append((s, str(e))))
    drv.add(good)
    drv.add(bad)
    try:
        assert drv.run(lambda: False, deadline=time.monotonic() + 0.2) == "deadline"
    finally:
        socks.close()
    assert errors == [(bad, "engine bug")] and drv.sessions == [good]


def test_icmp_error_queue_entries_parse() -> None:
    import struct as st

    from ipsecdiag.probe.icmperr import parse

    offender = st.pack("<H", socket.AF_INET) + st.pack("!H", 0) + socket.inet_aton("198.51.100.1") + bytes(8)
    # ECONNREFUSED from ICMP (origin 2) type 3 code 3
    err = parse(st.pack("=IBBBBII", 111, 2, 3, 3, 0, 0, 0) + offender, ("198.51.100.2", 500))
    assert err is not None and err.text() == "ICMP port unreachable from 198.51.100.1 for our datagram to 198.51.100.2:500"
    too_big = parse(st.pack("=IBBBBII", 90, 2, 3, 4, 0, 1400, 0) + offender, ("198.51.100.2", 4500))
    assert too_big is not None and too_big.mtu == 1400 and "next-hop MTU 1400" in too_big.text()
    assert parse(st.pack("=IBBBBII", 90, 1, 0, 0, 0, 1500, 0), ("x", 1)) is None  # a local error
    assert parse(b"short", ("x", 1)) is None


def test_done_waits_for_the_paced_queue(peer: socket.socket) -> None:
    s = Scripted(Endpoint("127.0.0.1", 0), Endpoint(*peer.getsockname()), to_send=4)
    drv, socks, _ = _driver(s, pacer=Pacer(rate=20.0, burst=1, now=time.monotonic()))
    try:
        assert drv.run(lambda: True, deadline=time.monotonic() + 5) == "done"
    finally:
        socks.close()
    assert drv.counters.sent == 4 and len(_drain(peer, 4)) == 4
