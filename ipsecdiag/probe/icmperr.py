"""ICMP errors about our own UDP datagrams, read from the socket error queue (Linux).

With ``IP_RECVERR``/``IPV6_RECVERR`` set, the kernel queues every ICMP error that quotes a
datagram we sent (port unreachable, host unreachable, fragmentation needed, administratively
prohibited) on the sending socket, with the ICMP sender's address; ``recvmsg(...,
MSG_ERRQUEUE)`` reads them (ip(7), "IP_RECVERR"). Without the option an unconnected UDP socket
never hears of them, and "nobody listens on UDP 500" would look like silence.

Best effort: where the option or the queue is unavailable the probe just times out as before.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

IP_RECVERR = 11  # linux/in.h
IPV6_RECVERR = 25  # linux/in6.h
_SO_EE_ORIGIN_LOCAL, _SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6 = 1, 2, 3
# struct sock_extended_err: ee_errno, ee_origin, ee_type, ee_code, ee_pad, ee_info, ee_data
_EE = struct.Struct("=IBBBBII")
_MAX_READS = 16

_ICMP4 = {
    (3, 0): "network unreachable",
    (3, 1): "host unreachable",
    (3, 2): "protocol unreachable",
    (3, 3): "port unreachable",
    (3, 4): "fragmentation needed",
    (3, 9): "network administratively prohibited",
    (3, 10): "host administratively prohibited",
    (3, 13): "communication administratively prohibited",
    (11, 0): "TTL exceeded in transit",
}
_ICMP6 = {
    (1, 0): "no route to destination",
    (1, 1): "communication administratively prohibited",
    (1, 3): "address unreachable",
    (1, 4): "port unreachable",
    (2, 0): "packet too big",
    (3, 0): "hop limit exceeded in transit",
}


@dataclass(frozen=True)
class IcmpError:
    """One ICMP error about a datagram we sent to ``dst``; ``offender`` sent the ICMP."""

    dst: tuple[str, int]
    offender: str
    what: str
    mtu: int | None = None  # fragmentation needed / packet too big
    icmp_type: int = 0
    code: int = 0
    v6: bool = False
    quoted: bytes = b""  # the start of our UDP payload, as the ICMP quoted it

    def text(self) -> str:
        mtu = f" (next-hop MTU {self.mtu})" if self.mtu else ""
        return f"ICMP {self.what}{mtu} from {self.offender} for our datagram to {self.dst[0]}:{self.dst[1]}"


def enable(sock: socket.socket) -> bool:
    """Ask the kernel to queue ICMP errors on ``sock``; False where it cannot."""
    v6 = sock.family == socket.AF_INET6
    try:
        sock.setsockopt(socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP, IPV6_RECVERR if v6 else IP_RECVERR, 1)
    except OSError:
        return False
    return True


def _offender(raw: bytes) -> str:
    if len(raw) >= 8 and int.from_bytes(raw[:2], "little") == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if len(raw) >= 24 and int.from_bytes(raw[:2], "little") == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return "?"


def parse(cmsg_data: bytes, dst: tuple[str, int], quoted: bytes = b"") -> IcmpError | None:
    """The error of one ``IP_RECVERR``/``IPV6_RECVERR`` control message (None: not ICMP)."""
    if len(cmsg_data) < _EE.size:
        return None
    _errno, origin, icmp_type, code, _pad, info, _data = _EE.unpack_from(cmsg_data)
    if origin not in (_SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6):
        return None  # a local error (e.g. EMSGSIZE): the send already said so
    v6 = origin == _SO_EE_ORIGIN_ICMP6
    what = (_ICMP6 if v6 else _ICMP4).get((icmp_type, code), f"type {icmp_type} code {code}")
    too_big = (icmp_type, code) == ((2, 0) if v6 else (3, 4))
    mtu = info if too_big and info else None
    return IcmpError(dst, _offender(cmsg_data[_EE.size :]), what, mtu, icmp_type, code, v6, quoted[:64])


def drain(sock: socket.socket) -> list[IcmpError]:
    """Read the socket's error queue (bounded); ICMP errors in arrival order."""
    out: list[IcmpError] = []
    for _ in range(_MAX_READS):
        try:
            payload, ancdata, _flags, addr = sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        dst = (str(addr[0]), int(addr[1])) if isinstance(addr, tuple) else ("?", 0)
        for level, kind, data in ancdata:
            if (level, kind) in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)):
                err = parse(data, dst, payload)
                if err is not None:
                    out.append(err)
    return out


def error_packet(err: IcmpError, local: tuple[str, int]) -> bytes | None:
    """The ICMP error as it arrived on the wire, rebuilt for the session's pcapng (IPv4 only):
    offender -> us, quoting our IP/UDP header and the start of our datagram (RFC 792), so that
    ``analyze`` and Wireshark of the --write file see why the request went unanswered."""
    if err.v6 or ":" in local[0] or ":" in err.dst[0] or err.offender == "?":
        return None
    from ipsecdiag.esp.inner import internet_checksum
    from ipsecdiag.probe.record import ip_udp_packet

    inner = ip_udp_packet(local, err.dst, err.quoted)[: 28 + min(len(err.quoted), 64)]
    rest = (err.mtu or 0) & 0xFFFF  # next-hop MTU in the low 16 bits (RFC 1191)
    icmp = struct.pack("!BBHI", err.icmp_type, err.code, 0, rest) + inner
    icmp = icmp[:2] + internet_checksum(icmp).to_bytes(2, "big") + icmp[4:]
    src, dst = socket.inet_aton(err.offender), socket.inet_aton(local[0])
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0, src, dst)
    hdr = hdr[:10] + internet_checksum(hdr).to_bytes(2, "big") + hdr[12:]
    return hdr + icmp


__all__ = ["IcmpError", "drain", "enable", "error_packet", "parse"]
