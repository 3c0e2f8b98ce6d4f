#!/usr/bin/env python3
"""Build the synthesized captures in sample_pcaps/synth/: network-level IPsec problems that two
healthy strongSwan peers in a lab do not produce on their own (replays, mirror-port duplicates,
deep reordering, sequence resets, counters near 2^32, one-way ESP, NAT rebinding, ICMP "too big",
lost IP fragments).

Frames are built here byte by byte (Ethernet / IPv4 / UDP / ESP), IKE messages with the project's
own IKEv2 codec (``ipsecdiag.wire.ikev2``) and written with ``ipsecdiag.capture.writer.PcapWriter``.
ESP bodies are deterministic pseudo-random bytes (no keys: these captures exercise what ipsecdiag
sees without decryption). Everything is deterministic: running the script twice gives identical
files.

Usage: python sample_pcaps/synth/make_synth.py [--out DIR] [--only NAME] [--list]
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import random
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from ipsecdiag.capture.writer import PcapWriter  # noqa: E402
from ipsecdiag.crypto.sk import protect_sk  # noqa: E402
from ipsecdiag.keys.model import IkeSaKeys, SecretBytes  # noqa: E402
from ipsecdiag.wire import ikev2 as v2  # noqa: E402
from ipsecdiag.wire.ikev2_sa import Proposal, SaPayload, Transform, TransformAttribute  # noqa: E402
from ipsecdiag.wire.ikev2_ts import TrafficSelector, TsPayload  # noqa: E402
from ipsecdiag.wire.registry import NotifyType  # noqa: E402

BASE_TS = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LINKTYPE_ETHERNET = 1
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
Endpoint = tuple[str, int]


# -- frame building ------------------------------------------------------------------------------
def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(
    src: str, dst: str, proto: int, payload: bytes, ident: int = 0, frag: int = 0, ttl: int = 64
) -> bytes:
    """An IPv4 packet; ``frag`` is the flags/fragment-offset word (MF 0x2000, offset in 8-octet units)."""
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        frag,
        ttl,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
    return hdr + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload  # checksum 0: none (IPv4)


def eth(ip_packet: bytes, outbound: bool = True) -> bytes:
    dst, src = (MAC_B, MAC_A) if outbound else (MAC_A, MAC_B)
    return dst + src + b"\x08\x00" + ip_packet


def esp(spi: int, seq: int, body: bytes) -> bytes:
    return struct.pack("!II", spi, seq & 0xFFFFFFFF) + body


def fragments4(packet: bytes, mtu: int) -> list[bytes]:
    """Split an IPv4 packet (20-byte header) into fragments that fit ``mtu``."""
    hdr, payload = packet[:20], packet[20:]
    src, dst = str(ipaddress.IPv4Address(hdr[12:16])), str(ipaddress.IPv4Address(hdr[16:20]))
    ident, proto = struct.unpack("!H", hdr[4:6])[0], hdr[9]
    step = (mtu - 20) // 8 * 8
    out = []
    for off in range(0, len(payload), step):
        more = 0x2000 if off + step < len(payload) else 0
        out.append(ipv4(src, dst, proto, payload[off : off + step], ident, more | (off // 8)))
    return out


def icmp_frag_needed(router: str, to: str, mtu: int, quoted: bytes) -> bytes:
    """ICMPv4 type 3 code 4 with the next-hop MTU (RFC 1191), quoting the start of ``quoted``."""
    body = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + quoted[:64]
    body = body[:2] + struct.pack("!H", _checksum(body)) + body[4:]
    return ipv4(router, to, 1, body)


# -- IKEv2 messages ------------------------------------------------------------------------------
def natd_hash(spi_i: bytes, spi_r: bytes, ep: Endpoint) -> bytes:
    """RFC 7296 §2.23: SHA-1(SPIi | SPIr | IP | port)."""
    return hashlib.sha1(
        spi_i + spi_r + ipaddress.ip_address(ep[0]).packed + ep[1].to_bytes(2, "big")
    ).digest()


def _ike_sa_payload() -> SaPayload:
    return SaPayload(
        (
            Proposal(
                1,
                1,
                b"",
                (
                    Transform(1, 20, (TransformAttribute(14, 256),)),  # ENCR_AES_GCM_16 256
                    Transform(2, 5),  # PRF_HMAC_SHA2_256
                    Transform(4, 19),  # ECP_256
                ),
            ),
        )
    )


def ike_init(
    rng: random.Random,
    spi_i: bytes,
    spi_r: bytes,
    response: bool,
    own: Endpoint,
    peer: Endpoint,
    force_encap: bool = False,
) -> bytes:
    """IKE_SA_INIT with NAT-D hashes as the sender computes them: over its own endpoint
    (``own``, random when it forces UDP encapsulation) and the one it sends to (``peer``)."""
    hdr_spi_r = spi_r if response else bytes(8)
    src_hash = rng.randbytes(20) if force_encap else natd_hash(spi_i, hdr_spi_r, own)
    payloads = [
        _ike_sa_payload(),
        v2.KePayload(19, rng.randbytes(64)),
        v2.NoncePayload(rng.randbytes(32)),
        v2.NotifyPayload(0, b"", NotifyType.NAT_DETECTION_SOURCE_IP, src_hash),
        v2.NotifyPayload(0, b"", NotifyType.NAT_DETECTION_DESTINATION_IP, natd_hash(spi_i, hdr_spi_r, peer)),
    ]
    flags = v2.FLAG_RESPONSE if response else v2.FLAG_INITIATOR
    return v2.serialize_message(v2.build_message(spi_i, hdr_spi_r, 34, 0, payloads, flags=flags))


def ike_encrypted(
    rng: random.Random,
    spi_i: bytes,
    spi_r: bytes,
    exchange: int,
    mid: int,
    response: bool,
    from_init: bool,
    size: int,
) -> bytes:
    """An IKE_AUTH / INFORMATIONAL message whose SK payload is opaque bytes of about ``size``."""
    flags = (v2.FLAG_RESPONSE if response else 0) | (v2.FLAG_INITIATOR if from_init else 0)
    sk = v2.SkPayload(35, rng.randbytes(max(16, size - 32)))
    return v2.serialize_message(v2.build_message(spi_i, spi_r, exchange, mid, [sk], flags=flags))


# -- captures ------------------------------------------------------------------------------------
@dataclass
class Capture:
    name: str
    shows: str
    expect: list[str]  # finding ids ipsecdiag must report
    must_not: list[str] = field(default_factory=list)
    frames: list[tuple[float, bytes]] = field(default_factory=list)
    keys: str = ""  # ipsecdiag TOML key file for the captures whose IKE is really encrypted

    def add(self, t: float, ip_packet: bytes, outbound: bool = True) -> None:
        self.frames.append((BASE_TS + t, eth(ip_packet, outbound)))

    def write(self, path: Path) -> None:
        with PcapWriter(path, LINKTYPE_ETHERNET) as w:
            for ts, frame in sorted(self.frames, key=lambda x: x[0]):  # stable: equal times keep order
                w.write(ts, frame)
        if self.keys:
            path.with_suffix(".keys.toml").write_text(self.keys)


A, B = "192.0.2.10", "198.51.100.20"  # two gateways without NAT
SPI_AB, SPI_BA = 0xC0DE0001, 0xC0DE0002


def _esp_flow(
    cap: Capture,
    rng: random.Random,
    src: str,
    dst: str,
    spi: int,
    seqs: list[int],
    t0: float,
    step: float,
    size: int = 120,
    ports: tuple[int, int] | None = None,
    outbound: bool = True,
) -> list[tuple[float, bytes]]:
    """ESP packets with the given sequence numbers; returns (time, IP packet) for reuse."""
    out = []
    for i, seq in enumerate(seqs):
        pkt = esp(spi, seq, rng.randbytes(size - 8))
        ip = ipv4(src, dst, 17, udp(*ports, pkt)) if ports else ipv4(src, dst, 50, pkt)
        t = t0 + i * step
        cap.add(t, ip, outbound)
        out.append((t, ip))
    return out


def esp_replay() -> Capture:
    cap = Capture(
        "esp-replay",
        "ESP between two gateways (IP protocol 50); 11.6 s after it was first sent, packet 5 of SPI "
        "0xc0de0001 appears again byte for byte, and sequence number 30 is reused 0.2 ms later with other bytes",
        ["esp-replay"],
        ["capture-duplicate", "esp-seq-reset", "esp-one-way"],
    )
    rng = random.Random(cap.name)
    sent = _esp_flow(cap, rng, A, B, SPI_AB, list(range(1, 41)), 0.0, 0.1)
    _esp_flow(cap, rng, B, A, SPI_BA, list(range(1, 41)), 0.05, 0.1, outbound=False)
    cap.add(12.0, sent[4][1])  # the very same bytes, much later: a replay
    cap.add(sent[29][0] + 0.0002, ipv4(A, B, 50, esp(SPI_AB, 30, rng.randbytes(112))))
    return cap


def esp_capture_duplicates() -> Capture:
    cap = Capture(
        "esp-capture-duplicates",
        "Every ESP frame captured twice, 20 µs apart (a mirror port that copies both directions)",
        ["capture-duplicate"],
        ["esp-replay", "esp-seq-reset"],
    )
    rng = random.Random(cap.name)
    for t, ip in _esp_flow(cap, rng, A, B, SPI_AB, list(range(1, 31)), 0.0, 0.1) + _esp_flow(
        cap, rng, B, A, SPI_BA, list(range(1, 31)), 0.05, 0.1, outbound=False
    ):
        cap.add(t + 0.00002, ip)
    return cap


def esp_reorder() -> Capture:
    cap = Capture(
        "esp-reorder",
        "SPI 0xc0de0001 with sequence numbers 100-109 delayed until after 210 (reordered by up to 110, "
        "beyond a 64-packet anti-replay window) and 20-22 swapped within the window",
        ["esp-out-of-window"],
        ["esp-replay", "esp-seq-reset"],
    )
    rng = random.Random(cap.name)
    order = [s for s in range(1, 301) if not 100 <= s <= 109]
    order.insert(order.index(210) + 1, 0)  # placeholder for the late block
    i = order.index(0)
    order[i : i + 1] = list(range(100, 110))
    j = order.index(20)
    order[j : j + 3] = [22, 20, 21]
    _esp_flow(cap, rng, A, B, SPI_AB, order, 0.0, 0.01, size=64)
    _esp_flow(cap, rng, B, A, SPI_BA, list(range(1, 301)), 0.005, 0.01, size=64, outbound=False)
    return cap


def esp_seq_reset() -> Capture:
    cap = Capture(
        "esp-seq-reset",
        "SPI 0xc0de0001 counts 1-200, then starts again at 1 on the same SPI (sender restarted its SA "
        "state without a rekey)",
        ["esp-seq-reset"],
        ["esp-replay"],
    )
    rng = random.Random(cap.name)
    _esp_flow(cap, rng, A, B, SPI_AB, list(range(1, 201)) + list(range(1, 31)), 0.0, 0.01, size=64)
    _esp_flow(cap, rng, B, A, SPI_BA, list(range(1, 231)), 0.005, 0.01, size=64, outbound=False)
    return cap


def esp_seq_exhaustion() -> Capture:
    top = (1 << 32) - 4096
    cap = Capture(
        "esp-seq-exhaustion",
        f"SPI 0xc0de0001 (no ESN known) sends sequence numbers {top - 99}..{top}, close to 2^32",
        ["esp-seq-exhaustion"],
        ["esp-seq-reset", "esp-replay"],
    )
    rng = random.Random(cap.name)
    _esp_flow(cap, rng, A, B, SPI_AB, list(range(top - 99, top + 1)), 0.0, 0.01, size=64)
    _esp_flow(cap, rng, B, A, SPI_BA, list(range(1, 101)), 0.005, 0.01, size=64, outbound=False)
    return cap


def _ike_handshake(
    cap: Capture,
    rng: random.Random,
    i_own: Endpoint,
    r_own: Endpoint,
    i_cap: Endpoint,
    r_cap: Endpoint,
    i_to_r: Endpoint,
    r_to_i: Endpoint,
    *,
    float_ports: tuple[Endpoint, Endpoint] | None,
    t0: float = 0.0,
) -> tuple[bytes, bytes]:
    """IKE_SA_INIT + IKE_AUTH. ``*_own``: each peer's own endpoint (its NAT-D source), ``*_cap``:
    how the capture sees them, ``i_to_r``/``r_to_i``: where each sends (its NAT-D destination).
    ``float_ports``: the (initiator, responder) endpoints on the NAT-T port as captured."""
    spi_i, spi_r = rng.randbytes(8), rng.randbytes(8)
    req = ike_init(rng, spi_i, spi_r, False, i_own, i_to_r)
    resp = ike_init(rng, spi_i, spi_r, True, r_own, r_to_i)
    cap.add(t0, ipv4(i_cap[0], r_cap[0], 17, udp(i_cap[1], r_cap[1], req)))
    cap.add(t0 + 0.004, ipv4(r_cap[0], i_cap[0], 17, udp(r_cap[1], i_cap[1], resp)), False)
    ai = ike_encrypted(rng, spi_i, spi_r, 35, 1, False, True, 380)
    ar = ike_encrypted(rng, spi_i, spi_r, 35, 1, True, False, 300)
    if float_ports:
        (ia, ip_), (ra, rp) = float_ports
        cap.add(t0 + 0.010, ipv4(ia, ra, 17, udp(ip_, rp, bytes(4) + ai)))
        cap.add(t0 + 0.014, ipv4(ra, ia, 17, udp(rp, ip_, bytes(4) + ar)), False)
    else:
        cap.add(t0 + 0.010, ipv4(i_cap[0], r_cap[0], 17, udp(i_cap[1], r_cap[1], ai)))
        cap.add(t0 + 0.014, ipv4(r_cap[0], i_cap[0], 17, udp(r_cap[1], i_cap[1], ar)), False)
    return spi_i, spi_r


def esp_one_way() -> Capture:
    cap = Capture(
        "esp-one-way",
        "IKE_SA_INIT and IKE_AUTH answered (no NAT), then 20 ESP packets from the initiator over 4 s "
        "and none from the responder",
        ["esp-one-way"],
        ["nat-detected", "natt-not-used"],
    )
    rng = random.Random(cap.name)
    i, r = (A, 500), (B, 500)
    _ike_handshake(cap, rng, i, r, i, r, r, i, float_ports=None)
    _esp_flow(cap, rng, A, B, SPI_AB, list(range(1, 21)), 0.5, 0.2)
    return cap


def nat_mapping_change() -> Capture:
    priv, pub, gw = ("192.168.1.10", 500), ("203.0.113.5", 500), ("198.51.100.20", 500)
    cap = Capture(
        "nat-mapping-change",
        "Captured at the gateway: a client behind a NAT (192.168.1.10 -> 203.0.113.5, NAT-T port 4500 "
        "-> 40501) sets up IKE and ESP-in-UDP, goes quiet for 90 s without NAT keepalives, then reappears "
        "from port 40777 while the gateway still sends to 40501 (so the new mapping also looks one-way)",
        ["nat-detected", "natt-keepalive-missing"],
        ["natt-not-used"],
    )
    rng = random.Random(cap.name)
    old, new, gw_t = ("203.0.113.5", 40501), ("203.0.113.5", 40777), ("198.51.100.20", 4500)
    _ike_handshake(cap, rng, priv, gw, pub, gw, gw, pub, float_ports=(old, gw_t))
    _esp_flow(cap, rng, old[0], gw[0], 0xC11E0001, list(range(1, 21)), 0.5, 0.5, ports=(old[1], 4500))
    _esp_flow(
        cap,
        rng,
        gw[0],
        old[0],
        0x6A7E0001,
        list(range(1, 21)),
        0.55,
        0.5,
        ports=(4500, old[1]),
        outbound=False,
    )
    # 90 s of silence, then the client's NAT binding is new; the gateway answers the old one for a while.
    _esp_flow(cap, rng, new[0], gw[0], 0xC11E0001, list(range(21, 31)), 100.0, 0.5, ports=(new[1], 4500))
    _esp_flow(
        cap,
        rng,
        gw[0],
        old[0],
        0x6A7E0001,
        list(range(21, 25)),
        100.05,
        0.5,
        ports=(4500, old[1]),
        outbound=False,
    )
    return cap


def natt_not_used() -> Capture:
    priv, pub, gw = ("192.168.1.10", 500), ("203.0.113.5", 500), ("198.51.100.20", 500)
    cap = Capture(
        "natt-not-used",
        "Captured on the client's LAN behind a NAT (192.168.1.10 appears as 203.0.113.5): the gateway's "
        "NAT_DETECTION_DESTINATION_IP shows the translation, yet IKE stays on port 500 and ESP is sent "
        "as IP protocol 50",
        ["nat-detected", "natt-not-used"],
        [],
    )
    rng = random.Random(cap.name)
    _ike_handshake(cap, rng, priv, gw, priv, gw, gw, pub, float_ports=None)
    _esp_flow(cap, rng, priv[0], gw[0], 0xC11E0002, list(range(1, 11)), 0.5, 0.2)
    _esp_flow(cap, rng, gw[0], priv[0], 0x6A7E0002, list(range(1, 11)), 0.55, 0.2, outbound=False)
    return cap


def icmp_too_big() -> Capture:
    cap = Capture(
        "icmp-too-big",
        "ESP-in-UDP between two gateways with 1438-byte packets; a router on the path (203.0.113.1) "
        "answers with ICMP fragmentation-needed, MTU 1400, quoting the ESP packets and a large IKE message",
        ["icmp-too-big", "tunnel-mtu"],
        ["esp-one-way"],
    )
    rng = random.Random(cap.name)
    spi_i = rng.randbytes(8)
    spi_r = rng.randbytes(8)
    big = _esp_flow(cap, rng, A, B, SPI_AB, list(range(1, 11)), 0.0, 0.2, size=1410, ports=(4500, 4500))
    _esp_flow(
        cap, rng, B, A, SPI_BA, list(range(1, 11)), 0.05, 0.2, size=120, ports=(4500, 4500), outbound=False
    )
    for t, ip in big[:3]:
        cap.add(t + 0.001, icmp_frag_needed("203.0.113.1", A, 1400, ip), False)
    ike = ike_encrypted(rng, spi_i, spi_r, 37, 2, False, True, 1420)
    ike_ip = ipv4(A, B, 17, udp(4500, 4500, bytes(4) + ike))
    cap.add(2.5, ike_ip)
    cap.add(2.501, icmp_frag_needed("203.0.113.1", A, 1400, ike_ip), False)
    return cap


def ike_fragments_lost() -> Capture:
    cap = Capture(
        "ike-fragments-lost",
        "IKE_SA_INIT answered; the 1900-byte IKE_AUTH request travels in two IP fragments of which only "
        "the first ever reaches the capture point, three times",
        ["ike-fragment-loss"],
        [],
    )
    rng = random.Random(cap.name)
    i, r = (A, 500), (B, 500)
    spi_i, spi_r = _ike_handshake(cap, rng, i, r, i, r, r, i, float_ports=None)
    # Replace the IKE_AUTH exchange of the handshake by a large request whose second fragment is lost.
    cap.frames = cap.frames[:2]
    auth = ike_encrypted(rng, spi_i, spi_r, 35, 1, False, True, 1900)
    pkt = ipv4(A, B, 17, udp(4500, 4500, bytes(4) + auth), ident=0x4242)
    for k, t in enumerate((0.01, 2.0, 5.0)):
        frags = fragments4(pkt[:4] + struct.pack("!H", 0x4242 + k) + pkt[6:], 1400)
        cap.add(t, frags[0])
    return cap


# -- an IKE SA with real SK protection (AES-GCM-16-256), for findings that need decrypted IKE --
class KeyedSa:
    """Protects IKE messages with random (deterministic) SK_e keys and writes them as a key file."""

    def __init__(self, rng: random.Random, i: Endpoint, r: Endpoint) -> None:
        self.rng, self.i, self.r = rng, i, r
        self.spi_i, self.spi_r = rng.randbytes(8), rng.randbytes(8)
        self.keys = IkeSaKeys(
            self.spi_i,
            self.spi_r,
            20,
            SecretBytes(rng.randbytes(36)),
            SecretBytes(rng.randbytes(36)),
            encr_key_bits=256,
        )

    def toml(self) -> str:
        return (
            "# SK_e keys of the synthesized IKE SA (ipsecdiag key file, docs/keys.md)\n[[ike]]\n"
            f'spi_i = "{self.spi_i.hex()}"\nspi_r = "{self.spi_r.hex()}"\nencr = "ENCR_AES_GCM_16"\n'
            f'key_bits = 256\nsk_ei = "{self.keys.sk_ei.reveal().hex()}"\nsk_er = "{self.keys.sk_er.reveal().hex()}"\n'
            'integ = "NONE"\nsource = "sample_pcaps/synth/make_synth.py"\n'
        )

    def init(self, cap: Capture, t: float) -> None:
        req = ike_init(self.rng, self.spi_i, self.spi_r, False, self.i, self.r)
        resp = ike_init(self.rng, self.spi_i, self.spi_r, True, self.r, self.i)
        cap.add(t, ipv4(self.i[0], self.r[0], 17, udp(self.i[1], self.r[1], req)))
        cap.add(t + 0.004, ipv4(self.r[0], self.i[0], 17, udp(self.r[1], self.i[1], resp)), False)

    def send(
        self, cap: Capture, t: float, exchange: int, mid: int, response: bool, from_init: bool, payloads: list
    ) -> None:
        flags = (v2.FLAG_RESPONSE if response else 0) | (v2.FLAG_INITIATOR if from_init else 0)
        first, body = v2.serialize_payloads(payloads) if payloads else (0, b"")
        hdr = struct.pack("!8s8sBBBBII", self.spi_i, self.spi_r, 0, 0x20, exchange, flags, mid, 28)
        msg = protect_sk(
            self.keys,
            from_initiator=from_init,
            ike_header=hdr,
            first_inner_type=first,
            plaintext=body,
            iv=self.rng.randbytes(8),
        )
        (src, dst) = (self.i, self.r) if from_init else (self.r, self.i)
        cap.add(t, ipv4(src[0], dst[0], 17, udp(src[1], dst[1], msg)), from_init)

    def auth(self, cap: Capture, t: float, spi_i: int, spi_r: int) -> None:
        """IKE_AUTH creating one ESP CHILD SA: the initiator receives on ``spi_i``."""

        def esp_sa(spi: int) -> SaPayload:
            enc = Transform(1, 20, (TransformAttribute(14, 256),))
            return SaPayload((Proposal(1, 3, spi.to_bytes(4, "big"), (enc, Transform(5, 0))),))

        def ts(which: int, net: str) -> TsPayload:
            n = ipaddress.ip_network(net)
            sel = TrafficSelector(7, 0, 0, 0xFFFF, n.network_address.packed, n.broadcast_address.packed)
            return TsPayload(which, (sel,))

        tsi, tsr = ts(44, "10.1.0.0/24"), ts(45, "10.2.0.0/24")
        req = [
            v2.IdPayload(35, 2, b"client.example"),
            v2.AuthPayload(2, self.rng.randbytes(32)),
            esp_sa(spi_i),
            tsi,
            tsr,
        ]
        resp = [
            v2.IdPayload(36, 2, b"gateway.example"),
            v2.AuthPayload(2, self.rng.randbytes(32)),
            esp_sa(spi_r),
            tsi,
            tsr,
        ]
        self.send(cap, t, 35, 1, False, True, req)
        self.send(cap, t + 0.004, 35, 1, True, False, resp)


def esp_unknown_spi() -> Capture:
    cap = Capture(
        "esp-unknown-spi",
        "IKEv2 SA with keys (esp-unknown-spi.keys.toml): IKE_AUTH creates the CHILD SA 0xc0de0101/0xc0de0102 "
        "and ESP flows on it; from 5 s on the initiator also sends ESP with SPI 0xdead0001, which no exchange "
        "created, and the responder answers with an encrypted INFORMATIONAL carrying N(INVALID_SPI)",
        ["esp-unknown-spi"],
        ["error-notify", "esp-one-way", "esp-missing"],
    )
    rng = random.Random(cap.name)
    sa = KeyedSa(rng, (A, 500), (B, 500))
    cap.keys = sa.toml()
    sa.init(cap, 0.0)
    sa.auth(cap, 0.01, 0xC0DE0101, 0xC0DE0102)
    _esp_flow(cap, rng, A, B, 0xC0DE0102, list(range(1, 41)), 0.5, 0.25)
    _esp_flow(cap, rng, B, A, 0xC0DE0101, list(range(1, 41)), 0.55, 0.25, outbound=False)
    _esp_flow(cap, rng, A, B, 0xDEAD0001, list(range(1001, 1011)), 5.0, 0.3)
    notify = v2.NotifyPayload(3, b"", NotifyType.INVALID_SPI, (0xDEAD0001).to_bytes(4, "big"))
    sa.send(cap, 5.02, 37, 0, False, False, [notify])
    sa.send(cap, 5.025, 37, 0, True, True, [])
    return cap


def esp_missing() -> Capture:
    cap = Capture(
        "esp-missing",
        "IKEv2 SA with keys (esp-missing.keys.toml): IKE_AUTH creates the CHILD SA 0xc0de0201/0xc0de0202, then "
        "30 s without a single ESP packet (an answered liveness check at 30 s shows the IKE SA is alive)",
        ["esp-missing"],
        ["esp-one-way", "esp-unknown-spi"],
    )
    rng = random.Random(cap.name)
    sa = KeyedSa(rng, (A, 500), (B, 500))
    cap.keys = sa.toml()
    sa.init(cap, 0.0)
    sa.auth(cap, 0.01, 0xC0DE0201, 0xC0DE0202)
    sa.send(cap, 30.0, 37, 2, False, True, [])
    sa.send(cap, 30.004, 37, 2, True, False, [])
    return cap


SCENARIOS: dict[str, Callable[[], Capture]] = {
    f.__name__.replace("_", "-"): f
    for f in (
        esp_replay,
        esp_capture_duplicates,
        esp_reorder,
        esp_seq_reset,
        esp_seq_exhaustion,
        esp_one_way,
        nat_mapping_change,
        natt_not_used,
        icmp_too_big,
        ike_fragments_lost,
        esp_unknown_spi,
        esp_missing,
    )
}


def build(name: str, out: Path) -> Capture:
    cap = SCENARIOS[name]()
    cap.write(out / f"{name}.pcap")
    return cap


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for name, f in SCENARIOS.items():
            print(f"{name}: {f().shows}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    table = {}
    for name in args.only or SCENARIOS:
        cap = build(name, args.out)
        table[name] = {
            "pcap": f"{name}.pcap",
            "shows": cap.shows,
            "expect": cap.expect,
            "must_not": cap.must_not,
            "frames": len(cap.frames),
            "keys": f"{name}.keys.toml" if cap.keys else None,
        }
        print(f"{name}.pcap: {len(cap.frames)} frames")
    if not args.only:
        (args.out / "synth.json").write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
