"""Drive one engine initiator over real UDP sockets (run inside the lab's initiator namespace).

Usage: python engine_live_initiator.py GATEWAY PSK LOCAL_ID REMOTE_ID LOCAL_TS REMOTE_TS IKE ESP
It brings the IKE SA and a CHILD SA up, then runs CREATE_CHILD_SA (a second CHILD SA with PFS, a
CHILD rekey, an IKE rekey), a liveness check and the Delete, and prints one JSON line with what
happened. Exit status 0 when every step completed. Every wait is bounded (60 s overall).
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time

from ipsecdiag.engine import (
    ChildConfig,
    Endpoint,
    Identity,
    IkeConfig,
    IkeSa,
    PskAuth,
    Role,
    State,
    events,
    selector_for,
)
from ipsecdiag.keys.model import SecretBytes
from ipsecdiag.probe.rng import SystemRandom
from ipsecdiag.protocol.proposal_strings import parse_proposals


def main(argv: list[str]) -> int:
    gw, psk, lid, rid, lts, rts, ike, esp = argv
    local_host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    local_host.connect((gw, 500))
    me = local_host.getsockname()[0]
    local_host.close()
    socks = {}
    sel = selectors.DefaultSelector()
    for port in (500, 4500):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((me, port))
        s.setblocking(False)
        socks[port] = s
        sel.register(s, selectors.EVENT_READ, port)
    cfg = IkeConfig(
        ike_proposals=parse_proposals(ike, protocol="ike"),
        child=ChildConfig(parse_proposals(esp, protocol="esp"), (selector_for(lts),), (selector_for(rts),)),
        local_id=Identity.parse(lid),
        remote_id=Identity.parse(rid),
        auth=PskAuth(SecretBytes(psk.encode())),
    )
    t0 = time.monotonic()
    sa = IkeSa(cfg, role=Role.INITIATOR, rng=SystemRandom(), now=t0, local=Endpoint(me, 500), remote=Endpoint(gw, 500))
    seen: list[str] = []
    steps = iter(
        [
            lambda now: sa.create_child(now),
            lambda now: sa.rekey_child(next(iter(sa.child_sas)), now),
            lambda now: sa.rekey_ike(now),
            lambda now: sa.send_liveness(now),
            lambda now: sa.delete(now),
        ]
    )
    sa.initiate(t0)
    idle_since = None
    while time.monotonic() - t0 < 60 and sa.state is not State.CLOSED:
        now = time.monotonic()
        for d in sa.datagrams_to_send(now):
            socks[d.src.port].sendto(d.payload, (d.dst.host, d.dst.port))
        while (e := sa.next_event()) is not None:
            if not isinstance(e, events.Sent | events.Received):
                seen.append(type(e).__name__ + (f":{e.notify_name}" if isinstance(e, events.ProtocolError) else ""))
        if sa.state is State.ESTABLISHED and not sa.busy:
            idle_since = idle_since or now
            if now - idle_since > 0.3:  # the last exchange is done: next step
                idle_since = None
                step = next(steps, None)
                if step is None:
                    break
                step(now)
                continue
        timer = sa.get_timer()
        wait = 0.05 if timer is None else max(0.0, min(0.05, timer - now))
        for key, _ in sel.select(wait):
            data, addr = key.fileobj.recvfrom(65535)
            sa.receive_datagram(data, Endpoint(addr[0], addr[1]), Endpoint(me, key.data), time.monotonic())
        if timer is not None and time.monotonic() >= timer:
            sa.handle_timer(time.monotonic())
    while (e := sa.next_event()) is not None:
        if not isinstance(e, events.Sent | events.Received):
            seen.append(type(e).__name__ + (f":{e.notify_name}" if isinstance(e, events.ProtocolError) else ""))
    print(json.dumps({"state": sa.state.value, "events": seen, "encap": sa.encap}))
    return 0 if sa.state is State.CLOSED and "IkeSaDeleted" in seen and not any(s.startswith(("ProtocolError", "Timeout")) for s in seen) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
