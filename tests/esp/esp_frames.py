"""Test-only extraction of ESP packets from captures (RawPcapReader + struct).

The real capture layer lives elsewhere; this walks just enough L2/L3/L4 to find IP protocol 50
and ESP-in-UDP on port 4500 (RFC 3948: not the non-ESP marker, not a keepalive) and skips IP
fragments. Kept separate from tests/crypto/ike_frames.py so each test directory runs alone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scapy.utils import RawPcapReader


@dataclass(frozen=True)
class EspFrame:
    frame: int
    src: str
    dst: str
    udp: bool
    data: bytes
    off: int  # first byte of the SPI
    end: int  # one past the ICV

    @property
    def spi(self) -> int:
        return struct.unpack_from("!I", self.data, self.off)[0]

    @property
    def seq(self) -> int:
        return struct.unpack_from("!I", self.data, self.off + 4)[0]


def _ip_payload(data: bytes, linktype: int) -> tuple[bytes, int] | None:
    if linktype == 1:  # Ethernet (+ VLAN)
        off, etype = 14, struct.unpack_from("!H", data, 12)[0]
        while etype in (0x8100, 0x88A8):
            etype = struct.unpack_from("!H", data, off + 2)[0]
            off += 4
        return (data, off) if etype in (0x0800, 0x86DD) else None
    if linktype == 0:  # BSD loopback: 4-byte host-order family
        return data, 4
    if linktype in (101, 12, 14):  # raw IP
        return data, 0
    if linktype == 113:  # Linux SLL
        return data, 16
    return None


def ip_packets(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """(1-based frame number, frame bytes, offset of the IP header)."""
    reader = RawPcapReader(str(path))
    try:
        default_lt = getattr(reader, "linktype", None)
        for n, (pkt, meta) in enumerate(reader, 1):
            lt = getattr(meta, "linktype", None)
            if lt is None:
                lt = 1 if default_lt is None else default_lt
            found = _ip_payload(pkt, lt)
            if found is not None:
                yield n, found[0], found[1]
    finally:
        reader.close()


def _addr(b: bytes) -> str:
    import ipaddress

    return str(ipaddress.ip_address(b))


def transport(data: bytes, off: int) -> tuple[int, str, str, int, int] | None:
    """(protocol, src, dst, payload offset, payload end) for unfragmented IPv4/IPv6."""
    ver = data[off] >> 4
    if ver == 4:
        ihl = (data[off] & 0x0F) * 4
        total = struct.unpack_from("!H", data, off + 2)[0]
        frag = struct.unpack_from("!H", data, off + 6)[0]
        if frag & 0x3FFF:
            return None
        return (
            data[off + 9],
            _addr(data[off + 12 : off + 16]),
            _addr(data[off + 16 : off + 20]),
            off + ihl,
            off + total,
        )
    if ver == 6:
        plen = struct.unpack_from("!H", data, off + 4)[0]
        return (
            data[off + 6],
            _addr(data[off + 8 : off + 24]),
            _addr(data[off + 24 : off + 40]),
            off + 40,
            off + 40 + plen,
        )
    return None


def esp_packets(path: Path) -> list[EspFrame]:
    out: list[EspFrame] = []
    for n, data, off in ip_packets(path):
        t = transport(data, off)
        if t is None:
            continue
        proto, src, dst, l4, end = t
        end = min(end, len(data))
        if proto == 50:
            out.append(EspFrame(n, src, dst, False, data, l4, end))
        elif proto == 17:
            sport, dport = struct.unpack_from("!HH", data, l4)
            if 4500 in (sport, dport) and end - l4 - 8 > 8 and data[l4 + 8 : l4 + 12] != b"\0\0\0\0":
                out.append(EspFrame(n, src, dst, True, data, l4 + 8, end))
    return out
