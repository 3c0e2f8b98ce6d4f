"""``probe connect --ping``: ICMP echo through the CHILD SA as userspace ESP-in-UDP.

No kernel IPsec and no raw socket: the echo requests are built here (:mod:`ipsecdiag.esp.inner`),
protected by :class:`~ipsecdiag.esp.tunnel.EspTunnel` with the CHILD SA's keys and sent as
ESP-in-UDP (RFC 3948) from the IKE SA's NAT-T socket, which is why the CLI forces UDP
encapsulation with ``--ping``. ESP coming back reaches the IKE SA (the driver routes by the
gateway's address), which hands it out as ``EspReceived`` events; :class:`EchoSession` opens
them. The same session serves ``probe mtu``'s search through the tunnel.

The inner source is the virtual IP the gateway assigned, else our own address when the
narrowed TSi holds it, else the first usable address of TSi: the gateway routes replies to any
address of TSi through the tunnel.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from ipsecdiag.crypto.rng import RandomSource
from ipsecdiag.engine import events as ev
from ipsecdiag.engine.config import Endpoint
from ipsecdiag.engine.window import Datagram
from ipsecdiag.esp.inner import IcmpMessage, echo_request, parse_icmp
from ipsecdiag.esp.tunnel import EspTunnel, SequenceExhausted
from ipsecdiag.probe.narrate import Narrator, finding, ts_text
from ipsecdiag.probe.transport import Driver

DEFAULT_SIZE = 84  # the inner IP packet of `ping` with its default 56 data bytes


@dataclass(frozen=True)
class PingOptions:
    host: str  # an address literal inside the gateway's TSr
    count: int = 4
    interval: float = 1.0
    size: int = DEFAULT_SIZE  # whole inner IP packet, header included
    # how long the last request may take to be answered: a gateway reports an absent inner host
    # (ICMP host unreachable through the tunnel) only after its ARP gives up, ~3 s on Linux
    wait: float = 3.5
    source: str | None = None  # inner source address (default: see inner_source)


@dataclass
class PingResult:
    host: str
    source: str
    sent: int = 0
    received: int = 0
    rtts: list[float] = field(default_factory=list)  # seconds, in reply order
    icmp_errors: list[str] = field(default_factory=list)
    esp_sent: int = 0
    esp_received: int = 0
    esp_dropped: dict[str, int] = field(default_factory=dict)
    problem: str = ""  # why nothing could be sent at all
    send_errors: int = 0  # ESP datagrams the kernel refused to send (e.g. EMSGSIZE)
    send_error: str = ""

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0

    def summary(self) -> str:
        text = f"{self.sent} sent, {self.received} received, {self.loss:.0%} loss"
        if self.rtts:
            ms = [r * 1000 for r in self.rtts]
            dev = statistics.pstdev(ms) if len(ms) > 1 else 0.0
            text += f", rtt min/avg/max/mdev {min(ms):.3f}/{statistics.fmean(ms):.3f}/{max(ms):.3f}/{dev:.3f} ms"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "host": self.host,
            "source": self.source,
            "sent": self.sent,
            "received": self.received,
            "loss": round(self.loss, 4),
            "rtt_ms": [round(r * 1000, 3) for r in self.rtts],
            "icmp_errors": self.icmp_errors,
            "esp_sent": self.esp_sent,
            "esp_received": self.esp_received,
            "esp_dropped": self.esp_dropped,
            "problem": self.problem or None,
            "send_errors": self.send_errors,
        }


def inner_source(child: ev.ChildSaUp, local_addr: str) -> str:
    """Our inner address for the CHILD SA (see the module docstring); ValueError if none fits."""
    if child.virtual_ips:
        return child.virtual_ips[0]
    ranges = []
    for ts in child.ts_i:
        if ts.is_ip_range and len(ts.start_addr) in (4, 16):
            ranges.append((ipaddress.ip_address(ts.start_addr), ipaddress.ip_address(ts.end_addr)))
    ours = ipaddress.ip_address(local_addr)
    for lo, hi in ranges:
        if lo.version == ours.version and lo <= ours <= hi:  # type: ignore[operator]
            return str(ours)
    for lo, hi in ranges:
        # skip a subnet's network address (x.x.x.0) when the range holds more
        return str(lo + 1 if hi > lo and int(lo) % 256 == 0 else lo)  # type: ignore[operator]
    raise ValueError(f"no address to use inside the negotiated TSi ({ts_text(child.ts_i)})")


def in_selectors(addr: str, selectors: tuple[object, ...]) -> bool:
    a = ipaddress.ip_address(addr)
    for ts in selectors:
        start, end = getattr(ts, "start_addr", b""), getattr(ts, "end_addr", b"")
        if len(start) == len(a.packed) and start <= a.packed <= end:
            return True
    return False


class EchoSession:
    """Echo requests out through an :class:`EspTunnel`, replies in: a driver session.

    ``send(seq, size, now)`` queues one request; ``on_esp`` opens what the IKE SA hands back.
    ``tick(now)`` (set by the user) runs at :meth:`get_timer` and after each reply, and returns
    the next time it wants to run (None: no timer).
    """

    def __init__(self, tunnel: EspTunnel, *, src: str, dst: str, local: Endpoint, remote: Endpoint, ident: int) -> None:
        self.tunnel, self.src, self.dst = tunnel, src, dst
        self.local, self.remote, self.ident = local, remote, ident & 0xFFFF
        self.sent_at: dict[int, float] = {}
        self.sizes: dict[int, int] = {}
        self.replies: dict[int, tuple[float, IcmpMessage]] = {}  # seq -> (rtt, message)
        self.errors: list[IcmpMessage] = []
        self.esp_in = 0
        self.problem = ""
        self.tick: Callable[[float], float | None] = lambda now: None
        self._out: list[Datagram] = []
        self._timer: float | None = None
        self.on_reply: Callable[[int, float, IcmpMessage], None] = lambda seq, rtt, msg: None

    def start(self, now: float) -> None:
        self._timer = self.tick(now)

    def send(self, seq: int, size: int, now: float) -> None:
        try:
            pkt = echo_request(self.src, self.dst, ident=self.ident, seq=seq, size=size, df=True, ip_ident=seq)
            esp = self.tunnel.protect_packet(pkt)
        except (SequenceExhausted, ValueError) as e:  # exhausted SA; a size or address that cannot be
            self.problem = str(e)
            return
        self.sent_at[seq], self.sizes[seq] = now, size
        self._out.append(Datagram(esp, self.local, self.remote))

    def on_esp(self, data: bytes, src: Endpoint, now: float) -> None:
        self.esp_in += 1
        got = self.tunnel.unprotect(data, src=src.host, dst=self.local.host)
        if not got.ok or got.packet is None:
            return
        msg = parse_icmp(got.packet)
        if msg is None or msg.ident != self.ident or msg.seq not in self.sent_at:
            return
        if msg.is_reply:
            if msg.seq in self.replies or not msg.checksum_ok or msg.size != self.sizes[msg.seq]:
                return  # a duplicate, or a reply that is not the packet we sent back
            rtt = now - self.sent_at[msg.seq]
            self.replies[msg.seq] = (rtt, msg)
            self.on_reply(msg.seq, rtt, msg)
        else:
            self.errors.append(msg)
        self._timer = self.tick(now)

    # -- the driver's Session protocol
    def receive_datagram(self, payload: bytes, src: Endpoint, dst: Endpoint, now: float) -> None:
        self.on_esp(payload, src, now)

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return self._timer

    def handle_timer(self, now: float) -> None:
        self._timer = self.tick(now)

    def next_event(self) -> object | None:
        return None


def attach(
    sa: object, driver: Driver, narrator: Narrator, *, rng: RandomSource, source: str | None, host: str
) -> EchoSession:
    """An :class:`EchoSession` on the CHILD SA ``narrator`` saw come up, fed by the driver.

    Raises ValueError with a one-line reason when the SA cannot carry our packets (not
    UDP-encapsulated, no inner source address).
    """
    child = narrator.child
    assert child is not None
    if not child.encap:
        raise ValueError("the CHILD SA is not UDP-encapsulated, and raw ESP needs a raw socket: use --encap")
    local: Endpoint = sa.local_natt  # type: ignore[attr-defined]
    if source is not None and source not in child.virtual_ips and not in_selectors(source, child.ts_i):
        # RFC 4301 §5.2: the receiver checks the inner source against the SA's selectors and
        # discards the packet; nothing on the path would be at fault
        raise ValueError(
            f"--ping-source {source} is outside the negotiated TSi ({ts_text(child.ts_i)}): "
            "the gateway would discard those packets (RFC 4301 §5.2)"
        )
    src = source or inner_source(child, local.host)

    tunnel = EspTunnel(child.keys_out, child.keys_in, rng=rng, mode=child.mode, esn=child.esn)
    ident = int.from_bytes(rng.bytes(2), "big")
    echo = EchoSession(tunnel, src=src, dst=host, local=local, remote=sa.remote, ident=ident)  # type: ignore[attr-defined]
    previous = driver.on_event

    def on_event(session: object, e: object) -> None:
        previous(session, e)
        if isinstance(e, ev.EspReceived):
            echo.on_esp(e.data, e.src, driver.clock())

    driver.on_event = on_event
    driver.add(echo)
    return echo


def detach(driver: Driver, echo: EchoSession, narrator: Narrator) -> None:
    if echo in driver.sessions:
        driver.sessions.remove(echo)
    driver.on_event = narrator.on_event


def run_ping(sa: object, driver: Driver, narrator: Narrator, opts: PingOptions, rng: RandomSource) -> PingResult:
    """Send ``opts.count`` echo requests through the CHILD SA and judge what came back."""
    child = narrator.child
    assert child is not None
    result = PingResult(opts.host, opts.source or "")
    try:
        echo = attach(sa, driver, narrator, rng=rng, source=opts.source, host=opts.host)
    except ValueError as e:
        result.problem = str(e)
        narrator.step("ping", f"cannot ping through the tunnel: {e}")
        narrator.failed = True  # asked for a data-plane test that could not run
        return result
    result.source = echo.src
    if not in_selectors(opts.host, child.ts_r):
        narrator.step("ping", f"warning: {opts.host} is outside the negotiated TSr ({ts_text(child.ts_r)}); the gateway must drop it")
    narrator.step("ping", f"ICMP echo {echo.src} -> {opts.host} through ESP SPI 0x{child.spi_out:08x}, {opts.size}-byte packets, DF set")
    start = driver.clock()
    last = start + (opts.count - 1) * opts.interval

    def tick(now: float) -> float | None:
        due = 1 + int((now - start) / opts.interval + 1e-9)
        for seq in range(len(echo.sent_at) + 1, min(due, opts.count) + 1):
            echo.send(seq, opts.size, now)
        n = len(echo.sent_at)
        return start + n * opts.interval if n < opts.count else None

    def on_reply(seq: int, rtt: float, msg: IcmpMessage) -> None:
        narrator.step("ping", f"{msg.size} bytes from {msg.src}: icmp_seq={seq} time={rtt * 1000:.3f} ms", frame=driver.frame)

    echo.tick, echo.on_reply = tick, on_reply
    echo.start(start)
    done = lambda: bool(echo.problem) or (len(echo.sent_at) == opts.count and len(echo.replies) == opts.count)  # noqa: E731
    errors_before = driver.counters.send_errors
    try:
        driver.run(done, deadline=last + opts.wait)
    finally:
        detach(driver, echo, narrator)
    result.send_errors = driver.counters.send_errors - errors_before
    if result.send_errors:
        result.send_error = driver.counters.last_send_error
    _judge(result, echo, narrator, child)
    return result


def _judge(result: PingResult, echo: EchoSession, narrator: Narrator, child: ev.ChildSaUp) -> None:
    result.sent, result.received = len(echo.sent_at), len(echo.replies)
    result.rtts = [rtt for rtt, _m in echo.replies.values()]
    result.icmp_errors = [m.describe for m in echo.errors]
    result.esp_sent, result.esp_received = echo.tunnel.sent, echo.esp_in
    result.esp_dropped = dict(echo.tunnel.drops)
    result.problem = result.problem or echo.problem
    if result.problem:
        narrator.step("ping", f"stopped: {result.problem}")
        narrator.failed = True
    for m in echo.errors[:3]:
        narrator.step("ping", f"ICMP error through the tunnel: {m.describe}")
    narrator.step("ping", f"{result.host}: {result.summary()}")
    spis = f"SPI 0x{child.spi_out:08x} out, 0x{child.spi_in:08x} in"
    if result.esp_sent and result.send_errors >= result.esp_sent:
        # nothing left this host: the CHILD SA never carried a packet (what analyze calls esp-missing)
        narrator.fail(
            finding(
                "esp-missing",
                evidence=[f"all {result.esp_sent} ESP-in-UDP packets to {echo.remote} ({spis}) were refused by the kernel: {result.send_error}"],
                data={"esp_sent": 0, "send_errors": result.send_errors},
            )
        )
        narrator.failed = True
    elif result.sent and not result.esp_received:
        # Silence cannot tell an absent host from a filtered path: say so, likeliest first.
        f = finding(
            "esp-one-way",
            evidence=[
                f"{result.esp_sent} ESP-in-UDP packets sent to {echo.remote} ({spis}), none came back",
                f"echo requests {result.source} -> {result.host}, {result.sent} sent, 0 answered",
                "the CHILD SA is up, so the gateway accepted our proposal and selectors",
            ],
            data={"esp_sent": result.esp_sent, "esp_received": 0, "spi_out": child.spi_out, "spi_in": child.spi_in},
            explanation=(
                f"No echo reply came back through the tunnel from {result.host}, and no ESP at all came back. "
                "From here silence cannot tell an absent host from a broken path."
            ),
            cause=(
                f"In order of likelihood: {result.host} does not exist, is down or drops ICMP echo; the inner "
                f"network has no route back to {result.source} through the gateway; the gateway drops our ESP "
                "or its replies are filtered (UDP 4500 / ESP filtered in one direction)."
            ),
            remediation=(
                f"Ping {result.host} from the gateway itself; check the route back to {result.source} behind "
                "the gateway; then check firewalls for UDP 4500 / IP protocol 50 and the gateway's ESP "
                "counters (`ip -s xfrm state`, `swanctl --list-sas`)."
            ),
        )
        narrator.fail(dataclasses.replace(f, title="No echo reply through the tunnel (ESP seen one way only)"))
    elif result.esp_received and not result.received and result.esp_dropped.get("integrity-failed"):
        narrator.fail(
            finding(
                "esp-integrity-failure",
                evidence=[f"{result.esp_dropped['integrity-failed']} of {result.esp_received} inbound ESP packets failed the ICV ({spis})"],
            )
        )
    elif result.sent and not result.received:
        narrator.failed = True  # ESP came back but no echo reply: the data plane does not work
        narrator.step("ping", f"no echo reply among {result.esp_received} inbound ESP packets")
    elif result.sent and result.received < result.sent:
        narrator.step("ping", f"warning: {result.sent - result.received} of {result.sent} echo requests unanswered")


__all__ = ["DEFAULT_SIZE", "EchoSession", "PingOptions", "PingResult", "attach", "detach", "inner_source", "run_ping"]
