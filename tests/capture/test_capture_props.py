"""Property: whatever bytes arrive, Decoder.feed never raises and accounts every frame once."""

from __future__ import annotations

import struct

from capture_helpers import RecordingSink, assert_accounted
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from ipsecdiag.capture.decode import Decoder

ESP = struct.pack("!II", 0x1000, 1) + b"\x00" * 40
IKE = b"\x11" * 8 + b"\x00" * 8 + bytes([33, 0x20, 34, 0x08]) + struct.pack("!II", 0, 128) + b"\x00" * 100


def _e(pkt: object) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt)  # type: ignore[operator]


_SEEDS: list[bytes] = [
    _e(IP(src="10.0.0.1", dst="10.0.0.2", proto=50) / Raw(ESP)),
    _e(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=4500, dport=4500) / Raw(ESP)),
    _e(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=4500, dport=4500) / Raw(b"\x00" * 4 + IKE)),
    _e(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=500, dport=500) / Raw(IKE)),
    _e(Dot1Q(vlan=4) / IP(src="10.0.0.1", dst="10.0.0.2", proto=51) / Raw(b"\x32\x04" + b"\x00" * 30)),
    _e(IP() / ICMP(type=3, code=4) / IP(proto=50) / Raw(ESP[:8])),
    _e(IPv6() / ICMPv6PacketTooBig() / IPv6() / UDP(sport=4500, dport=4500) / Raw(ESP[:8])),
    _e(IPv6() / IPv6ExtHdrHopByHop() / UDP(sport=4500, dport=4500) / Raw(ESP)),
    _e(IP() / TCP(sport=1, dport=4500, flags="PA") / Raw(b"IKETCP" + struct.pack("!H", 10) + ESP[:8])),
]
_SEEDS += [_e(f) for f in fragment(IP(id=3) / UDP(sport=500, dport=500) / Raw(IKE * 8), fragsize=300)]
_SEEDS += [
    _e(f)
    for f in fragment6(IPv6() / IPv6ExtHdrFragment(id=4) / UDP(sport=500, dport=500) / Raw(IKE * 12), 1280)
]

LINKTYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 127]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes, int]:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    orig = len(data) + draw(st.sampled_from([0, 0, 5, 1000]))
    return 1, bytes(data[:cut] if draw(st.booleans()) else data), orig


@st.composite
def random_frame(draw: st.DrawFn) -> tuple[int, bytes, int]:
    data = draw(st.binary(max_size=120))
    return draw(st.sampled_from(LINKTYPES)), data, len(data) + draw(st.integers(0, 50))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(mutated(), random_frame()), max_size=30), st.floats(0, 60))
def test_feed_never_raises_and_accounts_every_frame(frames: list[tuple[int, bytes, int]], gap: float) -> None:
    sink = RecordingSink()
    dec = Decoder(sink, reassembly_timeout=20.0, max_fragment_buffers=4, max_fragment_bytes=3000)
    for n, (linktype, data, orig) in enumerate(frames, 1):
        dec.feed(n, n * gap, linktype, data, max(orig, len(data)))
        assert_accounted(dec, n)
    dec.finish()
    assert dec.pending_frames == 0
    assert_accounted(dec, len(frames))
    for g in sink.groups:
        assert g.frames and g.frames == tuple(sorted(g.frames))
    for m in sink.ike:
        assert len(m.data) >= 28 and m.frame in m.frames
