"""Test-only walk of captures to IP packets (scapy's RawPcapReader + struct).

Deliberately independent of ipsecdiag.capture: the crypto and ESP tests use it as a second
opinion on what the captures hold. It handles Ethernet (+VLAN), BSD loopback, raw IP and
Linux SLL, and skips IP fragments.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from scapy.utils import RawPcapReader


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
