"""In-memory transport for engine tests (after aioquic's client_and_server/roundtrip helpers).

Two (or more) :class:`IkeSa` objects exchange datagrams through a :class:`Net` that can drop,
duplicate and reorder what passes, and a virtual clock that jumps to the next timer. Nothing
here touches a socket. A NAT can be simulated by rewriting one side's source endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.engine import ChildConfig, Endpoint, Identity, IkeConfig, PskAuth, Role, events, selector_for
from ipsecdiag.engine.ike_sa import Datagram, IkeSa
from ipsecdiag.keys.model import SecretBytes
from ipsecdiag.protocol.proposal_strings import parse_proposals

I_ADDR = Endpoint("192.0.2.2", 500)
R_ADDR = Endpoint("198.51.100.2", 500)


@dataclass
class Wire:
    """One datagram in flight (after the sender, before any NAT rewrite)."""

    d: Datagram
    to_responder: bool


@dataclass
class Net:
    i: IkeSa
    r: IkeSa
    now: float = 0.0
    # filter(wire, index) -> list of datagrams to deliver (0: drop, 2: duplicate)
    mangle: Callable[[Wire, int], list[bytes]] | None = None
    reorder: bool = False
    nat: Endpoint | None = None  # the initiator's public address as the responder sees it
    log: list[Wire] = field(default_factory=list)
    events_i: list[events.Event] = field(default_factory=list)
    events_r: list[events.Event] = field(default_factory=list)

    def _collect(self) -> list[Wire]:
        out = [Wire(d, True) for d in self.i.datagrams_to_send(self.now)]
        out += [Wire(d, False) for d in self.r.datagrams_to_send(self.now)]
        return out

    def _drain_events(self) -> None:
        for sa, sink in ((self.i, self.events_i), (self.r, self.events_r)):
            while (e := sa.next_event()) is not None:
                sink.append(e)

    def _deliver(self, w: Wire, payload: bytes) -> None:
        d = w.d
        if w.to_responder:
            src = d.src
            if self.nat is not None:
                src = Endpoint(self.nat.host, self.nat.port + (1 if d.src.port == self.i.local_natt.port else 0))
            self.r.receive_datagram(payload, src, d.dst, self.now)
        else:
            dst = d.dst
            if self.nat is not None:
                port = self.i.local_natt.port if dst.port == self.nat.port + 1 else self.i.local.port
                dst = Endpoint(self.i.local.host, port)
            self.i.receive_datagram(payload, d.src, dst, self.now)

    def run(self, *, max_steps: int = 200, until: Callable[[], bool] | None = None, max_time: float = 600.0) -> None:
        """Move datagrams and fire timers until nothing is left, ``until()`` holds, or a bound."""
        counter = 0
        for _ in range(max_steps):
            batch = self._collect()
            if self.reorder:
                batch.reverse()
            if batch:
                for w in batch:
                    self.log.append(w)
                    payloads = [w.d.payload] if self.mangle is None else self.mangle(w, counter)
                    counter += 1
                    for p in payloads:
                        self._deliver(w, p)
                self._drain_events()
                if until is not None and until():
                    return
                continue
            timers = [t for t in (self.i.get_timer(), self.r.get_timer()) if t is not None]
            if not timers or min(timers) > max_time:
                break
            self.now = max(self.now, min(timers))
            self.i.handle_timer(self.now)
            self.r.handle_timer(self.now)
            self._drain_events()
            if until is not None and until():
                return
        self._drain_events()


def psk_configs(
    ike: str = "aes256gcm16-prfsha256-ecp256",
    esp: str = "aes256gcm16",
    *,
    r_ike: str | None = None,
    r_esp: str | None = None,
    psk_i: bytes = b"s3cret-psk",
    psk_r: bytes = b"s3cret-psk",
    i_kw: dict | None = None,
    r_kw: dict | None = None,
    i_child: dict | None = None,
    r_child: dict | None = None,
) -> tuple[IkeConfig, IkeConfig]:
    ci = IkeConfig(
        ike_proposals=parse_proposals(ike, protocol="ike"),
        child=ChildConfig(
            parse_proposals(esp, protocol="esp"),
            **({"local_ts": (selector_for("10.1.0.0/16"),), "remote_ts": (selector_for("10.2.0.0/16"),)} | (i_child or {})),
        ),
        local_id=Identity.parse("client@example.org"),
        remote_id=Identity.parse("gw.example.org"),
        auth=PskAuth(SecretBytes(psk_i)),
        **(i_kw or {}),
    )
    cr = IkeConfig(
        ike_proposals=parse_proposals(r_ike or ike, protocol="ike"),
        child=ChildConfig(
            parse_proposals(r_esp or esp, protocol="esp"),
            **({"local_ts": (selector_for("10.2.0.0/16"),), "remote_ts": (selector_for("10.1.0.0/16"),)} | (r_child or {})),
        ),
        local_id=Identity.parse("gw.example.org"),
        auth=PskAuth(SecretBytes(psk_r)),
        **(r_kw or {}),
    )
    return ci, cr


def pair(ci: IkeConfig, cr: IkeConfig, *, seed: str = "t", **net_kw) -> Net:
    i = IkeSa(ci, role=Role.INITIATOR, rng=DeterministicRandom(seed + "-i"), now=0.0, local=I_ADDR, remote=R_ADDR)
    r = IkeSa(cr, role=Role.RESPONDER, rng=DeterministicRandom(seed + "-r"), now=0.0, local=R_ADDR, remote=I_ADDR)
    return Net(i, r, **net_kw)


def of(evs: list[events.Event], cls: type) -> list:
    return [e for e in evs if isinstance(e, cls)]
