"""Decoder demux on frames built with scapy: link types, IPv4/IPv6, UDP 500/4500 (RFC 3948),
ESP (RFC 4303), AH (RFC 4302), ICMP errors, snaplen truncation, malformed headers."""

from __future__ import annotations

import struct

import pytest
from capture_helpers import RecordingSink, run
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

from ipsecdiag.capture.decode import Decoder

A = "192.0.2.1"
B = "198.51.100.7"
A6 = "2001:db8::1"
B6 = "2001:db8:1::2"
SPI = 0x01020304
ESP_BODY = struct.pack("!II", SPI, 7) + b"\x5a" * 40


def eth() -> Ether:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def ike(n: int = 40, spi: bytes = b"\x11" * 8) -> bytes:
    """An IKEv2 header (RFC 7296 §3.1) with ``n`` bytes of payload after it."""
    return spi + b"\x00" * 8 + bytes([33, 0x20, 34, 0x08]) + struct.pack("!II", 0, 28 + n) + b"\x00" * n


def v4(payload: object, **kw: object) -> bytes:
    return bytes(eth() / IP(src=A, dst=B, **kw) / payload)  # type: ignore[operator]


def test_plain_esp_ignores_ethernet_padding() -> None:
    # 14 + 20 + 12 = 46 bytes, padded to the 60-byte Ethernet minimum.
    frame = v4(Raw(ESP_BODY[:12]), proto=50) + b"\x00" * 14
    dec, sink = run([frame])
    (e,) = sink.esp
    assert (e.src, e.dst, e.sport, e.dport) == (bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7]), 0, 0)
    assert e.esp == ESP_BODY[:12]  # the IP total length, not the padded frame, bounds ESP
    assert dec.ipsec_frames == 1


@pytest.mark.parametrize("sport", [4500, 61234])
def test_esp_in_udp(sport: int) -> None:
    dec, sink = run([v4(UDP(sport=sport, dport=4500) / Raw(ESP_BODY))])
    (e,) = sink.esp
    assert (e.sport, e.dport, e.esp) == (sport, 4500, ESP_BODY)


def test_keepalive_and_nonesp_marker_ike() -> None:
    msg = ike()
    frames = [
        v4(UDP(sport=4500, dport=4500) / Raw(b"\xff")),
        v4(UDP(sport=4500, dport=4500) / Raw(b"\x00\x00\x00\x00" + msg)),
    ]
    dec, sink = run(frames)
    assert sink.keepalives == [(1, A, B, 4500, 4500)]
    (m,) = sink.ike
    assert m.non_esp_marker and m.data == msg and m.frames == (2,) and m.frame == 2
    assert m.ip_len == 20 + 8 + 4 + len(msg) and m.ip_fragments == 1 and m.ip_version == 4
    assert dec.ipsec_frames == 2


@pytest.mark.parametrize(("sport", "dport"), [(500, 500), (500, 40000), (40000, 500), (500, 4500)])
def test_ike_on_port_500_either_direction(sport: int, dport: int) -> None:
    msg = ike()
    _, sink = run([v4(UDP(sport=sport, dport=dport) / Raw(msg))])
    (m,) = sink.ike
    assert (m.src, m.dst, m.sport, m.dport, m.data, m.non_esp_marker) == (A, B, sport, dport, msg, False)


def test_marker_between_port_500_and_4500() -> None:
    msg = ike()
    _, sink = run([v4(UDP(sport=4500, dport=500) / Raw(b"\x00" * 4 + msg))])
    (m,) = sink.ike
    assert m.non_esp_marker and m.data == msg


def test_custom_ports() -> None:
    msg = ike()
    _, sink = run(
        [v4(UDP(sport=7000, dport=7000) / Raw(msg)), v4(UDP(sport=7001, dport=7001) / Raw(ESP_BODY))],
        ike_ports=frozenset({7000}),
        natt_ports=frozenset({7001}),
    )
    assert len(sink.ike) == 1 and len(sink.esp) == 1


@pytest.mark.parametrize(
    ("payload", "layer"),
    [
        (UDP(sport=500, dport=500) / Raw(ike()[:27]), "ike"),
        (UDP(sport=4500, dport=4500) / Raw(b"\x00\x00\x00\x00" + ike()[:20]), "ike"),
        (UDP(sport=4500, dport=4500) / Raw(b"\x01\x02\x03\x04\x05"), "udp-encap"),
        (UDP(sport=4500, dport=4500) / Raw(b"\x00"), "udp-encap"),
        (UDP(sport=4500, dport=4500, len=4) / Raw(ESP_BODY), "udp"),
        (UDP(sport=4500, dport=4500, len=200) / Raw(ESP_BODY), "udp"),
    ],
)
def test_malformed_udp_payloads(payload: object, layer: str) -> None:
    dec, sink = run([v4(payload)])
    assert [m[1] for m in sink.malformed] == [layer]
    assert dec.skipped == {"malformed": 1}


