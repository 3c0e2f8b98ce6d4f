"""Test-only extraction of IKE messages from captures (RawPcapReader + struct).

The real capture layer lives elsewhere; this walks just enough L2/L3/L4 to find UDP 500/4500
(dropping the non-ESP marker on 4500) and skips IP fragments.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from pcapwalk import ip_packets, transport


@dataclass(frozen=True)
class IkeFrame:
    frame: int
    src: str
    dst: str
    message: bytes


def ike_messages(path: Path) -> list[IkeFrame]:
    out: list[IkeFrame] = []
    for n, data, off in ip_packets(path):
        t = transport(data, off)
        if t is None or t[0] != 17:
            continue
        proto, src, dst, l4, end = t
        sport, dport = struct.unpack_from("!HH", data, l4)
        body = data[l4 + 8 : end]
        if 4500 in (sport, dport):
            if len(body) < 4 or body[:4] != b"\0\0\0\0":
                continue  # ESP-in-UDP or a keepalive
            body = body[4:]
        elif 500 not in (sport, dport):
            continue
        if len(body) >= 28:
            out.append(IkeFrame(n, src, dst, body))
    return out


def payload_chain(msg: bytes, first: int, start: int, end: int) -> list[tuple[int, int, int]]:
    """Walk a generic payload chain: [(type, offset, length)]; raises ValueError when broken."""
    chain = []
    nxt, pos = first, start
    while nxt != 0:
        if pos + 4 > end:
            raise ValueError(f"payload header at {pos} past end {end}")
        plen = struct.unpack_from("!H", msg, pos + 2)[0]
        if plen < 4 or pos + plen > end:
            raise ValueError(f"payload {nxt} at {pos} has bad length {plen}")
        chain.append((nxt, pos, plen))
        nxt = msg[pos]
        pos += plen
    return chain
