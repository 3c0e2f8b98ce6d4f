"""Resource-exhaustion captures, generated: half-open IKE_SA_INIT floods, many ESP SPIs,
fragments that never complete (issue 14). Scaled by the caller; written straight to a pcap.

Every packet is Ethernet/IPv4/UDP or ESP with correct lengths (UDP checksum 0, which IPv4
allows), so the decoder takes its normal path; only the IKE SPIs, addresses and ports vary.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapWriter

ROOT = Path(__file__).resolve().parents[2]
SA_INIT_SOURCE = ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap"
_ETH = bytes.fromhex("020000000002" "020000000001" "0800")


def _ipv4(src: int, dst: int, proto: int, payload: bytes, ident: int = 0, frag: int = 0) -> bytes:
    hdr = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(payload), ident & 0xFFFF, frag, 64, proto, 0, src, dst)
    csum = sum(struct.unpack("!10H", hdr))
    while csum >> 16:
        csum = (csum & 0xFFFF) + (csum >> 16)
    return hdr[:10] + struct.pack("!H", ~csum & 0xFFFF) + hdr[12:] + payload


def _udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def sa_init_request() -> bytes:
    """The first IKE_SA_INIT request of a bundled capture (an initiator's real offer)."""
    with open_capture(SA_INIT_SOURCE) as cap:
        for _fr, _ts, _lt, data, _orig in cap.frames():
            ihl = (data[14] & 0x0F) * 4
            ike = data[14 + ihl + 8 :]
            if len(ike) > 28 and ike[18] == 34 and not ike[19] & 0x20:  # IKE_SA_INIT, request
                return ike
    raise LookupError("no IKE_SA_INIT request in " + str(SA_INIT_SOURCE))


def main_mode_request() -> bytes:
    """The first IKEv1 Main Mode message of a bundled capture (responder cookie zero)."""
    with open_capture(ROOT / "sample_pcaps" / "ikev1-main-psk.pcap") as cap:
        for _fr, _ts, _lt, data, _orig in cap.frames():
            ihl = (data[14] & 0x0F) * 4
            ike = data[14 + ihl + 8 :]
            if len(ike) > 28 and ike[17] >> 4 == 1 and ike[18] == 2 and ike[8:16] == bytes(8):
                return ike
    raise LookupError("no Main Mode first message")


def half_open_flood(
    path: Path,
    count: int,
    *,
    responders: int = 1,
    initiators: int | None = None,
    rate: float = 2000.0,
    ikev1: bool = False,
) -> None:
    """``count`` IKE_SA_INIT requests (or IKEv1 Main Mode first messages), each with its own
    SPI, none answered: from one source address each (``initiators`` None) or from that many
    initiators in turn, to ``responders`` responders in turn."""
    base = bytearray(main_mode_request() if ikev1 else sa_init_request())
    with PcapWriter(path, 1) as w:
        for i in range(count):
            base[0:8] = struct.pack("!Q", 0x1000_0000_0000_0000 + i)
            src = 0x0A000000 + 1 + i % (initiators or 0xFFFFF0)  # 10.x.y.z
            dst = 0xC0000200 + 1 + i % responders  # 192.0.2.x
            w.write(1_700_000_000 + i / rate, _ETH + _ipv4(src, dst, 17, _udp(500 + i % 2, 500, bytes(base))))


def clients_retrying(path: Path, clients: int, *, tries: int = 3, interval: float = 2.0) -> None:
    """``clients`` initiators of one responder that never answers, each starting one IKE SA 0.3 s
    after the previous client and sending its IKE_SA_INIT request ``tries`` times, unchanged (same
    SPI), ``interval`` s apart: real clients of a gateway that is down (RFC 7296 §2.1)."""
    base = bytearray(sa_init_request())
    sends = []
    for c in range(clients):
        base[0:8] = struct.pack("!Q", 0x3000_0000_0000_0000 + c)
        pkt = _ETH + _ipv4(0x0A140000 + 1 + c, 0xCB007105, 17, _udp(500, 500, bytes(base)))  # 10.20.x.y -> 203.0.113.5
        sends += [(1_700_000_000 + 0.3 * c + interval * t, pkt) for t in range(tries)]
    with PcapWriter(path, 1) as w:
        for ts, pkt in sorted(sends, key=lambda x: x[0]):
            w.write(ts, pkt)


def half_open_flood_then(path: Path, count: int, capture: Path) -> None:
    """A half-open flood toward the responder of ``capture``, then ``capture`` itself (its
    Ethernet frames, after the flood): the real negotiation starts while the flood fills the
    limits, so its IKE_SA_INIT request is kept compact until the response brings it back."""
    base = bytearray(sa_init_request())
    with open_capture(capture) as cap:
        frames = list(cap.frames())
    first = frames[0][1]
    ihl = (frames[0][3][14] & 0x0F) * 4
    responder = struct.unpack_from("!I", frames[0][3], 14 + 16)[0]
    with PcapWriter(path, 1) as w:
        for i in range(count):
            base[0:8] = struct.pack("!Q", 0x2000_0000_0000_0000 + i)
            src = 0x0A000000 + 1 + i
            w.write(first - 1 + i / (count * 2), _ETH + _ipv4(src, responder, 17, _udp(500, 500, bytes(base))))
        assert ihl == 20
        for _fr, ts, _lt, data, _orig in frames:
            w.write(ts, data)


def many_spi_flood(path: Path, count: int, *, per_spi: int = 1, rate: float = 20000.0) -> None:
    """``count`` ESP SPIs between two hosts, ``per_spi`` packets each (sequence 1, 2, ...)."""
    pad = bytes(48)
    with PcapWriter(path, 1) as w:
        n = 0
        for seq in range(1, per_spi + 1):
            for spi in range(0x1000, 0x1000 + count):
                esp = struct.pack("!II", spi, seq) + pad
                w.write(1_700_000_000 + n / rate, _ETH + _ipv4(0xC0000201, 0xC6336401, 50, esp))
                n += 1


def fragment_flood(path: Path, count: int, *, rate: float = 20000.0) -> None:
    """``count`` first fragments of UDP/500 datagrams whose second fragment never comes."""
    body = _udp(500, 500, sa_init_request())
    first = body[: (len(body) // 2) & ~7]
    with PcapWriter(path, 1) as w:
        for i in range(count):
            src = 0x0A000000 + 1 + i % 251
            w.write(1_700_000_000 + i / rate, _ETH + _ipv4(src, 0xC0000201, 17, first, ident=i, frag=0x2000))


if __name__ == "__main__":
    kind, n, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    {"half-open": half_open_flood, "many-spi": many_spi_flood, "fragments": fragment_flood}[kind](out, n)
