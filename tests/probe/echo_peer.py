"""Test peers for the data-plane probes: engine configs, an echo responder behind a CHILD SA,
and a responder engine on loopback sockets in a thread (bounded) that answers pings through it.
The echo replies are built with scapy, an independent ICMP implementation."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from scapy.layers.inet import ICMP, IP

from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.engine import ChildConfig, Endpoint, Identity, IkeConfig, PskAuth, Role, events, selector_for
from ipsecdiag.engine.ike_sa import IkeSa
from ipsecdiag.esp.tunnel import EspTunnel
from ipsecdiag.keys.model import SecretBytes
from ipsecdiag.protocol.proposal_strings import parse_proposals


def configs(natt_port: int = 4500, esp: str = "aes256gcm16") -> tuple[IkeConfig, IkeConfig]:
    def cfg(me: str, peer: str | None, local: str, remote: str, **kw: object) -> IkeConfig:
        return IkeConfig(
            ike_proposals=parse_proposals("aes256gcm16-prfsha256-ecp256", protocol="ike"),
            child=ChildConfig(parse_proposals(esp, protocol="esp"), local_ts=(selector_for(local),), remote_ts=(selector_for(remote),)),
            local_id=Identity.parse(me),
            remote_id=Identity.parse(peer) if peer else None,
            auth=PskAuth(SecretBytes(b"ping-psk")),
            natt_port=natt_port,
            **kw,  # type: ignore[arg-type]
        )

    return (
        cfg("client@example.org", "gw.example.org", "10.1.0.0/24", "10.2.0.0/24", force_encap=True),
        cfg("gw.example.org", None, "10.2.0.0/24", "10.1.0.0/24"),
    )


class EchoResponder:
    """The host behind the gateway: answers echo requests that arrive through the CHILD SA."""

    def __init__(self, up: events.ChildSaUp, answer: bool = True, max_inner: int = 65535) -> None:
        self.tunnel = EspTunnel(up.keys_out, up.keys_in, rng=DeterministicRandom("echo"), mode=up.mode, esn=up.esn)
        self.answer = answer
        self.max_inner = max_inner  # larger inner packets are lost (a path MTU inside the tunnel)
        self.requests = 0

    def __call__(self, esp: bytes) -> bytes | None:
        got = self.tunnel.unprotect(esp)
        if not got.ok or got.packet is None:
            return None
        self.requests += 1
        req = IP(got.packet)
        if not self.answer or ICMP not in req or req[ICMP].type != 8 or len(got.packet) > self.max_inner:
            return None
        reply = IP(src=req.dst, dst=req.src, flags=req.flags) / ICMP(type=0, id=req[ICMP].id, seq=req[ICMP].seq) / bytes(req[ICMP].payload)
        return self.tunnel.protect_packet(bytes(reply))


# ---------------------------------------------------------------- over loopback sockets


@contextmanager
def responder_engine(answer: bool, max_inner: int = 65535) -> Iterator[tuple[int, int, IkeConfig]]:
    """A responder IkeSa on 127.0.0.1 in a thread, echoing pings that come through its CHILD SA."""
    s500, s4500 = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    for s in (s500, s4500):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    p500, p4500 = s500.getsockname()[1], s4500.getsockname()[1]
    ci, cr = configs(natt_port=p4500)
    stop = threading.Event()

    def serve() -> None:
        sel = selectors.DefaultSelector()
        for s in (s500, s4500):
            sel.register(s, selectors.EVENT_READ)
        sa: IkeSa | None = None
        echo: EchoResponder | None = None
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            for key, _ in sel.select(0.02):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                data, addr = sock.recvfrom(65535)
                now = time.monotonic()
                src, dst = Endpoint(addr[0], addr[1]), Endpoint("127.0.0.1", sock.getsockname()[1])
                if sa is None:
                    sa = IkeSa(cr, role=Role.RESPONDER, rng=DeterministicRandom("rr"), now=now, local=Endpoint("127.0.0.1", p500), remote=src, local_natt=Endpoint("127.0.0.1", p4500))
                sa.receive_datagram(data, src, dst, now)
            if sa is None:
                continue
            now = time.monotonic()
            t = sa.get_timer()
            if t is not None and t <= now:
                sa.handle_timer(now)
            while (e := sa.next_event()) is not None:
                if isinstance(e, events.ChildSaUp):
                    echo = EchoResponder(e, answer, max_inner)
                elif isinstance(e, events.EspReceived) and echo is not None:
                    out = echo(e.data)
                    if out is not None:
                        s4500.sendto(out, (e.src.host, e.src.port))
            for d in sa.datagrams_to_send(now):
                (s4500 if d.src.port == p4500 else s500).sendto(d.payload, (d.dst.host, d.dst.port))
        sel.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield p500, p4500, ci
    finally:
        stop.set()
        t.join(timeout=5)
        s500.close()
        s4500.close()
