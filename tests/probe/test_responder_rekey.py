"""``ipsecdiag responder`` after an IKE SA rekey by the client (RFC 7296 §2.18): the new SPIs
must still reach the client's engine, so the client's later Delete is answered."""

from __future__ import annotations

import socket
import time

from test_responder import _psk, _serve, needs_engine

from ipsecdiag.probe.options import build_config
from ipsecdiag.probe.rng import SystemRandom

IKE = "aes256gcm16-prfsha256-ecp256"


def _pump(sa: object, s: socket.socket, gw: tuple[str, int], events: list[object], until: type, limit: float) -> bool:
    """Drive the engine initiator ``sa`` over ``s`` until an event of type ``until`` (bounded)."""
    from ipsecdiag.engine.config import Endpoint

    deadline = time.monotonic() + limit
    local = Endpoint(*s.getsockname()[:2])
    while time.monotonic() < deadline:
        now = time.monotonic()
        for d in sa.datagrams_to_send(now):  # type: ignore[attr-defined]
            s.sendto(d.payload, gw)
        while (e := sa.next_event()) is not None:  # type: ignore[attr-defined]
            events.append(e)
            if isinstance(e, until):
                return True
        timer = sa.get_timer()  # type: ignore[attr-defined]
        s.settimeout(max(0.01, min(0.2, (timer - now) if timer is not None else 0.2)))
        try:
            data, src = s.recvfrom(65535)
        except TimeoutError:
            if timer is not None and time.monotonic() >= timer:
                sa.handle_timer(time.monotonic())  # type: ignore[attr-defined]
            continue
        sa.receive_datagram(data, Endpoint(*src[:2]), local, time.monotonic())  # type: ignore[attr-defined]
    return False


@needs_engine
def test_the_client_deletes_its_rekeyed_ike_sa_and_is_answered() -> None:
    from ipsecdiag.engine import IkeSa
    from ipsecdiag.engine import events as ev
    from ipsecdiag.engine.config import Endpoint, Role

    r, t, out = _serve(IKE, once=True, linger=0.5, timeout=20.0)
    gw = ("127.0.0.1", r.local.port)  # type: ignore[union-attr]
    cfg = build_config(
        ike=IKE, esp="aes256gcm16", creds=_psk(), local_id="client.test", remote_id="gw.test",
        ts="10.2.0.0/24", local_ts="10.1.0.0/24", local_addr="127.0.0.1", encap=False, timeout=5,
    )  # fmt: skip
    events: list[object] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        sa = IkeSa(cfg, role=Role.INITIATOR, rng=SystemRandom(), now=time.monotonic(),
                   local=Endpoint("127.0.0.1", s.getsockname()[1]), remote=Endpoint(*gw))  # fmt: skip
        sa.initiate(time.monotonic())
        assert _pump(sa, s, gw, events, ev.ChildSaUp, 5), events
        old = (sa.spi_i, sa.spi_r)
        sa.rekey_ike(time.monotonic())
        assert _pump(sa, s, gw, events, ev.IkeSaRekeyed, 5), events
        assert (sa.spi_i, sa.spi_r) != old  # the client's new SPIi: not what the responder first saw
        sa.delete(time.monotonic())
        assert _pump(sa, s, gw, events, ev.IkeSaDeleted, 5), events
    deleted = [e for e in events if isinstance(e, ev.IkeSaDeleted)]
    assert not [e for e in events if isinstance(e, ev.Timeout)], events
    assert deleted and not deleted[0].by_peer
    t.join(timeout=10)
    assert not t.is_alive() and out
    (client,) = out[0].clients
    # the responder's engine got the Delete on the new SPIs and closed the SA
    assert client.narrator.deleted is not None and client.narrator.deleted.by_peer, [s.text for s in client.narrator.steps]
