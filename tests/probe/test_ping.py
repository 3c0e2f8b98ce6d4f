"""``probe connect --ping``: engine to engine, the ping answered by an echo responder in the test.

In memory: two real IkeSa engines, the initiator's echo requests go through
:class:`~ipsecdiag.probe.ping.EchoSession`; over loopback sockets: :func:`probe.connect.connect`
with ``run_ping`` as its data plane against a responder engine in a thread. The echo replies
are built with scapy (an independent ICMP implementation), protected with the responder's keys.
"""

from __future__ import annotations

import time

import pytest
from echo_peer import EchoResponder, configs, responder_engine

from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.engine import Endpoint, Role, events
from ipsecdiag.engine.ike_sa import IkeSa
from ipsecdiag.esp.tunnel import EspTunnel
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.probe.connect import ConnectOptions, connect
from ipsecdiag.probe.ping import EchoSession, PingOptions, inner_source, run_ping


@pytest.mark.parametrize("esp", ["aes256gcm16", "aes128-sha256-esn"])
def test_echo_through_the_tunnel_in_memory(esp: str) -> None:
    ci, cr = configs(esp=esp)
    i_ep, r_ep = Endpoint("192.0.2.2", 500), Endpoint("198.51.100.2", 500)
    i = IkeSa(ci, role=Role.INITIATOR, rng=DeterministicRandom("i"), now=0.0, local=i_ep, remote=r_ep)
    r = IkeSa(cr, role=Role.RESPONDER, rng=DeterministicRandom("r"), now=0.0, local=r_ep, remote=i_ep)
    now = 0.0
    i.initiate(now)
    up_i: list[events.ChildSaUp] = []
    echo_holder: list[EchoResponder] = []
    session: list[EchoSession] = []
    r_ports = (r.local.port, r.local_natt.port)

    def pump() -> None:
        for _ in range(50):
            moved = False
            for sender in (i, r, *session):
                for d in sender.datagrams_to_send(now):
                    moved = True
                    (r if d.dst.port in r_ports and d.dst.host == r_ep.host else i).receive_datagram(d.payload, d.src, d.dst, now)
            for sa, is_r in ((i, False), (r, True)):
                while (e := sa.next_event()) is not None:
                    if isinstance(e, events.ChildSaUp):
                        (echo_holder.append(EchoResponder(e)) if is_r else up_i.append(e))
                    elif isinstance(e, events.EspReceived) and is_r:
                        out = echo_holder[0](e.data)
                        if out is not None:  # the gateway sends back from the port it got ESP on
                            i.receive_datagram(out, e.dst, e.src, now)
                    elif isinstance(e, events.EspReceived):
                        session[0].on_esp(e.data, e.src, now)
            if not moved:
                return

    pump()
    assert up_i and up_i[0].encap and echo_holder
    child = up_i[0]
    assert child.esn is esp.endswith("-esn")
    src = inner_source(child, "192.0.2.2")
    assert src == "10.1.0.1"  # the narrowed TSi's first host: the gateway routes it to us
    tun = EspTunnel(child.keys_out, child.keys_in, rng=DeterministicRandom("t"), mode=child.mode, esn=child.esn)
    echo = EchoSession(tun, src=src, dst="10.2.0.10", local=i.local_natt, remote=i.remote, ident=0x77)
    session.append(echo)
    for seq in (1, 2, 3):
        now += 0.25
        echo.send(seq, 84 + seq * 100, now)
        pump()
    assert sorted(echo.replies) == [1, 2, 3]
    assert all(rtt == 0.0 and m.is_reply and m.src == "10.2.0.10" for rtt, m in echo.replies.values())
    assert [m.size for _r, m in echo.replies.values()] == [184, 284, 384]
    assert echo_holder[0].requests == 3 and tun.sent == 3 and tun.received == 3
    assert echo_holder[0].tunnel.window.top == 3  # sequence numbers 1..3 arrived in order