def test_ah_and_ah_then_esp_go_to_on_ah_only() -> None:
    ah = struct.pack("!BBHII", 4, 4, 0, 0x99, 1) + b"\x00" * 12
    ah_esp = struct.pack("!BBHII", 50, 4, 0, 0x98, 1) + b"\x00" * 12 + ESP_BODY
    dec, sink = run([v4(Raw(ah), proto=51), v4(Raw(ah_esp), proto=51)])
    assert [x[3] for x in sink.ah] == [ah, ah_esp]
    assert sink.esp == []
    assert dec.ipsec_frames == 2


def test_vlan_stacks() -> None:
    inner = IP(src=A, dst=B, proto=50) / Raw(ESP_BODY)
    frames = [
        bytes(eth() / Dot1Q(vlan=10) / inner),
        bytes(eth() / Dot1AD(vlan=20) / Dot1Q(vlan=10) / inner),
        bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x9100) / Dot1Q(vlan=3) / inner),
        bytes(eth() / Dot1AD(vlan=1) / Dot1AD(vlan=2) / Dot1Q(vlan=3) / inner),
    ]
    dec, sink = run(frames)
    assert [e.esp for e in sink.esp] == [ESP_BODY] * 4


@pytest.mark.parametrize(
    ("linktype", "prefix"),
    [
        (113, bytes(CookedLinux(proto=0x0800))),
        (276, bytes(CookedLinuxV2(proto=0x0800))),
        (0, struct.pack("<I", 2)),  # BSD loopback, little-endian host
        (0, struct.pack(">I", 2)),  # ... big-endian host
        (108, struct.pack(">I", 2)),  # OpenBSD LOOP: network order
        (101, b""),
        (12, b""),
        (14, b""),
        (228, b""),
    ],
)
def test_linktypes_ipv4(linktype: int, prefix: bytes) -> None:
    pkt = bytes(IP(src=A, dst=B) / UDP(sport=4500, dport=4500) / Raw(ESP_BODY))
    dec, sink = run([prefix + pkt], linktype)
    assert [e.esp for e in sink.esp] == [ESP_BODY]


@pytest.mark.parametrize(
    ("linktype", "prefix"),
    [
        (113, bytes(CookedLinux(proto=0x86DD))),
        (276, bytes(CookedLinuxV2(proto=0x86DD))),
        (0, struct.pack("<I", 30)),
        (0, struct.pack(">I", 28)),
        (0, struct.pack("<I", 24)),
        (101, b""),
        (229, b""),
    ],
)
def test_linktypes_ipv6(linktype: int, prefix: bytes) -> None:
    pkt = bytes(IPv6(src=A6, dst=B6) / Raw(ESP_BODY))
    pkt = pkt[:6] + b"\x32" + pkt[7:]  # next header ESP
    dec, sink = run([prefix + pkt], linktype)
    (e,) = sink.esp
    assert e.esp == ESP_BODY and len(e.src) == 16


def test_unsupported_and_non_ip() -> None:
    frames = [bytes(eth() / ARP()), bytes(Ether(type=0x88CC) / Raw(b"\x00" * 46))]
    dec, _ = run(frames)
    assert dec.skipped == {"non-ip": 2}
    dec, _ = run([b"\x00" * 40], linktype=127)
    assert dec.skipped == {"unsupported-linktype-127": 1}


def test_ordinary_traffic_is_not_ipsec() -> None:
    frames = [
        v4(TCP(sport=1234, dport=80)),
        v4(UDP(sport=53, dport=53) / Raw(b"x" * 30)),
        v4(ICMP(type=8)),
        v4(Raw(b"x" * 20), proto=47),
        bytes(eth() / IPv6(src=A6, dst=B6) / UDP(sport=1, dport=2)),
    ]
    dec, sink = run(frames)
    assert dec.skipped == {"not-ipsec": 5}
    assert dec.ipsec_frames == 0


