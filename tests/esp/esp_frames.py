"""Test-only extraction of ESP packets from captures (RawPcapReader + struct).

The real capture layer lives elsewhere; this walks just enough L2/L3/L4 to find IP protocol 50
and ESP-in-UDP on port 4500 (RFC 3948: not the non-ESP marker, not a keepalive) and skips IP
fragments. The IP walk is shared with tests/crypto/ike_frames.py (tests/pcapwalk.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from pcapwalk import ip_packets, transport


@dataclass(frozen=True)
class EspFrame:
    frame: int
    src: str
    dst: str
    udp: bool
    data: bytes
    off: int  # first byte of the SPI
    end: int  # one past the ICV

    @property
    def spi(self) -> int:
        return struct.unpack_from("!I", self.data, self.off)[0]

    @property
    def seq(self) -> int:
        return struct.unpack_from("!I", self.data, self.off + 4)[0]


def esp_packets(path: Path) -> list[EspFrame]:
    out: list[EspFrame] = []
    for n, data, off in ip_packets(path):
        t = transport(data, off)
        if t is None:
            continue
        proto, src, dst, l4, end = t
        end = min(end, len(data))
        if proto == 50:
            out.append(EspFrame(n, src, dst, False, data, l4, end))
        elif proto == 17:
            sport, dport = struct.unpack_from("!HH", data, l4)
            if 4500 in (sport, dport) and end - l4 - 8 > 8 and data[l4 + 8 : l4 + 12] != b"\0\0\0\0":
                out.append(EspFrame(n, src, dst, True, data, l4 + 8, end))
    return out
