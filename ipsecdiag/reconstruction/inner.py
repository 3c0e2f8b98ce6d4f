"""The inner protocol mix of decrypted ESP: a cheap integer code counted per packet on the hot
path (by the in-process decryptor and by the worker pool alike), named once for the report.

Kept in the reconstruction stage because the flows own the counts: the decryptors produce the
codes, the reconstructor turns them into names and the TCP MSS values the MTU check reads.
"""

from __future__ import annotations

_INNER_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 47: "GRE", 50: "ESP", 132: "SCTP"}


SYN_CODE = 0x40000000  # inner_code flag: a TCP SYN, with the IPv6 bit (1 << 16) and the MSS below


def inner_code(nh: int, payload: bytes) -> int:
    """Cheap per-packet key for the inner protocol mix: the next header, and for an inner IP
    packet (tunnel mode) also the protocol it carries (``nh << 8 | proto``). A TCP SYN with an
    MSS option gets ``SYN_CODE | v6 << 16 | mss`` so the MTU check can compare the MSS the
    endpoints announce with what the tunnel carries."""
    if nh == 4:
        if len(payload) <= 9:
            return 0x400
        proto = payload[9]
        if proto == 6:
            return _syn_code(payload, (payload[0] & 15) * 4, 0) or 0x406
        return 0x400 | proto
    if nh == 41:
        if len(payload) <= 6:
            return 0x2900
        if payload[6] == 6:
            return _syn_code(payload, 40, 1 << 16) or 0x2906
        return 0x2900 | payload[6]
    return nh


def _syn_code(p: bytes, tcp: int, v6: int) -> int:
    """``SYN_CODE | v6 | mss`` for a SYN carrying an MSS option (RFC 9293 §3.7.1), else 0."""
    if len(p) < tcp + 20 or not p[tcp + 13] & 0x02:
        return 0
    end = min(len(p), tcp + (p[tcp + 12] >> 4) * 4)
    i = tcp + 20
    while i < end:
        kind = p[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or p[i + 1] < 2:
            break
        if kind == 2 and p[i + 1] == 4 and i + 4 <= end:
            return SYN_CODE | v6 | int.from_bytes(p[i + 2 : i + 4], "big")
        i += p[i + 1]
    return 0


def inner_name(code: int) -> str:
    """Display name for an :func:`inner_code`."""
    if code & SYN_CODE:
        return "IPv6/TCP" if code & (1 << 16) else "IPv4/TCP"
    if code >= 0x100:
        family = "IPv4" if code >> 8 == 4 else "IPv6"
        proto = code & 0xFF
        return f"{family}/{_INNER_NAMES.get(proto, str(proto))}"
    if code == 59:
        return "dummy"
    return _INNER_NAMES.get(code, f"proto-{code}")
