"""The non-ESP marker follows the socket a datagram uses (RFC 3948 §2.2), also when one
socket serves both the IKE and the NAT-T role (an unprivileged probe on a single port)."""

from __future__ import annotations

from engine_net import I_ADDR, R_ADDR, Net, of, psk_configs

from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.engine import Endpoint, Role, State, events
from ipsecdiag.engine.ike_sa import IkeSa

MARKER = b"\0\0\0\0"


def _net(local_i: Endpoint, natt_i: Endpoint, remote: Endpoint = R_ADDR, **i_kw: object) -> Net:
    ci, cr = psk_configs(i_kw=dict(i_kw))
    i = IkeSa(ci, role=Role.INITIATOR, rng=DeterministicRandom("n-i"), now=0.0, local=local_i, remote=remote, local_natt=natt_i)
    r_local = remote if remote.port == 4500 else R_ADDR
    r = IkeSa(cr, role=Role.RESPONDER, rng=DeterministicRandom("n-r"), now=0.0, local=r_local, remote=local_i)
    return Net(i, r)


def test_one_socket_sends_ike_sa_init_unmarked_then_marks_after_the_move() -> None:
    single = Endpoint(I_ADDR.host, 40000)
    net = _net(single, single, force_encap=True)
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED and net.r.state is State.ESTABLISHED
    init = [w for w in net.log if w.d.dst.port == 500 or w.d.src.port == 500]
    assert init and all(w.d.payload[:4] != MARKER for w in init)  # to/from the peer's port 500
    later = [w for w in net.log if w not in init]
    assert later and all(w.d.payload[:4] == MARKER for w in later)  # NAT-T path, both ways
    assert of(net.events_i, events.ChildSaUp)[0].encap


def test_one_socket_without_move_never_marks() -> None:
    single = Endpoint(I_ADDR.host, 40000)
    net = _net(single, single)
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    assert all(w.d.payload[:4] != MARKER for w in net.log)


def test_explicit_natt_flag_wins_over_the_port() -> None:
    # Same port number, two sockets told apart by the flag (e.g. two addresses).
    plain, natt = Endpoint(I_ADDR.host, 40000, natt=False), Endpoint(I_ADDR.host, 40000, natt=True)
    net = _net(plain, natt, force_encap=True)
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    sent = [w for w in net.log if w.to_responder]
    assert sent[0].d.payload[:4] != MARKER and all(w.d.payload[:4] == MARKER for w in sent[1:])


def test_start_on_the_natt_port_marks_from_the_first_datagram() -> None:
    single = Endpoint(I_ADDR.host, 40000)
    net = _net(single, single, remote=Endpoint(R_ADDR.host, 4500))
    net.i.initiate(0.0)
    net.run()
    assert net.i.state is State.ESTABLISHED
    assert all(w.d.payload[:4] == MARKER for w in net.log)


def test_one_socket_after_the_move_takes_unmarked_datagrams_as_esp() -> None:
    single = Endpoint(I_ADDR.host, 40000)
    net = _net(single, single, force_encap=True)
    net.i.initiate(0.0)
    net.run()
    esp = b"\x01\x02\x03\x04" + bytes(40)
    net.i.receive_datagram(esp, Endpoint(R_ADDR.host, 4500), single, net.now)
    got = [e for e in iter(net.i.next_event, None) if isinstance(e, events.EspReceived)]
    assert got and got[0].data == esp
