"""IP reassembly in the decoder (RFC 791 §3.2, RFC 8200 §4.5, RFC 5722 overlaps) and the
RFC 8229 TCP stream."""

from __future__ import annotations

import struct

from capture_helpers import RecordingSink, assert_accounted, run
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsecdiag.capture.decode import Decoder

A = "192.0.2.1"
B = "198.51.100.7"
A6 = "2001:db8::1"
B6 = "2001:db8:1::2"


def eth(pkt: object) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt)  # type: ignore[operator]


def ike(n: int) -> bytes:
    body = bytes(i & 0xFF for i in range(n))
    return b"\x22" * 8 + b"\x00" * 8 + bytes([35, 0x20, 35, 0x08]) + struct.pack("!II", 1, 28 + n) + body


def ike_fragments(n: int = 2000, ident: int = 77, sport: int = 500) -> tuple[bytes, list[bytes]]:
    msg = ike(n)
    pkt = IP(src=A, dst=B, id=ident) / UDP(sport=sport, dport=500) / Raw(msg)
    return msg, [eth(f) for f in fragment(pkt, fragsize=600)]


def test_ipv4_ike_out_of_order_and_duplicated() -> None:
    msg, frags = ike_fragments()
    assert len(frags) == 4
    order = [frags[2], frags[0], frags[2], frags[3], frags[1]]  # frame 3 duplicates frame 1
    dec, sink = run(order)
    (m,) = sink.ike
    assert m.data == msg
    assert m.frames == (1, 2, 3, 4, 5) and m.frame == 5
    assert m.ip_fragments == 4 and m.ip_len == 20 + 8 + len(msg)
    (g,) = sink.groups
    assert g.complete and g.proto == 17 and (g.sport, g.dport) == (500, 500)
    assert g.total_len == 8 + len(msg) and g.ident == 77 and g.frames == (1, 2, 3, 4, 5)
    assert dec.ipsec_frames == 5 and dec.pending_frames == 0


def test_mirror_port_duplicates_after_completion_open_no_new_group() -> None:
    _, frags = ike_fragments()
    sink = RecordingSink()
    dec = Decoder(sink)
    for n, f in enumerate(frags + frags, 1):  # every fragment captured twice, copies after completion
        dec.feed(n, 100.0 + n * 0.001, 1, f, len(f))
    dec.finish()
    assert len(sink.ike) == 1 and len(sink.groups) == 1 and sink.groups[0].complete
    assert dec.ipsec_frames == 8


def test_identifier_reused_later_is_a_new_datagram() -> None:
    _, frags = ike_fragments()
    sink = RecordingSink()
    dec = Decoder(sink)
    for n, f in enumerate(frags + frags, 1):
        dec.feed(n, 100.0 + (0 if n <= 4 else 10.0), 1, f, len(f))  # same id 10 s later
    dec.finish()
    assert [m.frames for m in sink.ike] == [(1, 2, 3, 4), (5, 6, 7, 8)]


def test_missing_fragment_reported_at_end_of_capture() -> None:
    _, frags = ike_fragments()
    dec, sink = run(frags[:2], finish=False)
    assert dec.pending_frames == 2 and sink.groups == []
    dec.finish()
    (g,) = sink.groups
    assert not g.complete and g.reason == "end-of-capture" and g.total_len is None
    assert g.bytes_seen == 2 * 600 - 0 and sink.ike == []
    assert dec.ipsec_frames == 2 and dec.pending_frames == 0


def test_first_fragment_missing_proto_unknown() -> None:
    _, frags = ike_fragments()
    dec, sink = run(frags[1:])
    (g,) = sink.groups
    assert g.proto == -1 and g.sport is None and g.total_len is not None and not g.complete
    assert dec.skipped == {"incomplete-fragment": 3}


def test_timeout_by_capture_time() -> None:
    _, frags = ike_fragments()
    sink = RecordingSink()
    dec = Decoder(sink, reassembly_timeout=5.0)
    dec.feed(1, 100.0, 1, frags[0], len(frags[0]))
    dec.feed(2, 104.0, 1, frags[1], len(frags[1]))
    assert sink.groups == []
    other = eth(IP(src=A, dst=B) / UDP(sport=1, dport=2))
    dec.feed(3, 105.5, 1, other, len(other))
    (g,) = sink.groups
    assert g.reason == "timeout" and g.frames == (1, 2)
    assert_accounted(dec, 3)


def test_overlap_drops_the_group() -> None:
    msg, frags = ike_fragments()
    pkt = IP(src=A, dst=B, id=77) / UDP(sport=500, dport=500) / Raw(msg)
    shifted = [eth(f) for f in fragment(pkt, fragsize=400)]  # same datagram, other boundaries
    dec, sink = run([frags[0], shifted[1], frags[1], frags[2], frags[3]])
    (g,) = sink.groups
    assert g.reason == "overlap" and not g.complete and g.frames == (1, 2)
    assert sink.ike == []
    assert dec.ipsec_frames == 5  # later fragments of the dropped datagram are still IPsec