@pytest.mark.parametrize("answer", [True, False])
def test_connect_with_ping_over_loopback(answer: bool) -> None:
    with responder_engine(answer) as (p500, _p4500, ci):
        opts = ConnectOptions(
            gateway="127.0.0.1", config=ci, offered_ike="aes256gcm16-prfsha256-ecp256", offered_esp="aes256gcm16",
            remote_port=p500, local_addr="127.0.0.1", local_port=0, timeout=8.0, rate=50.0,
        )  # fmt: skip
        ping = PingOptions("10.2.0.10", count=3, interval=0.2, wait=0.6)
        got = []
        t0 = time.monotonic()
        result = connect(
            opts,
            rng=DeterministicRandom("c"),
            data_plane=lambda sa, drv, nar: got.append(run_ping(sa, drv, nar, ping, DeterministicRandom("p"))),
        )
        elapsed = time.monotonic() - t0
    assert got, [s.text for s in result.steps]
    pr = got[0]
    assert pr.sent == 3 and pr.esp_sent == 3 and pr.source == "10.1.0.1"
    assert elapsed < 8
    if answer:
        assert pr.received == 3 and len(pr.rtts) == 3 and all(0 <= r < 1 for r in pr.rtts)
        assert result.ok and not result.findings
        assert sum(1 for s in result.steps if "icmp_seq=" in s.text) == 3
    else:
        assert pr.received == 0 and pr.esp_received == 0
        assert [f.id for f in result.findings] == ["esp-one-way"] and not result.ok
        assert "3 ESP-in-UDP packets sent" in result.findings[0].evidence[0]
    assert result.deleted  # the IKE SA is deleted after the ping
    # the recording holds the ESP both ways, and the CHILD SA keys to open it
    esp_out = [d for d in result.record.datagrams if d.outgoing and d.payload[:4] not in (b"\0\0\0\0",) and len(d.payload) > 8 and d.dst[1] == _p4500]
    assert len(esp_out) == 3


def test_inner_source_prefers_the_virtual_ip_then_our_address_then_tsi() -> None:
    from ipsecdiag.engine import selector_for
    from ipsecdiag.wire.ikev2_sa import Proposal

    def up(ts_i: str, vips: tuple[str, ...] = ()) -> events.ChildSaUp:
        k = ChildSaKeys(1, 20, SecretBytes(bytes(36)))
        return events.ChildSaUp(1, 2, k, k, (selector_for(ts_i),), (selector_for("10.2.0.0/24"),), "tunnel", True, False, Proposal(1, 3, b"", ()), vips)

    assert inner_source(up("10.3.0.7/32", ("10.3.0.7",)), "192.0.2.2") == "10.3.0.7"
    assert inner_source(up("0.0.0.0/0"), "192.0.2.2") == "192.0.2.2"  # host-to-host: our own address
    assert inner_source(up("10.1.0.0/24"), "192.0.2.2") == "10.1.0.1"  # not the network address
    assert inner_source(up("10.1.0.5/32"), "192.0.2.2") == "10.1.0.5"


def test_a_packet_that_cannot_be_built_stops_the_ping_with_a_reason() -> None:
    with responder_engine(True) as (p500, _p4500, ci):
        opts = ConnectOptions(
            gateway="127.0.0.1", config=ci, offered_ike="aes256gcm16-prfsha256-ecp256", offered_esp="aes256gcm16",
            remote_port=p500, local_addr="127.0.0.1", local_port=0, timeout=8.0, rate=50.0,
        )  # fmt: skip
        ping = PingOptions("10.2.0.10", count=3, interval=0.2, size=20)  # smaller than IPv4 + ICMP headers
        got = []
        result = connect(opts, rng=DeterministicRandom("c"), data_plane=lambda sa, d, n: got.append(run_ping(sa, d, n, ping, DeterministicRandom("p"))))
    assert got and got[0].sent == 0 and "at least 28 bytes" in got[0].problem
    assert not result.ok and not result.internal_error and result.deleted
    assert any(s.text.startswith("stopped: an echo request needs at least 28 bytes") for s in result.steps)


