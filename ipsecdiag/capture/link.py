"""Link layers: where the IP header starts in a captured frame.

Covers the link types IPsec captures come in (tcpdump.org LINKTYPE_* numbers): Ethernet with
stacked 802.1Q/802.1ad tags, PPPoE sessions and MPLS label stacks, Linux cooked captures (SLL
and SLL2), raw IP, and BSD loopback (DLT_NULL in the capturing host's byte order, DLT_LOOP in
network order).
"""

from __future__ import annotations

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_ALIASES = frozenset({101, 12, 14})  # LINKTYPE_RAW and the DLT_RAW values it replaced
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})  # 802.1Q, 802.1ad and pre-standard QinQ
ETH_PPPOE_SESSION = 0x8864
ETH_MPLS = frozenset({0x8847, 0x8848})
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057

# BSD address families in DLT_NULL/DLT_LOOP headers (AF_INET6 differs per BSD; 10 is Linux).
AF_INET = 2
AF_INET6 = frozenset({10, 24, 28, 30})

NOT_IP = "non-ip"

_unsupported: dict[int, str] = {}


def ip_offset(linktype: int, data: bytes) -> tuple[int, int, str]:
    """Locate the IP header.

    Returns ``(4 or 6, offset, "")`` for IP; ``(0, offset, layer)`` when the link header is
    cut short at ``offset`` (the caller decides between truncated and malformed);
    ``(-1, 0, reason)`` for frames that carry no IP ("non-ip", "unsupported-linktype-N").
    """
    n = len(data)
    if linktype == LINKTYPE_ETHERNET:
        if n < 14:
            return 0, 0, "ethernet"
        return _ethertype(data, 14, (data[12] << 8) | data[13])
    if linktype in LINKTYPE_RAW_ALIASES:
        return _by_version(data, 0)
    if linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            return 0, 0, "sll"
        return _ethertype(data, 16, (data[14] << 8) | data[15])
    if linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            return 0, 0, "sll2"
        return _ethertype(data, 20, (data[0] << 8) | data[1])
    if linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
        if n < 4:
            return 0, 0, "loopback"
        if linktype == LINKTYPE_LOOP or (data[0] == 0 and data[1] == 0):
            af = int.from_bytes(data[:4], "big")  # network order (LOOP) or a big-endian host
        else:
            af = int.from_bytes(data[:4], "little")
        if af == AF_INET:
            return 4, 4, ""
        if af in AF_INET6:
            return 6, 4, ""
        return -1, 0, NOT_IP
    if linktype == LINKTYPE_IPV4:
        return 4, 0, ""
    if linktype == LINKTYPE_IPV6:
        return 6, 0, ""
    reason = _unsupported.get(linktype)
    if reason is None:
        reason = _unsupported[linktype] = f"unsupported-linktype-{linktype}"
    return -1, 0, reason


def _ethertype(data: bytes, off: int, et: int) -> tuple[int, int, str]:
    """Everything after an EtherType: VLAN stacks, PPPoE, MPLS, then IP."""
    n = len(data)
    while et in ETH_VLAN:
        if n < off + 4:
            return 0, off, "vlan"
        et = (data[off + 2] << 8) | data[off + 3]
        off += 4
    if et == ETH_IPV4:
        return 4, off, ""
    if et == ETH_IPV6:
        return 6, off, ""
    if et == ETH_PPPOE_SESSION:
        # RFC 2516: a 6-byte header, then the PPP protocol number.
        if n < off + 8:
            return 0, off, "pppoe"
        ppp = (data[off + 6] << 8) | data[off + 7]
        if ppp == PPP_IPV4:
            return 4, off + 8, ""
        if ppp == PPP_IPV6:
            return 6, off + 8, ""
        return -1, 0, NOT_IP
    if et in ETH_MPLS:
        while True:  # label stack until bottom-of-stack, then the IP version nibble decides
            if n < off + 5:
                return 0, off, "mpls"
            bottom = data[off + 2] & 1
            off += 4
            if bottom:
                return _by_version(data, off)
    return -1, 0, NOT_IP


def _by_version(data: bytes, off: int) -> tuple[int, int, str]:
    if len(data) <= off:
        return 0, off, "ip"
    v = data[off] >> 4
    if v == 4 or v == 6:
        return v, off, ""
    return -1, 0, NOT_IP
