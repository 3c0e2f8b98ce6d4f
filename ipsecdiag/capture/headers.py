"""Protocol numbers, header layouts and the small parsers the decoder shares.

IPv6 extension-header walking (RFC 8200 §4), ICMP/ICMPv6 error classification (RFC 792,
RFC 1191, RFC 4443) and the parser for the IP packet an ICMP error quotes.
"""

from __future__ import annotations

import ipaddress
import struct
from functools import lru_cache

from ..wire.registry import IpProto

# Numbers bound to module constants: IntEnum attribute access is slow on the hot path.
ESP = int(IpProto.ESP)
AH = int(IpProto.AH)
UDP = int(IpProto.UDP)
TCP = int(IpProto.TCP)
ICMP = int(IpProto.ICMP)
ICMPV6 = int(IpProto.ICMPV6)
FRAGMENT = int(IpProto.FRAGMENT)
# IPv6 extension headers with the generic (next header, length in 8-octet units) layout.
_EXT6 = frozenset(
    int(p)
    for p in (IpProto.HOPOPTS, IpProto.ROUTING, IpProto.DSTOPTS, IpProto.MOBILITY, IpProto.HIP, IpProto.SHIM6)
)

PORT_IKE = 1
PORT_NATT = 2
ZERO4 = b"\x00\x00\x00\x00"
IKE_HEADER_LEN = 28

IP4_HDR = struct.Struct("!BxHxxHxBxx4s4s")  # ver/ihl, total length, flags/frag, proto, src, dst
IP6_HDR = struct.Struct("!4xHBx16s16s")  # payload length, next header, src, dst
UDP_HDR = struct.Struct("!HHH")
U16 = struct.Struct("!H")
U32 = struct.Struct("!I")


@lru_cache(maxsize=4096)
def ntoa(addr: bytes) -> str:
    """Packed 4/16-byte address -> ``ipaddress`` compressed text."""
    return str(ipaddress.ip_address(addr))


def icmp_error_kind(version: int, itype: int, code: int) -> str | None:
    """IcmpError.kind for an ICMP (version 4) or ICMPv6 error; None for non-errors."""
    if version == 4:
        if itype == 3:
            return "frag-needed" if code == 4 else "unreachable"
        if itype == 11:
            return "time-exceeded"
        if itype == 12:
            return "other"  # parameter problem
        return None
    return _ICMP6_KINDS.get(itype)


_ICMP6_KINDS = {1: "unreachable", 2: "packet-too-big", 3: "time-exceeded", 4: "other"}


def walk_ext6(data: bytes, nh: int, p: int, end: int) -> tuple[int, int]:
    """Skip IPv6 extension headers; stop at the fragment header or an upper layer.

    Returns (next header, offset), or (-1, offset) when a header runs past ``end``. AH and ESP
    are upper layers for the decoder.
    """
    while nh in _EXT6:
        if p + 8 > end:
            return -1, p
        length = (data[p + 1] + 1) * 8
        if p + length > end:
            return -1, p
        nh = data[p]
        p += length
    return nh, p


_Quote = tuple[int, bytes, bytes, int, int | None, int | None, int | None, bytes | None]


def parse_quote(data: bytes, q: int, end: int, pc: bytes) -> _Quote | None:
    """The IP packet quoted by an ICMP error: (proto, src, dst, total length, sport, dport,
    ESP/AH SPI, IKE initiator SPI). ``proto`` is -1 when the quoted packet is not IPsec;
    None when not even the quoted IP header is there."""
    if q >= end:
        return None
    v = data[q] >> 4
    if v == 4:
        if q + 20 > end:
            return None
        vihl, qlen, fragw, proto, qsrc, qdst = IP4_HDR.unpack_from(data, q)
        u = q + (vihl & 15) * 4
        if fragw & 0x1FFF:  # a non-first fragment quotes no upper header
            u = end
    elif v == 6:
        if q + 40 > end:
            return None
        plen, proto, qsrc, qdst = IP6_HDR.unpack_from(data, q)
        qlen = 40 + plen
        proto, u = walk_ext6(data, proto, q + 40, end)
        if proto == FRAGMENT and u + 8 <= end:
            first = not (U16.unpack_from(data, u + 2)[0] & 0xFFF8)
            proto, u = walk_ext6(data, data[u], u + 8, end) if first else (data[u], end)
        if proto < 0:
            u = end
    else:
        return None
    sport = dport = spi = None
    ike_spi = None
    if proto == ESP:
        if u + 4 <= end:
            spi = U32.unpack_from(data, u)[0]
    elif proto == AH:
        if u + 8 <= end:
            spi = U32.unpack_from(data, u + 4)[0]
    elif proto == UDP:
        if u + 4 > end:
            return proto, qsrc, qdst, qlen, None, None, None, None
        sport, dport = struct.unpack_from("!HH", data, u)
        c = pc[sport] | pc[dport]
        if not c:
            return -1, qsrc, qdst, qlen, sport, dport, None, None
        b = u + 8
        if c & PORT_IKE:
            if b + 8 <= end:
                ike_spi = data[b : b + 8]
        elif b + 4 <= end:
            if data[b : b + 4] == ZERO4:
                if b + 12 <= end:
                    ike_spi = data[b + 4 : b + 12]
            else:
                spi = U32.unpack_from(data, b)[0]
    else:
        return -1, qsrc, qdst, qlen, None, None, None, None
    return proto, qsrc, qdst, qlen, sport, dport, spi, ike_spi