def test_ipv4_options_and_ipv6_extension_headers() -> None:
    frames = [
        v4(UDP(sport=4500, dport=4500) / Raw(ESP_BODY), options=[IPOption_Router_Alert()]),
        bytes(
            eth()
            / IPv6(src=A6, dst=B6)
            / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrRouting(addresses=[B6])
            / IPv6ExtHdrDestOpt()
            / UDP(sport=4500, dport=4500)
            / Raw(ESP_BODY)
        ),
        # Atomic fragment (RFC 6946): offset 0, M=0, is a whole datagram.
        bytes(
            eth() / IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=5) / UDP(sport=500, dport=500) / Raw(ike())
        ),
    ]
    dec, sink = run(frames)
    assert [e.esp for e in sink.esp] == [ESP_BODY, ESP_BODY]
    assert sink.esp[1].src == bytes.fromhex("20010db8000000000000000000000001")
    (m,) = sink.ike
    assert m.ip_version == 6 and m.src == A6 and m.dst == B6
    assert dec.ipsec_frames == 3


def test_segmentation_offload_total_length_zero() -> None:
    raw = bytearray(v4(Raw(ESP_BODY), proto=50))
    raw[16:18] = b"\x00\x00"
    _, sink = run([bytes(raw)])
    assert [e.esp for e in sink.esp] == [ESP_BODY]


def test_snaplen_truncated_esp_is_still_counted() -> None:
    frame = v4(UDP(sport=4500, dport=4500) / Raw(ESP_BODY))
    cut = frame[: 14 + 20 + 8 + 12]
    dec, sink = run([(cut, len(frame))])
    (e,) = sink.esp
    assert e.esp == ESP_BODY[:12]
    assert sink.truncated == [(1, len(cut), len(frame))]
    assert dec.ipsec_frames == 1 and not dec.skipped


@pytest.mark.parametrize("keep", [10, 14 + 12, 14 + 20 + 4, 14 + 20 + 8 + 6])
def test_snaplen_cut_before_the_decision(keep: int) -> None:
    frame = v4(UDP(sport=4500, dport=4500) / Raw(ESP_BODY))
    dec, sink = run([(frame[:keep], len(frame))])
    assert dec.skipped == {"truncated": 1}
    assert len(sink.truncated) == 1 and not sink.malformed and not sink.esp


def test_snaplen_cut_ike_is_truncated_not_passed_on() -> None:
    frame = v4(UDP(sport=500, dport=500) / Raw(ike(200)))
    dec, sink = run([(frame[:120], len(frame))])
    assert dec.skipped == {"truncated": 1} and sink.ike == []


@pytest.mark.parametrize(
    ("mutate", "layer"),
    [
        (lambda b: b[:14] + b"\x44" + b[15:], "ipv4"),  # IHL 4
        (lambda b: b[:14] + b"\x65" + b[15:], "ipv4"),  # version 6 in an IPv4 EtherType
        (lambda b: b[:16] + b"\x05\xdc" + b[18:], "ipv4"),  # total length 1500 > frame
        (lambda b: b[:16] + b"\x00\x10" + b[18:], "ipv4"),  # total length below the header
        (lambda b: (b[:14] + b"\x4f" + b[15:])[:50], "ipv4"),  # options run past the frame
    ],
)
def test_malformed_ip(mutate: object, layer: str) -> None:
    frame = mutate(v4(Raw(ESP_BODY), proto=50))  # type: ignore[operator]
    dec, sink = run([frame])
    assert dec.skipped == {"malformed": 1}
    assert sink.malformed[0][1] == layer


def test_malformed_ipv6() -> None:
    good = bytes(eth() / IPv6(src=A6, dst=B6, nh=50) / Raw(ESP_BODY))
    bad_version = good[:14] + b"\x40" + good[15:]
    too_long = good[:18] + b"\x04\x00" + good[20:]
    ext_past_end = bytes(eth() / IPv6(src=A6, dst=B6, nh=0, plen=8) / Raw(b"\x11\x05" + b"\x00" * 6))
    dec, sink = run([bad_version, too_long, ext_past_end])
    assert dec.skipped == {"malformed": 3}
    assert [m[1] for m in sink.malformed] == ["ipv6"] * 3


def test_icmp_frag_needed_quoting_esp() -> None:
    quoted = IP(src=A, dst=B, proto=50, len=1500) / Raw(ESP_BODY[:8])
    frame = bytes(eth() / IP(src="203.0.113.9", dst=A) / ICMP(type=3, code=4, nexthopmtu=1400) / quoted)
    dec, sink = run([frame])
    (err,) = sink.icmp
    assert (err.kind, err.mtu, err.icmp_type, err.icmp_code) == ("frag-needed", 1400, 3, 4)
    assert (err.src, err.dst, err.quoted_proto, err.quoted_src, err.quoted_dst) == (
        "203.0.113.9",
        A,
        50,
        A,
        B,
    )
    assert err.quoted_spi == SPI and err.quoted_len == 1500
    assert dec.ipsec_frames == 1


