"""The capture filter of ``ipsecdiag live``: what ``analyze`` reads, in pcap filter syntax."""

from __future__ import annotations

from collections.abc import Iterable

ARPHRD_ETHER = 1


def default_filter(
    ike_ports: Iterable[int] = (500,), natt_ports: Iterable[int] = (4500,), *, vlan: bool = False
) -> str:
    """BPF for what ``analyze`` looks at: IKE and NAT-T (UDP, and RFC 8229 TCP on the NAT-T
    ports), ESP and AH over IPv4/IPv6 (behind IPv6 extension headers too), ICMP/ICMPv6 errors, and the non-first fragments of UDP
    datagrams: those carry no UDP header, so a port filter alone would lose the tail of every
    IP-fragmented IKE_AUTH. ``vlan`` repeats the expression behind an 802.1Q tag (Ethernet
    interfaces only; libpcap refuses ``vlan`` on cooked and raw-IP links)."""
    udp = sorted({*ike_ports, *natt_ports})
    parts = [f"udp port {p}" for p in udp] + [f"tcp port {p}" for p in sorted(set(natt_ports))]
    parts += ["ip proto 50", "ip proto 51", "ip6 proto 50", "ip6 proto 51", *_behind_ipv6_extensions(udp)]
    parts += [
        "(ip proto 17 and ip[6:2] & 0x1fff != 0)",  # IPv4 fragment with a non-zero offset
        "(ip6 and ip6[6] == 44 and ip6[40] == 17)",  # IPv6 fragment header in front of UDP
        "icmp[icmptype] == icmp-unreach",
        "icmp[icmptype] == icmp-timxceed",
        "icmp[icmptype] == icmp-paramprob",
        "(icmp6 and icmp6[icmp6type] < 128)",  # ICMPv6 errors are types 1-127
    ]
    expr = " or ".join(parts)
    return f"{expr} or (vlan and ({expr}))" if vlan else expr


# Hop-by-hop, routing and destination options: the IPv6 extension headers that may sit in front
# of ESP, AH or UDP (the fragment header, 44, has its own rule above).
_EXT = "(ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 60)"
_EXT2 = "(ip6[40] == 0 or ip6[40] == 43 or ip6[40] == 60)"
_AFTER1 = "40 + (ip6[41] + 1) * 8"  # where the header after the first extension starts


def _behind_ipv6_extensions(udp_ports: list[int]) -> list[str]:
    """ESP and AH behind one or two IPv6 extension headers, IKE/NAT-T behind one.

    ``ip6 proto 50`` reads only the fixed header's Next Header. ``ip6 protochain 50`` walks the
    whole chain, but with a backward jump that the Linux kernel refuses (libpcap then filters
    every packet in user space) and that libpcap refuses behind VLAN tags; two unrolled levels
    cover the chains seen in practice (hop-by-hop, then destination options) and stay in the
    kernel."""
    ipsec1 = "(ip6[40] == 50 or ip6[40] == 51)"
    second = f"ip6[{_AFTER1}]"
    ipsec2 = f"({second} == 50 or {second} == 51)"
    ports = " or ".join(f"ip6[{_AFTER1} + 2:2] == {p}" for p in udp_ports)
    return [
        f"(ip6 and {_EXT} and ({ipsec1} or ({_EXT2} and {ipsec2})))",
        f"(ip6 and {_EXT} and ip6[40] == 17 and ({ports}))",
    ]


def build_filter(
    interface: str,
    ike_ports: Iterable[int] = (500,),
    natt_ports: Iterable[int] = (4500,),
    extra: str | None = None,
) -> str:
    """The default filter for ``interface``, narrowed by the user's ``extra`` expression
    (``--filter "host 192.0.2.1"`` keeps only that peer's IPsec traffic)."""
    base = default_filter(ike_ports, natt_ports, vlan=_is_ethernet(interface))
    return f"({base}) and ({extra})" if extra and extra.strip() else base


def arphrd(interface: str) -> int | None:
    """The interface's ARPHRD_* hardware type (``/sys/class/net``; ``ip netns exec`` mounts the
    namespace's own), None when unknown."""
    try:
        with open(f"/sys/class/net/{interface}/type") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _is_ethernet(interface: str) -> bool:
    return arphrd(interface) == ARPHRD_ETHER


# ARPHRD_* -> LINKTYPE_*: Ethernet and the loopback (which carries Ethernet headers on Linux),
# IP-only devices (tun, ipsec0, WireGuard) give raw IP.
LINKTYPE_OF_ARPHRD = {ARPHRD_ETHER: 1, 772: 1, 65534: 101, 776: 101, 778: 101}



