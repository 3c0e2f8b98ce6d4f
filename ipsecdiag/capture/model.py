"""What the capture layer hands to analysis: frames in, IPsec datagrams out.

The hot path (ESP) uses plain method calls with scalar arguments instead of objects, so a
1M-packet capture does not allocate a Python object per packet. Rare events (IKE messages,
ICMP errors, fragment groups) are frozen dataclasses.

Addresses on the ESP path are packed bytes (4 or 16 octets) and are only turned into text
when a report is rendered; everywhere else they are text (``ipaddress`` compressed form).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class CaptureError(Exception):
    """The input is not a readable capture (exit code 2, one line on stderr)."""




@dataclass(frozen=True)
class IkeDatagram:
    """One IKE message as it left the UDP (or RFC 8229 TCP) layer.

    ``data`` starts at the IKE header (the 4-byte non-ESP marker on port 4500 is stripped).
    ``frames`` lists every frame that carried it (all IP fragments, ascending); ``frame`` is
    the last one (where it was complete). ``ip_len`` is the size of the IP datagram
    (header + UDP + IKE) before fragmentation, ``ip_fragments`` how many IP fragments carried it
    (1 = not fragmented).
    """

    frame: int
    frames: tuple[int, ...]
    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    data: bytes
    transport: str = "udp"  # "udp" | "tcp" (RFC 8229)
    non_esp_marker: bool = False
    ip_len: int = 0
    ip_fragments: int = 1
    ip_version: int = 4


@dataclass(frozen=True)
class IcmpError:
    """An ICMP/ICMPv6 error quoting (part of) an IPsec packet.

    ``kind`` is one of "frag-needed" (ICMPv4 3/4), "packet-too-big" (ICMPv6 2),
    "unreachable", "time-exceeded", "other"; ``mtu`` is set for the first two.
    ``quoted_*`` describe the quoted packet: protocol 50/51/17, addresses, ports, and the ESP
    SPI or IKE SPIs when the quote is long enough.
    """

    frame: int
    ts: float
    src: str  # who sent the ICMP error
    dst: str
    icmp_type: int
    icmp_code: int
    kind: str
    mtu: int | None
    quoted_proto: int
    quoted_src: str
    quoted_dst: str
    quoted_sport: int | None = None
    quoted_dport: int | None = None
    quoted_spi: int | None = None  # ESP/AH SPI
    quoted_ike_spi_i: bytes | None = None
    quoted_len: int = 0  # total length field of the quoted IP header


@dataclass(frozen=True)
class FragmentGroup:
    """An IP datagram that travelled in fragments, reported once it completes or expires.

    ``complete`` is False when fragments were missing when the buffer timed out, was evicted,
    or the capture ended. ``proto`` is the upper-layer protocol (from the first fragment when
    seen, else -1); ``sport``/``dport`` are known only when the first fragment was seen.
    """

    first_frame: int
    frames: tuple[int, ...]
    ts_first: float
    ts_last: float
    src: str
    dst: str
    ident: int
    proto: int
    complete: bool
    total_len: int | None  # reassembled IP payload length when the last fragment was seen
    bytes_seen: int
    sport: int | None = None
    dport: int | None = None
    reason: str = ""  # why incomplete: "timeout" | "evicted" | "end-of-capture" | "overlap"


class Sink(Protocol):
    """What the decoder calls. ``capture.decode.Decoder`` drives it; analysis implements it."""

    def on_ike(self, msg: IkeDatagram) -> None: ...

    def on_esp(
        self,
        frame: int,
        ts: float,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        data: bytes,
        off: int,
        end: int,
    ) -> None:
        """``data[off:end]`` is the ESP packet starting at the SPI. ``sport``/``dport`` are 0
        for plain ESP (IP protocol 50) and the UDP ports for RFC 3948 ESP-in-UDP (or TCP 8229)."""

    def on_ah(self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, off: int, end: int) -> None:
        """``data[off:end]`` is the AH header and what follows (RFC 4302)."""

    def on_keepalive(self, frame: int, ts: float, src: str, dst: str, sport: int, dport: int) -> None:
        """RFC 3948 NAT-keepalive (a single 0xFF byte on the NAT-T port)."""

    def on_icmp_error(self, err: IcmpError) -> None: ...

    def on_fragment_group(self, group: FragmentGroup) -> None: ...

    def on_malformed(self, frame: int, ts: float, layer: str, offset: int, reason: str) -> None:
        """A packet (at or below the IKE/ESP header) that violates its RFC: ``layer`` names the
        protocol ("ipv4", "udp", "esp", ...), ``offset`` is from the start of the frame."""

    def on_truncated(self, frame: int, ts: float, caplen: int, origlen: int) -> None:
        """The frame was cut by the snaplen before the data the decoder needed."""
