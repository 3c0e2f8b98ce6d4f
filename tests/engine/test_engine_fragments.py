"""IKEv2 fragmentation (RFC 7383) on send and receive, with loss and reordering."""

from __future__ import annotations

from dataclasses import replace

from engine_certs import ca, end_entity
from engine_net import Wire, of, pair, psk_configs

from ipsecdiag.engine import CertAuth, Identity, State, events
from ipsecdiag.wire.ikev2 import parse_message
from ipsecdiag.wire.ikev2_payloads import SkfPayload


def _big_cert_configs(fragment_size: int = 576, *, fragmentation_r: bool = True):
    ci, cr = psk_configs(i_kw={"fragment_size": fragment_size}, r_kw={"fragment_size": fragment_size, "fragmentation": fragmentation_r})
    ki, di = end_entity("client@example.org", "rsa", "rsa", bits=4096)
    kr, dr = end_entity("gw.example.org", "rsa", "rsa", bits=4096)
    anchors = (ca("rsa")[1],)
    ci = replace(ci, auth=CertAuth(ki, (di, anchors[0])), ca_certs=anchors, local_id=Identity.parse("client@example.org"))
    cr = replace(cr, auth=CertAuth(kr, (dr, anchors[0])), ca_certs=anchors)
    return ci, cr


def _skf(w: Wire) -> SkfPayload | None:
    data = w.d.payload[4:] if w.d.payload[:4] == bytes(4) else w.d.payload
    enc = parse_message(data).encrypted
    return enc if isinstance(enc, SkfPayload) else None


def test_large_ike_auth_is_fragmented_and_reassembled() -> None:
    net = pair(*_big_cert_configs())
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    frags = [w for w in net.log[2:] if _skf(w) is not None]
    assert len(frags) >= 6
    assert all(len(w.d.payload) + 28 <= 576 for w in frags)  # IP + UDP headers included
    sent = [s for s in of(net.events_i, events.Sent) if s.exchange == "IKE_AUTH"]
    assert sent[0].fragments > 1


def test_lost_and_reordered_fragments() -> None:
    seen: set[bytes] = set()

    def lose_second_fragment_once(w: Wire, n: int) -> list[bytes]:
        f = _skf(w)
        if f is not None and f.fragment_number == 2 and w.to_responder and w.d.payload not in seen:
            seen.add(w.d.payload)
            return []
        return [w.d.payload]

    net = pair(*_big_cert_configs())
    net.mangle = lose_second_fragment_once
    net.reorder = True
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    assert [s.retransmission for s in of(net.events_i, events.Sent) if s.exchange == "IKE_AUTH"] == [0, 1]


def test_no_fragmentation_when_the_peer_does_not_support_it() -> None:
    net = pair(*_big_cert_configs(fragmentation_r=False))
    net.i.initiate(0.0)
    net.run()
    assert not any(_skf(w) for w in net.log[2:])
    assert net.i.state is State.ESTABLISHED  # the in-memory path has no MTU


def test_retransmitted_fragmented_request_is_answered_once() -> None:
    # The initiator's IKE_AUTH (fragmented) is resent after its answer was lost: the responder
    # answers on fragment 1 only (RFC 7383 §2.6.1), not once per fragment.
    lost = {"n": 0}

    def lose_first_answer(w: Wire, n: int) -> list[bytes]:
        if not w.to_responder and _skf(w) is not None and lost["n"] < 100 and w.d.payload[18] == 35:
            if lost.setdefault("mid", None) is None:
                lost["n"] += 1
                if _skf(w).fragment_number == _skf(w).total_fragments:
                    lost["mid"] = 1
                return []
        return [w.d.payload]

    net = pair(*_big_cert_configs())
    net.mangle = lose_first_answer
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    resent = [s for s in of(net.events_r, events.Sent) if s.exchange == "IKE_AUTH" and s.retransmission]
    assert len(resent) == 1
    assert net.r.drops["retransmitted fragment"] >= 1