def test_icmpv6_packet_too_big_quoting_esp_in_udp() -> None:
    quoted = IPv6(src=A6, dst=B6) / UDP(sport=4500, dport=4500) / Raw(ESP_BODY[:8])
    frame = bytes(eth() / IPv6(src="2001:db8::99", dst=A6) / ICMPv6PacketTooBig(mtu=1280) / quoted)
    _, sink = run([frame])
    (err,) = sink.icmp
    assert (err.kind, err.mtu, err.quoted_proto) == ("packet-too-big", 1280, 17)
    assert (err.quoted_sport, err.quoted_dport, err.quoted_spi) == (4500, 4500, SPI)


def test_icmp_quoting_ike_reaches_initiator_spi() -> None:
    spi_i = bytes(range(1, 9))
    quoted = IP(src=A, dst=B) / UDP(sport=500, dport=500) / Raw(ike(spi=spi_i)[:8])
    frames = [
        bytes(eth() / IP(src=B, dst=A) / ICMP(type=3, code=3) / quoted),
        bytes(eth() / IP(src=B, dst=A) / ICMP(type=11, code=0) / quoted),
        bytes(
            eth()
            / IPv6(src=B6, dst=A6)
            / ICMPv6DestUnreach(code=1)
            / IPv6(src=A6, dst=B6)
            / UDP(sport=4500, dport=4500)
            / Raw(b"\x00\x00\x00\x00" + spi_i)
        ),
    ]
    _, sink = run(frames)
    assert [e.kind for e in sink.icmp] == ["unreachable", "time-exceeded", "unreachable"]
    assert [e.quoted_ike_spi_i for e in sink.icmp] == [spi_i] * 3
    assert all(e.mtu is None for e in sink.icmp)


def test_icmp_about_other_traffic_is_not_ipsec() -> None:
    quoted = IP(src=A, dst=B) / TCP(sport=1, dport=80)
    frames = [
        bytes(eth() / IP(src=B, dst=A) / ICMP(type=3, code=4) / quoted),
        bytes(eth() / IP(src=B, dst=A) / ICMP(type=0)),
    ]
    dec, sink = run(frames)
    assert dec.skipped == {"not-ipsec": 2} and sink.icmp == []


def test_icmp_with_missing_quote_is_malformed() -> None:
    frame = bytes(eth() / IP(src=B, dst=A) / ICMP(type=3, code=4) / Raw(b"\x45\x00"))
    dec, sink = run([frame])
    assert dec.skipped == {"malformed": 1} and sink.malformed[0][1] == "icmp"


def test_fast_path_matches_reference_path() -> None:
    """feed() is specialised per instance; the class method is the reference behaviour."""
    frames = [
        v4(Raw(ESP_BODY), proto=50),
        v4(UDP(sport=4500, dport=4500) / Raw(ESP_BODY)),
        v4(UDP(sport=4500, dport=4500) / Raw(b"\x00" * 4 + ike())),
        v4(UDP(sport=4500, dport=4500) / Raw(b"\xff")),
        v4(UDP(sport=4500, dport=4500) / Raw(ESP_BODY[:5])),
        v4(UDP(sport=9, dport=9) / Raw(ESP_BODY)),
        v4(Raw(ESP_BODY[:4]), proto=50),
        v4(Raw(ESP_BODY), proto=50, flags="MF"),
        v4(Raw(ESP_BODY), proto=50, options=[IPOption_Router_Alert()]),
        (v4(Raw(ESP_BODY), proto=50)[:40], 98),
    ]
    esp_udp = IP(src=A, dst=B) / UDP(sport=4500, dport=4500) / Raw(ESP_BODY)
    linked = [(1, f) for f in frames] + [
        (1, bytes(eth() / Dot1Q(vlan=3) / esp_udp)),
        (1, bytes(eth() / Dot1Q(vlan=3) / IPv6(src=A6, dst=B6, nh=50) / Raw(ESP_BODY))),
        (113, bytes(CookedLinux(proto=0x0800) / esp_udp)),
        (113, bytes(CookedLinux(proto=0x0800) / esp_udp)[:30]),
        (276, bytes(CookedLinuxV2(proto=0x0800) / esp_udp)),
        (276, b"\x08\x00"),
        (101, bytes(esp_udp)),
    ]
    results = []
    for reference in (False, True):
        sink = RecordingSink()
        dec = Decoder(sink)
        for n, (linktype, f) in enumerate(linked, 1):
            data, orig = (f, len(f)) if isinstance(f, bytes) else f
            if reference:
                Decoder.feed(dec, n, 1.0, linktype, data, orig)
            else:
                dec.feed(n, 1.0, linktype, data, orig)
        dec.finish()
        if not reference:
            assert dec._fast_count() == 5  # the inlined path really ran for the five it covers
        results.append((sink, dec.ipsec_frames, dict(dec.skipped)))
    assert results[0] == results[1]