def test_conflicting_duplicate_is_an_overlap() -> None:
    _, frags = ike_fragments()
    evil = bytearray(frags[1])
    evil[-1] ^= 0xFF
    _, sink = run([frags[0], frags[1], bytes(evil)])
    assert [g.reason for g in sink.groups] == ["overlap"]


def test_eviction_caps() -> None:
    _, a = ike_fragments(ident=1)
    _, b = ike_fragments(ident=2)
    dec, sink = run([a[0], b[0], b[1]], max_fragment_buffers=1, finish=False)
    assert [(g.ident, g.reason) for g in sink.groups] == [(1, "evicted")]
    assert dec.fragments_evicted == 1
    dec, sink = run([a[0], a[1], b[0]], max_fragment_bytes=1000, finish=False)
    assert [(g.ident, g.reason) for g in sink.groups][:1] == [(1, "evicted")]


def test_ordinary_fragmented_traffic_is_not_buffered_or_reported() -> None:
    pkt = IP(src=A, dst=B, id=9) / UDP(sport=2049, dport=2049) / Raw(b"n" * 3000)
    frags = [eth(f) for f in fragment(pkt, fragsize=1000)]
    dec, sink = run([frags[1], frags[0], frags[2], frags[3]], finish=False)
    assert dec.skipped == {"not-ipsec": 4} and dec.pending_frames == 0
    dec.finish()
    assert sink.groups == []


def test_fragmented_esp_and_esp_in_udp() -> None:
    esp = struct.pack("!II", 0xABCD, 1) + bytes(range(256)) * 8
    frames = [eth(f) for f in fragment(IP(src=A, dst=B, id=5, proto=50) / Raw(esp), fragsize=800)]
    frames += [
        eth(f)
        for f in fragment(IP(src=A, dst=B, id=6) / UDP(sport=4500, dport=4500) / Raw(esp), fragsize=800)
    ]
    dec, sink = run(frames)
    assert [(e.esp, e.sport) for e in sink.esp] == [(esp, 0), (esp, 4500)]
    assert [g.proto for g in sink.groups] == [50, 17] and all(g.complete for g in sink.groups)
    assert dec.ipsec_frames == len(frames)


def test_ipv6_fragmented_ike_with_destination_options_after_the_fragment_header() -> None:
    msg = ike(2500)
    pkt = (
        IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=0x1234) / IPv6ExtHdrDestOpt() / UDP(sport=500, dport=500)
    )
    frags = [eth(f) for f in fragment6(pkt / Raw(msg), 1280)]
    assert len(frags) == 3
    dec, sink = run(list(reversed(frags)))
    (m,) = sink.ike
    assert m.data == msg and m.ip_version == 6 and m.ip_fragments == 3 and m.frames == (1, 2, 3)
    (g,) = sink.groups
    assert g.complete and g.ident == 0x1234 and g.proto == 17 and g.src == A6
    assert dec.ipsec_frames == 3


def test_truncated_fragment_is_counted_truncated() -> None:
    _, frags = ike_fragments()
    dec, sink = run([(frags[0][:100], len(frags[0]))])
    assert dec.skipped == {"truncated": 1} and sink.groups == []


def tcp(seq: int, payload: bytes, sport: int = 40000, dport: int = 4500, flags: str = "PA") -> bytes:
    return eth(IP(src=A, dst=B) / TCP(sport=sport, dport=dport, seq=seq, flags=flags) / Raw(payload))


def test_rfc8229_stream() -> None:
    msg = ike(100)
    esp = struct.pack("!II", 0x5555, 3) + b"e" * 30
    stream = b"IKETCP" + struct.pack("!H", 2 + 4 + len(msg)) + b"\x00" * 4 + msg
    stream += struct.pack("!H", 2 + len(esp)) + esp
    syn = eth(IP(src=A, dst=B) / TCP(sport=40000, dport=4500, seq=999, flags="S"))
    frames = [
        syn,
        tcp(1000, stream[:50]),
        tcp(1000, stream[:50]),  # retransmission
        tcp(1050, stream[50:]),
        eth(IP(src=A, dst=B) / TCP(sport=40000, dport=4500, flags="A")),
    ]
    # The responder's direction has no prefix.
    back = struct.pack("!H", 2 + 4 + len(msg)) + b"\x00" * 4 + msg
    frames.append(eth(IP(src=B, dst=A) / TCP(sport=4500, dport=40000, seq=5, flags="PA") / Raw(back)))
    dec, sink = run(frames)
    assert [(m.transport, m.non_esp_marker, m.data, m.frames) for m in sink.ike] == [
        ("tcp", True, msg, (2, 4)),
        ("tcp", True, msg, (6,)),
    ]
    assert [(e.esp, e.sport, e.dport) for e in sink.esp] == [(esp, 40000, 4500)]
    assert dec.ipsec_frames == 4 and dec.skipped == {"not-ipsec": 2}


def test_tcp_4500_that_is_not_rfc8229() -> None:
    dec, sink = run([tcp(1, b"\x00\x03abc" * 10), tcp(51, b"more")])
    assert dec.skipped == {"not-ipsec": 2} and not sink.ike and not sink.esp
