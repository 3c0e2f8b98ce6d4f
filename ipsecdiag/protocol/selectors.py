"""Traffic-selector algebra (RFC 7296 §2.9, §3.13.1; IKEv1 client IDs, RFC 2407 §4.6.2).

A :class:`Sel` is one selector as an inclusive address interval (integers), an IP protocol
(0 = any) and an inclusive port range. Intersection and "what part of a requested selector
does an accepted set leave out" are what a responder computes when it narrows, and what the
analyser needs to explain a TS_UNACCEPTABLE or a narrowed CHILD SA.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ..wire.ikev1_payloads import V1IdPayload
from ..wire.ikev2_ts import TrafficSelector
from ..wire.registry import IpProto, V1IdType, name_of

ANY_PORTS = (0, 0xFFFF)


@dataclass(frozen=True)
class Sel:
    """One selector: an inclusive address interval (as ints), a protocol and a port range."""

    version: int
    start: int
    end: int
    proto: int = 0
    sport: int = 0
    eport: int = 0xFFFF

    @property
    def is_any(self) -> bool:
        top = (1 << (32 if self.version == 4 else 128)) - 1
        return self.start == 0 and self.end == top and self.proto == 0 and (self.sport, self.eport) == ANY_PORTS

    def text(self) -> str:
        """``10.1.0.0/16``, ``10.0.0.1-10.0.0.9[tcp/443]``, ``::/0[udp]``."""
        return range_text(self.version, self.start, self.end) + _pp_text(self.proto, self.sport, self.eport)

    def with_range(self, start: int, end: int) -> Sel:
        return Sel(self.version, start, end, self.proto, self.sport, self.eport)


def _addr(version: int, value: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def range_text(version: int, start: int, end: int) -> str:
    """An address interval as one CIDR block when it is one, else ``first-last``."""
    a, b = _addr(version, start), _addr(version, end)
    nets = list(ipaddress.summarize_address_range(a, b))  # type: ignore[misc]
    return str(nets[0]) if len(nets) == 1 else f"{a}-{b}"


def _pp_text(proto: int, sport: int, eport: int) -> str:
    if proto == 0 and (sport, eport) == ANY_PORTS:
        return ""
    pname = name_of(IpProto, proto).lower() if proto else "any"
    if (sport, eport) == ANY_PORTS:
        return f"[{pname}]"
    return f"[{pname}/{sport if sport == eport else f'{sport}-{eport}'}]"


def sel_from_ts(ts: TrafficSelector) -> Sel | None:
    """An IKEv2 address-range selector as a :class:`Sel` (None for other TS types)."""
    if not ts.is_ip_range:
        return None
    version = 4 if len(ts.start_addr) == 4 else 6
    return Sel(
        version,
        int.from_bytes(ts.start_addr, "big"),
        int.from_bytes(ts.end_addr, "big"),
        ts.ip_protocol,
        ts.start_port,
        ts.end_port,
    )


def sel_from_v1_id(p: V1IdPayload) -> Sel | None:
    """IKEv1 Quick Mode client IDs (RFC 2407 §4.6.2): address, subnet or range."""
    d, t = p.data, p.id_type
    port = (p.port, p.port) if p.port else ANY_PORTS
    if t in (V1IdType.ID_IPV4_ADDR, V1IdType.ID_IPV6_ADDR):
        v = 4 if len(d) == 4 else 6
        x = int.from_bytes(d, "big")
        return Sel(v, x, x, p.protocol_id, *port)
    if t in (V1IdType.ID_IPV4_ADDR_SUBNET, V1IdType.ID_IPV6_ADDR_SUBNET) and len(d) in (8, 32):
        half = len(d) // 2
        v = 4 if half == 4 else 6
        addr, mask = int.from_bytes(d[:half], "big"), int.from_bytes(d[half:], "big")
        top = (1 << (half * 8)) - 1
        return Sel(v, addr & mask, (addr & mask) | (top ^ mask), p.protocol_id, *port)
    if t in (V1IdType.ID_IPV4_ADDR_RANGE, V1IdType.ID_IPV6_ADDR_RANGE) and len(d) in (8, 32):
        half = len(d) // 2
        return Sel(
            4 if half == 4 else 6,
            int.from_bytes(d[:half], "big"),
            int.from_bytes(d[half:], "big"),
            p.protocol_id,
            *port,
        )
    return None


def intersect(a: Sel, b: Sel) -> Sel | None:
    """The selector both ``a`` and ``b`` cover (protocol 0 matches any), or None."""
    if a.version != b.version or a.proto and b.proto and a.proto != b.proto:
        return None
    start, end = max(a.start, b.start), min(a.end, b.end)
    sport, eport = max(a.sport, b.sport), min(a.eport, b.eport)
    if start > end or sport > eport:
        return None
    return Sel(a.version, start, end, a.proto or b.proto, sport, eport)


def uncovered(requested: Sel, accepted: Iterable[Sel]) -> list[Sel]:
    """Parts of ``requested`` (by address) that no compatible accepted selector covers."""
    spans = sorted(
        (s.start, s.end)
        for s in accepted
        if s.version == requested.version
        and s.proto in (0, requested.proto)
        and s.sport <= requested.sport
        and s.eport >= requested.eport
    )
    out: list[Sel] = []
    cur = requested.start
    for start, end in spans:
        if end < cur:
            continue
        if start > requested.end:
            break
        if start > cur:
            out.append(requested.with_range(cur, start - 1))
        cur = max(cur, end + 1)
        if cur > requested.end:
            break
    if cur <= requested.end:
        out.append(requested.with_range(cur, requested.end))
    return out


def texts(sels: Iterable[Sel]) -> str:
    """Selectors for a sentence: ``10.0.0.0/24, 10.1.0.0/24`` (``none`` when empty)."""
    return ", ".join(s.text() for s in sels) or "none"


def config_text(sels: Iterable[Sel]) -> str:
    """Selectors as a ``local_ts``/``remote_ts`` (or ``leftsubnet``) value, duplicates dropped."""
    return ",".join(dict.fromkeys(s.text() for s in sels)) or "..."