def test_record_walker_matches_feed_and_reference() -> None:
    """CaptureFile.push with the decoder's record walker (feed()'s hot path inlined into the
    walk over a buffer of pcap records) gives what feed() per frame and the reference give:
    frames in and out of time order, over a long gap, fragments expiring on time, every kind
    of frame the walker must hand on, and records straddling the reader's buffers."""
    import io

    from ipsecdiag.capture.reader import open_capture_stream
    from ipsecdiag.capture.writer import PcapWriter

    big = struct.pack("!II", SPI, 1) + b"\x5a" * 1300
    kinds = [
        v4(Raw(big), proto=50),
        v4(UDP(sport=4500, dport=4500) / Raw(big)),
        v4(UDP(sport=4500, dport=4500) / Raw(b"\x00" * 4 + ike())),
        v4(UDP(sport=4500, dport=4500) / Raw(b"\xff")),
        v4(UDP(sport=4500, dport=4500) / Raw(ESP_BODY[:5])),
        v4(UDP(sport=9, dport=9) / Raw(ESP_BODY)),
        v4(Raw(ESP_BODY[:4]), proto=50),
        v4(Raw(ESP_BODY), proto=50, flags="MF"),  # a fragment: expires 30 s later
        v4(Raw(ESP_BODY), proto=50, options=[IPOption_Router_Alert()]),
        bytes(eth() / Dot1Q(vlan=3) / IP(src=A, dst=B) / UDP(sport=4500, dport=4500) / Raw(ESP_BODY)),
        bytes(eth() / ARP()),
    ]
    fast, fragment = kinds[:2], kinds[7]
    records: list[tuple[float, bytes, int]] = []
    ts = 1_700_000_000.0
    for i in range(900):  # about 1.1 MB: several of the reader's 256 KiB buffers
        # Thirds: only what the walker settles itself; every kind; the walker's kinds again
        # after fragments that expire while they pass.
        if 300 <= i < 600:
            f = kinds[i % len(kinds)] if i % 3 == 0 else fast[i % 2]
        else:
            f = fragment if i == 650 else fast[i % 2]
        ts += 0.25
        if i % 97 == 5:
            ts -= 3.0  # steps back
        if i % 211 == 7:
            ts += 120.0  # a gap past the horizon (and any fragment's deadline)
        records.append((ts, f[:60] if i % 50 == 0 else f, len(f)))  # some cut by the snaplen
    out = io.BytesIO()
    w = PcapWriter(out, 1)
    for ts, f, orig in records:
        w.write(ts, f, orig)
    w.flush()
    pcap = out.getvalue()

    class OrderedSink(RecordingSink):
        """Also logs the order of the ESP and fragment-group events (expiry on time)."""

        def __init__(self) -> None:
            super().__init__()
            self.order: list[tuple[str, int]] = []

        def on_esp(self, frame: int, *rest: object) -> None:  # type: ignore[override]
            self.order.append(("esp", frame))
            super().on_esp(frame, *rest)  # type: ignore[arg-type]

        def on_fragment_group(self, group: object) -> None:  # type: ignore[override]
            self.order.append(("group", len(self.esp)))
            super().on_fragment_group(group)  # type: ignore[arg-type]

    def decoded(how: str) -> tuple[object, ...]:
        sink = OrderedSink()
        dec = Decoder(sink)
        cap = open_capture_stream(io.BytesIO(pcap))
        if how == "walker":
            span = cap.push(dec.feed, dec.record_walker)
        elif how == "feed":
            span = cap.push(dec.feed)
        else:
            span = cap.push(lambda *fr: Decoder.feed(dec, *fr))
        dec.finish()
        steps = (dec.steps_back.count, dec.steps_back.boundaries)
        return sink, sink.order, dec.ipsec_frames, dict(dec.skipped), span, cap.stats.frames, steps

    walked, fed, reference = decoded("walker"), decoded("feed"), decoded("reference")
    assert walked == fed == reference
    sink = walked[0]
    assert isinstance(sink, OrderedSink)
    assert len(sink.esp) > 600 and len(sink.groups) > 1 and sink.truncated
    assert walked[6][0] > 0 and len(walked[6][1]) >= 5  # steps back, and the gaps seen
