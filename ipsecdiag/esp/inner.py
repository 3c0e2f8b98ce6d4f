"""Inner packets for the data-plane probes: IPv4/IPv6 headers and ICMP echo, built and parsed.

Only what ``probe connect --ping`` and ``probe mtu`` put inside a CHILD SA: an ICMP (or
ICMPv6) echo request of an exact total size, optionally with DF, and the parsing of what comes
back (an echo reply, or an ICMP error such as "fragmentation needed" from a router inside the
tunnel, RFC 1191 / RFC 8201). Checksums per RFC 1071; ICMPv6 over the RFC 8200 §8.1
pseudo-header. Pure functions over bytes: no sockets, nothing random (identifiers come in).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ..wire.registry import IpProto

IPV4_HEADER = 20
IPV6_HEADER = 40
ICMP_HEADER = 8
ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY, ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED = 8, 0, 3, 11
ICMP6_TOO_BIG, ICMP6_UNREACHABLE, ICMP6_TIME_EXCEEDED = 2, 1, 3
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129
_FRAG_NEEDED = 4  # ICMPv4 destination unreachable code (RFC 1191 §4)
_DF = 0x4000

_V4 = struct.Struct("!BBHHHBBH4s4s")
_V6 = struct.Struct("!IHBB16s16s")
_ICMP = struct.Struct("!BBHHH")


def internet_checksum(data: bytes) -> int:
    """RFC 1071: the one's complement of the one's complement sum of 16-bit words."""
    if len(data) & 1:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_header(src: str, dst: str, proto: int, payload_len: int, *, ident: int = 0, ttl: int = 64, df: bool = False) -> bytes:
    """A 20-byte IPv4 header (no options) with its checksum."""
    total = IPV4_HEADER + payload_len
    if total > 0xFFFF:
        raise ValueError(f"IPv4 packet of {total} bytes exceeds 65535")
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    hdr = _V4.pack(0x45, 0, total, ident & 0xFFFF, _DF if df else 0, ttl, proto, 0, s, d)
    return hdr[:10] + struct.pack("!H", internet_checksum(hdr)) + hdr[12:]


def ipv6_header(src: str, dst: str, next_header: int, payload_len: int, *, hop_limit: int = 64) -> bytes:
    """A 40-byte IPv6 header (IPv6 has no DF: routers never fragment, RFC 8200 §5)."""
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    return _V6.pack(6 << 28, payload_len, next_header, hop_limit, s, d)


def _icmp6_checksum(src: bytes, dst: bytes, icmp: bytes) -> int:
    # RFC 8200 §8.1 pseudo-header: addresses, upper-layer length, zero, next header 58
    pseudo = src + dst + struct.pack("!I3xB", len(icmp), int(IpProto.ICMPV6))
    return internet_checksum(pseudo + icmp)


def echo_request(src: str, dst: str, *, ident: int, seq: int, size: int, df: bool = True, ip_ident: int = 0) -> bytes:
    """An ICMP(v6) echo request whose whole IP packet is ``size`` bytes (header included).

    The payload is a recognisable pattern (``seq`` and then a counter) so that a truncated or
    corrupted reply does not pass as a good one. ``df`` sets IPv4's Don't Fragment bit.
    """
    v6 = ipaddress.ip_address(src).version == 6
    hdr_len = IPV6_HEADER if v6 else IPV4_HEADER
    data_len = size - hdr_len - ICMP_HEADER
    if data_len < 0:
        raise ValueError(f"an echo request needs at least {hdr_len + ICMP_HEADER} bytes, not {size}")
    data = bytes((seq + i) & 0xFF for i in range(data_len))
    kind = ICMP6_ECHO_REQUEST if v6 else ICMP_ECHO_REQUEST
    icmp = _ICMP.pack(kind, 0, 0, ident & 0xFFFF, seq & 0xFFFF) + data
    if v6:
        s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
        icmp = icmp[:2] + struct.pack("!H", _icmp6_checksum(s, d, icmp)) + icmp[4:]
        return ipv6_header(src, dst, int(IpProto.ICMPV6), len(icmp)) + icmp
    icmp = icmp[:2] + struct.pack("!H", internet_checksum(icmp)) + icmp[4:]
    return ipv4_header(src, dst, int(IpProto.ICMP), len(icmp), ident=ip_ident, df=df) + icmp


@dataclass(frozen=True)
class IcmpMessage:
    """An ICMP message out of an inner packet: an echo reply, or an error about one of ours.

    ``ident``/``seq`` are the echo's (for an error: of the echo request quoted in it, when it
    quotes one); ``mtu`` is the next-hop MTU of a "fragmentation needed" / "packet too big".
    """

    src: str
    dst: str
    icmp_type: int
    code: int
    ident: int
    seq: int
    size: int  # the whole inner IP packet
    checksum_ok: bool
    is_reply: bool
    mtu: int | None = None

    @property
    def describe(self) -> str:
        if self.is_reply:
            return f"echo reply from {self.src}"
        if self.mtu is not None:
            return f"{self.src}: packet too big, next-hop MTU {self.mtu}"
        return f"{self.src}: ICMP type {self.icmp_type} code {self.code}"


def parse_icmp(packet: bytes) -> IcmpMessage | None:
    """The ICMP message in an inner IPv4/IPv6 packet, or None for anything else (no raise)."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4 and len(packet) >= IPV4_HEADER:
        ihl = (packet[0] & 0x0F) * 4
        total = struct.unpack_from("!H", packet, 2)[0]
        if packet[9] != IpProto.ICMP or ihl < IPV4_HEADER or total > len(packet) or total < ihl + ICMP_HEADER:
            return None
        src, dst = str(ipaddress.IPv4Address(packet[12:16])), str(ipaddress.IPv4Address(packet[16:20]))
        icmp = packet[ihl:total]
        ok = internet_checksum(icmp) == 0
        reply_type, error_types = ICMP_ECHO_REPLY, (ICMP_UNREACHABLE, ICMP_TIME_EXCEEDED)
    elif version == 6 and len(packet) >= IPV6_HEADER:
        plen = struct.unpack_from("!H", packet, 4)[0]
        if packet[6] != IpProto.ICMPV6 or IPV6_HEADER + plen > len(packet) or plen < ICMP_HEADER:
            return None  # extension headers before ICMPv6 are not expected from an echo responder
        src, dst = str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40]))
        icmp = packet[IPV6_HEADER : IPV6_HEADER + plen]
        ok = _icmp6_checksum(packet[8:24], packet[24:40], icmp) == 0
        reply_type, error_types = ICMP6_ECHO_REPLY, (ICMP6_TOO_BIG, ICMP6_UNREACHABLE, ICMP6_TIME_EXCEEDED)
    else:
        return None
    kind, code, _ck, ident, seq = _ICMP.unpack_from(icmp)
    size = len(icmp) + (len(packet) - len(icmp) if version == 6 else ihl)
    if kind == reply_type:
        return IcmpMessage(src, dst, kind, code, ident, seq, size, ok, True)
    if kind not in error_types:
        return None
    mtu = None
    if version == 4 and kind == ICMP_UNREACHABLE and code == _FRAG_NEEDED:
        mtu = seq  # RFC 1191 §4: the low 16 bits of the second word are the next-hop MTU
    elif version == 6 and kind == ICMP6_TOO_BIG:
        mtu = (ident << 16) | seq
    # the quoted packet: our echo request's header, whose ident/seq say which probe it was
    quoted = parse_quoted_echo(icmp[ICMP_HEADER:])
    q_ident, q_seq = quoted if quoted else (-1, -1)
    return IcmpMessage(src, dst, kind, code, q_ident, q_seq, size, ok, False, mtu)


