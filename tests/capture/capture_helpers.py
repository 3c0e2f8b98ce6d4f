"""Shared helpers for the capture tests: a recording Sink and file builders."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from ipsecdiag.capture.decode import Decoder
from ipsecdiag.capture.model import FragmentGroup, IcmpError, IkeDatagram


@dataclass
class EspEvent:
    frame: int
    ts: float
    src: bytes
    dst: bytes
    sport: int
    dport: int
    esp: bytes  # data[off:end]


@dataclass
class RecordingSink:
    ike: list[IkeDatagram] = field(default_factory=list)
    esp: list[EspEvent] = field(default_factory=list)
    ah: list[tuple[int, bytes, bytes, bytes]] = field(default_factory=list)
    keepalives: list[tuple[int, str, str, int, int]] = field(default_factory=list)
    icmp: list[IcmpError] = field(default_factory=list)
    groups: list[FragmentGroup] = field(default_factory=list)
    malformed: list[tuple[int, str, int, str]] = field(default_factory=list)
    truncated: list[tuple[int, int, int]] = field(default_factory=list)

    def on_ike(self, msg: IkeDatagram) -> None:
        self.ike.append(msg)

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
        assert 0 <= off <= end <= len(data)
        self.esp.append(EspEvent(frame, ts, bytes(src), bytes(dst), sport, dport, bytes(data[off:end])))

    def on_ah(self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, off: int, end: int) -> None:
        assert 0 <= off <= end <= len(data)
        self.ah.append((frame, bytes(src), bytes(dst), bytes(data[off:end])))

    def on_keepalive(self, frame: int, ts: float, src: str, dst: str, sport: int, dport: int) -> None:
        self.keepalives.append((frame, src, dst, sport, dport))

    def on_icmp_error(self, err: IcmpError) -> None:
        self.icmp.append(err)

    def on_fragment_group(self, group: FragmentGroup) -> None:
        self.groups.append(group)

    def on_malformed(self, frame: int, ts: float, layer: str, offset: int, reason: str) -> None:
        self.malformed.append((frame, layer, offset, reason))

    def on_truncated(self, frame: int, ts: float, caplen: int, origlen: int) -> None:
        assert caplen < origlen
        self.truncated.append((frame, caplen, origlen))


def run(
    frames: Iterable[bytes | tuple[bytes, int]], linktype: int = 1, *, finish: bool = True, **kw: object
) -> tuple[Decoder, RecordingSink]:
    """Feed raw frames (or (frame, orig_len) pairs) numbered from 1, one second apart."""
    sink = RecordingSink()
    dec = Decoder(sink, **kw)  # type: ignore[arg-type]
    n = 0
    for n, item in enumerate(frames, 1):
        data, orig = (item, len(item)) if isinstance(item, bytes) else item
        dec.feed(n, 1000.0 + n, linktype, data, orig)
    if finish:
        dec.finish()
    assert_accounted(dec, n)
    return dec, sink


def assert_accounted(dec: Decoder, n: int) -> None:
    assert dec.ipsec_frames + sum(dec.skipped.values()) + dec.pending_frames == n, (
        dec.ipsec_frames,
        dict(dec.skipped),
        dec.pending_frames,
        n,
    )


# -- synthetic capture files -------------------------------------------------------------------
def pcap_bytes(
    records: list[tuple[int, int, bytes, int]],
    *,
    order: str = "<",
    magic: int = 0xA1B2C3D4,
    linktype: int = 1,
    modified: bool = False,
) -> bytes:
    """Classic pcap: records are (sec, frac, data, orig_len)."""
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for sec, frac, data, orig in records:
        out += struct.pack(order + "IIII", sec, frac, len(data), orig)
        if modified:
            out += struct.pack(order + "iHBx", 2, 0x0800, 0)
        out += data
    return out


def ng_option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) & 3)


def ng_block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) & 3)
    total = 12 + len(body)
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def ng_shb(order: str = "<") -> bytes:
    return ng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def ng_idb(
    order: str, linktype: int, *, tsresol: int | None = None, tsoffset: int | None = None, snaplen: int = 0
) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += ng_option(order, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += ng_option(order, 14, struct.pack(order + "q", tsoffset))
    if opts:
        opts += ng_option(order, 0, b"")
    return ng_block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts)


def ng_epb(order: str, ifid: int, stamp: int, data: bytes, orig: int | None = None) -> bytes:
    body = struct.pack(order + "IIIII", ifid, stamp >> 32, stamp & 0xFFFFFFFF, len(data), orig or len(data))
    return ng_block(order, 6, body + data)


def ng_spb(order: str, data: bytes, orig: int | None = None) -> bytes:
    return ng_block(order, 3, struct.pack(order + "I", orig or len(data)) + data)


def ng_pb(order: str, ifid: int, stamp: int, data: bytes) -> bytes:
    body = struct.pack(order + "HHIIII", ifid, 0, stamp >> 32, stamp & 0xFFFFFFFF, len(data), len(data))
    return ng_block(order, 2, body + data)
