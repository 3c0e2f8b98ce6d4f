"""``ipsecdiag responder --answer-pings``: answer ICMP echo requests that arrive through CHILD SAs.

The responder has no network behind it; with this on it plays every host inside its own
traffic selectors: an echo request that comes through a CHILD SA, decrypts, passes the
anti-replay window and is addressed inside our side's selectors gets its echo reply back
through the same CHILD SA (userspace ESP-in-UDP, :class:`~ipsecdiag.esp.tunnel.EspTunnel`).
That lets ``probe connect --ping`` and ``probe mtu --ping`` (and any client's ping) be tested
against the project's own responder. :class:`TunnelEcho` is a driver session: it sees the
engines' events and queues the replies.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass

from ipsecdiag.crypto.rng import RandomSource
from ipsecdiag.engine import events as ev
from ipsecdiag.engine.config import Endpoint
from ipsecdiag.engine.window import Datagram
from ipsecdiag.esp.inner import echo_reply
from ipsecdiag.esp.tunnel import EspTunnel, SequenceExhausted
from ipsecdiag.probe.ping import in_selectors


@dataclass
class _Child:
    tunnel: EspTunnel
    up: ev.ChildSaUp
    sa: object


class TunnelEcho:
    """Echo replies for the CHILD SAs of every IKE SA it is told about (``on_event``)."""

    def __init__(self, rng: RandomSource, *, max_children: int = 256) -> None:
        self.rng = rng
        self.max_children = max_children
        self.children: dict[int, _Child] = {}  # by our inbound SPI
        self.answered = 0
        self.ignored: Counter[str] = Counter()
        self._out: list[Datagram] = []

    def on_event(self, sa: object, e: object) -> None:
        if isinstance(e, ev.ChildSaUp):
            if len(self.children) < self.max_children:
                t = EspTunnel(e.keys_out, e.keys_in, rng=self.rng, mode=e.mode, esn=e.esn)
                self.children[e.spi_in] = _Child(t, e, sa)
        elif isinstance(e, ev.ChildSaDeleted):
            self.children.pop(e.spi_in, None)
        elif isinstance(e, ev.EspReceived):
            self._answer(e.data, e.src, e.dst)

    def _answer(self, data: bytes, src: Endpoint, dst: Endpoint) -> None:
        child = self.children.get(int.from_bytes(data[:4], "big"))
        if child is None:
            self.ignored["unknown SPI"] += 1
            return
        got = child.tunnel.unprotect(data, src=src.host, dst=dst.host)
        if not got.ok or got.packet is None:
            self.ignored[got.status] += 1
            return
        reply = echo_reply(got.packet)
        if reply is None:
            self.ignored["not an echo request"] += 1
            return
        # the responder's side of the selectors: TSr (we are the responder of this CHILD SA)
        ours = child.up.ts_r if not getattr(child.sa, "is_initiator", False) else child.up.ts_i
        target = _dst(got.packet)
        if child.tunnel.mode == "tunnel" and (target is None or not in_selectors(target, ours)):
            self.ignored["outside our selectors"] += 1
            return
        try:
            esp = child.tunnel.protect_packet(reply)
        except SequenceExhausted:
            self.ignored["sequence numbers exhausted"] += 1
            return
        self.answered += 1
        self._out.append(Datagram(esp, dst, src))

    # -- the driver's Session protocol
    def receive_datagram(self, payload: bytes, src: Endpoint, dst: Endpoint, now: float) -> None:
        self._answer(payload, src, dst)

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None

    def next_event(self) -> object | None:
        return None


def _dst(packet: bytes) -> str | None:
    if packet[0] >> 4 == 4 and len(packet) >= 20:
        return str(ipaddress.IPv4Address(packet[16:20]))
    if packet[0] >> 4 == 6 and len(packet) >= 40:
        return str(ipaddress.IPv6Address(packet[24:40]))
    return None


__all__ = ["TunnelEcho"]