def parse_quoted_echo(quoted: bytes) -> tuple[int, int] | None:
    """(ident, seq) of the echo request an ICMP error quotes, when the quote reaches that far."""
    if not quoted:
        return None
    if quoted[0] >> 4 == 4:
        ihl = (quoted[0] & 0x0F) * 4
        off, want = ihl, ICMP_ECHO_REQUEST
    elif quoted[0] >> 4 == 6:
        off, want = IPV6_HEADER, ICMP6_ECHO_REQUEST
    else:
        return None
    if len(quoted) < off + ICMP_HEADER or quoted[off] != want:
        return None
    ident, seq = struct.unpack_from("!HH", quoted, off + 4)
    return ident, seq


def echo_reply(request: bytes) -> bytes | None:
    """The echo reply a host sends for an ICMP(v6) echo request (None for anything else).

    Addresses swapped, type 0 (129), identifier, sequence number and data kept (RFC 792,
    RFC 4443 §4.2); IPv4 keeps the request's DF bit, as Linux does.
    """
    v = ip_version(request)
    if v == 4 and len(request) >= IPV4_HEADER + ICMP_HEADER:
        ihl = (request[0] & 0x0F) * 4
        total = struct.unpack_from("!H", request, 2)[0]
        if request[9] != IpProto.ICMP or total > len(request) or request[ihl] != ICMP_ECHO_REQUEST:
            return None
        src, dst = str(ipaddress.IPv4Address(request[16:20])), str(ipaddress.IPv4Address(request[12:16]))
        icmp = bytes((ICMP_ECHO_REPLY, 0, 0, 0)) + request[ihl + 4 : total]
        icmp = icmp[:2] + struct.pack("!H", internet_checksum(icmp)) + icmp[4:]
        df = bool(struct.unpack_from("!H", request, 6)[0] & _DF)
        ident = struct.unpack_from("!H", request, 4)[0]
        return ipv4_header(src, dst, int(IpProto.ICMP), len(icmp), ident=ident, df=df) + icmp
    if v == 6 and len(request) >= IPV6_HEADER + ICMP_HEADER:
        plen = struct.unpack_from("!H", request, 4)[0]
        if request[6] != IpProto.ICMPV6 or IPV6_HEADER + plen > len(request) or request[IPV6_HEADER] != ICMP6_ECHO_REQUEST:
            return None
        s, d = request[24:40], request[8:24]
        icmp = bytes((ICMP6_ECHO_REPLY, 0, 0, 0)) + request[IPV6_HEADER + 4 : IPV6_HEADER + plen]
        icmp = icmp[:2] + struct.pack("!H", _icmp6_checksum(s, d, icmp)) + icmp[4:]
        return ipv6_header(str(ipaddress.IPv6Address(s)), str(ipaddress.IPv6Address(d)), int(IpProto.ICMPV6), len(icmp)) + icmp
    return None


def ip_version(packet: bytes) -> int:
    """4 or 6 from the first nibble (0 for anything else)."""
    v = packet[0] >> 4 if packet else 0
    return v if v in (4, 6) else 0


__all__ = [
    "ICMP_HEADER",
    "IPV4_HEADER",
    "IPV6_HEADER",
    "IcmpMessage",
    "echo_reply",
    "echo_request",
    "internet_checksum",
    "ip_version",
    "ipv4_header",
    "ipv6_header",
    "parse_icmp",
    "parse_quoted_echo",
]