def test_icmp_error_from_inside_the_tunnel_is_matched_to_its_request() -> None:
    """A router behind the gateway answers "fragmentation needed" quoting our request."""
    from scapy.layers.inet import ICMP, IP

    from ipsecdiag.keys.model import ChildSaKeys, SecretBytes

    k_out = ChildSaKeys(0x1001, 20, SecretBytes(bytes(range(36))))
    k_in = ChildSaKeys(0x2002, 20, SecretBytes(bytes(range(1, 37))))
    ours = EspTunnel(k_out, k_in, rng=DeterministicRandom("o"))
    theirs = EspTunnel(k_in, k_out, rng=DeterministicRandom("t"))
    echo = EchoSession(ours, src="10.1.0.1", dst="10.2.0.10", local=Endpoint("192.0.2.2", 4500), remote=Endpoint("198.51.100.2", 4500), ident=0x4242)
    echo.send(7, 1400, 1.0)
    (d,) = echo.datagrams_to_send(1.0)
    req = theirs.unprotect(d.payload).packet
    assert req is not None and len(req) == 1400 and IP(req).flags.DF
    err = IP(src="10.2.0.1", dst="10.1.0.1") / ICMP(type=3, code=4, nexthopmtu=1300) / req[:28]
    echo.on_esp(theirs.protect_packet(bytes(err)), Endpoint("198.51.100.2", 4500), 1.01)
    assert not echo.replies and len(echo.errors) == 1
    e = echo.errors[0]
    assert (e.seq, e.mtu, e.src) == (7, 1300, "10.2.0.1") and "next-hop MTU 1300" in e.describe
    # a reply for an id that is not ours, or a replayed copy, changes nothing
    stray = IP(src="10.2.0.10", dst="10.1.0.1") / ICMP(type=0, id=1, seq=7) / req[28:]
    esp = theirs.protect_packet(bytes(stray))
    echo.on_esp(esp, Endpoint("198.51.100.2", 4500), 1.02)
    echo.on_esp(esp, Endpoint("198.51.100.2", 4500), 1.03)
    assert not echo.replies and ours.drops["replay"] == 1


def test_esp_the_kernel_refuses_to_send_is_esp_missing() -> None:
    """A 65000-byte inner packet makes an ESP-in-UDP datagram larger than UDP allows: EMSGSIZE."""
    with responder_engine(True) as (p500, _p4500, ci):
        opts = ConnectOptions(
            gateway="127.0.0.1", config=ci, offered_ike="aes256gcm16-prfsha256-ecp256", offered_esp="aes256gcm16",
            remote_port=p500, local_addr="127.0.0.1", local_port=0, timeout=8.0, rate=50.0,
        )  # fmt: skip
        ping = PingOptions("10.2.0.10", count=2, interval=0.1, size=65500, wait=0.3)
        got = []
        result = connect(opts, rng=DeterministicRandom("c"), data_plane=lambda sa, d, n: got.append(run_ping(sa, d, n, ping, DeterministicRandom("p"))))
    assert got and got[0].send_errors == 2 and got[0].received == 0
    assert [f.id for f in result.findings] == ["esp-missing"] and not result.ok
    assert "refused by the kernel" in result.findings[0].evidence[0]


def test_a_ping_source_outside_the_negotiated_tsi_is_refused_not_blamed_on_the_path() -> None:
    """RFC 4301 §5.2: the gateway discards inner packets outside the SA's selectors; the probe
    says so before sending instead of reporting esp-one-way."""
    with responder_engine(True) as (p500, _p4500, ci):
        opts = ConnectOptions(
            gateway="127.0.0.1", config=ci, offered_ike="", offered_esp="", remote_port=p500,
            local_addr="127.0.0.1", local_port=0, timeout=8.0, rate=50.0,
        )  # fmt: skip
        ping = PingOptions("10.2.0.10", count=1, interval=0.2, wait=0.5, source="10.9.9.9")
        got = []
        result = connect(
            opts,
            rng=DeterministicRandom("c"),
            data_plane=lambda sa, drv, nar: got.append(run_ping(sa, drv, nar, ping, DeterministicRandom("p"))),
        )
    (pr,) = got
    assert pr.sent == 0 and "outside the negotiated TSi" in pr.problem and "RFC 4301" in pr.problem
    assert not result.ok and not any(f.id == "esp-one-way" for f in result.findings)


def test_no_reply_is_worded_as_silence_host_first() -> None:
    with responder_engine(False) as (p500, _p4500, ci):
        opts = ConnectOptions(
            gateway="127.0.0.1", config=ci, offered_ike="", offered_esp="", remote_port=p500,
            local_addr="127.0.0.1", local_port=0, timeout=8.0, rate=50.0,
        )  # fmt: skip
        ping = PingOptions("10.2.0.10", count=1, interval=0.2, wait=0.5)
        result = connect(opts, rng=DeterministicRandom("c"), data_plane=lambda sa, drv, nar: run_ping(sa, drv, nar, ping, DeterministicRandom("p")))
    (f,) = result.findings
    assert f.id == "esp-one-way" and f.title.startswith("No echo reply through the tunnel")
    assert f.cause.startswith("In order of likelihood: 10.2.0.10 does not exist")
