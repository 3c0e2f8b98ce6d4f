"""IKEv2 Traffic Selector payloads TSi/TSr (RFC 7296 §3.13) and their display."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar

from .buffer import Buffer, Writer
from .errors import MalformedMessage
from .ikev2_payloads import printable_text
from .registry import IpProto, PayloadType, TsType, name_of

_ADDR_LEN = {TsType.TS_IPV4_ADDR_RANGE: 4, TsType.TS_IPV6_ADDR_RANGE: 16}


@dataclass(frozen=True)
class TrafficSelector:
    """One selector (RFC 7296 §3.13.1).

    Address-range types fill ports and addresses. Other types (TS_SECLABEL of RFC 9478,
    TS_FC_ADDR_RANGE, unassigned) keep the bytes after the 4-byte selector header in ``data``
    and the second header byte (IP protocol / reserved) in ``ip_protocol``.
    """

    ts_type: int
    ip_protocol: int = 0
    start_port: int = 0
    end_port: int = 0xFFFF
    start_addr: bytes = b""
    end_addr: bytes = b""
    data: bytes = b""

    @property
    def is_ip_range(self) -> bool:
        return self.ts_type in _ADDR_LEN

    def display(self) -> str:
        """``10.99.10.0/24``, ``10.0.0.1-10.0.0.5[tcp/80]``, strongSwan's bracket notation."""
        if not self.is_ip_range:
            if self.ts_type == TsType.TS_SECLABEL:
                label = printable_text(self.data.rstrip(b"\x00"))
                return f"seclabel:{label if label is not None else self.data.hex()}"
            return f"{name_of(TsType, self.ts_type)}:{self.data.hex()}"
        return self.address_text() + self._proto_port_text()

    def address_text(self) -> str:
        """The range as CIDR when it is one, else ``start-end`` (hex for odd address sizes)."""
        if len(self.start_addr) != len(self.end_addr) or len(self.start_addr) not in (4, 16):
            return f"{self.start_addr.hex()}-{self.end_addr.hex()}"
        start, end = ipaddress.ip_address(self.start_addr), ipaddress.ip_address(self.end_addr)
        if start <= end:
            nets = list(ipaddress.summarize_address_range(start, end))
            if len(nets) == 1:
                return str(nets[0])
        return f"{start}-{end}"

    def _proto_port_text(self) -> str:
        if self.ip_protocol == 0 and (self.start_port, self.end_port) == (0, 0xFFFF):
            return ""
        proto = _proto_name(self.ip_protocol)
        if (self.start_port, self.end_port) == (0, 0xFFFF):
            return f"[{proto}]"
        if (self.start_port, self.end_port) == (0xFFFF, 0):
            return f"[{proto}/OPAQUE]"  # RFC 7296 §3.13.1: ports opaque (e.g. fragments)
        if self.start_port == self.end_port:
            return f"[{proto}/{self.start_port}]"
        return f"[{proto}/{self.start_port}-{self.end_port}]"


def _proto_name(proto: int) -> str:
    try:
        return IpProto(proto).name.lower()
    except ValueError:
        return str(proto)


@dataclass(frozen=True)
class TsPayload:
    """TSi or TSr (RFC 7296 §3.13); ``which`` is the payload type."""

    TYPES: ClassVar[tuple[PayloadType, ...]] = (PayloadType.TSi, PayloadType.TSr)
    which: int
    selectors: tuple[TrafficSelector, ...]
    critical: bool = False

    @property
    def payload_type(self) -> int:
        return self.which

    def display(self) -> str:
        return ", ".join(s.display() for s in self.selectors)


def pull_ts_body(buf: Buffer, which: int, critical: bool = False) -> TsPayload:
    name = name_of(PayloadType, which)
    count_offset = buf.offset()
    count = buf.pull_uint8(f"{name}.ts count")
    buf.skip(3, f"{name}.reserved")
    selectors: list[TrafficSelector] = []
    while not buf.eof():
        ctx = f"{name}.selector[{len(selectors) + 1}]"
        start = buf.offset()
        ts_type = buf.pull_uint8(f"{ctx}.type")
        proto = buf.pull_uint8(f"{ctx}.ip protocol")
        length = buf.pull_uint16(f"{ctx}.length")
        if length < 4:
            raise MalformedMessage(start + 2, f"{ctx}.length", f"{length} is shorter than the 4-byte header")
        body = buf.sub(length - 4, f"{ctx}.length")
        addr_len = _ADDR_LEN.get(ts_type)
        if addr_len is None:
            selectors.append(TrafficSelector(ts_type, proto, data=body.pull_rest()))
            continue
        if length != 8 + 2 * addr_len:
            raise MalformedMessage(start + 2, f"{ctx}.length", f"{length} for {name_of(TsType, ts_type)}")
        sport = body.pull_uint16(f"{ctx}.start port")
        eport = body.pull_uint16(f"{ctx}.end port")
        saddr = body.pull_bytes(addr_len, f"{ctx}.start address")
        eaddr = body.pull_bytes(addr_len, f"{ctx}.end address")
        selectors.append(TrafficSelector(ts_type, proto, sport, eport, saddr, eaddr))
    if count != len(selectors):
        raise MalformedMessage(
            count_offset, f"{name}.ts count", f"says {count}, the payload holds {len(selectors)}"
        )
    return TsPayload(which, tuple(selectors), critical)


def push_ts_body(w: Writer, p: TsPayload) -> None:
    if len(p.selectors) > 255:
        raise ValueError("more than 255 traffic selectors")
    w.push_uint8(len(p.selectors))
    w.push_bytes(b"\x00\x00\x00")
    for s in p.selectors:
        addr_len = _ADDR_LEN.get(s.ts_type)
        w.push_uint8(s.ts_type)
        w.push_uint8(s.ip_protocol)
        if addr_len is None:
            if len(s.data) > 0xFFFF - 4:
                raise ValueError("traffic selector data too long")
            w.push_uint16(4 + len(s.data))
            w.push_bytes(s.data)
            continue
        if len(s.start_addr) != addr_len or len(s.end_addr) != addr_len or s.data:
            raise ValueError(f"{name_of(TsType, s.ts_type)} needs {addr_len}-byte addresses and no data")
        w.push_uint16(8 + 2 * addr_len)
        w.push_uint16(s.start_port)
        w.push_uint16(s.end_port)
        w.push_bytes(s.start_addr)
        w.push_bytes(s.end_addr)
