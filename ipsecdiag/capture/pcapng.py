"""pcapng block walk for :class:`~.reader.CaptureFile` (draft-ietf-opsawg-pcapng).

Section headers (either byte order), interface descriptions (link type, snaplen, timestamp
resolution and offset) and the packet blocks (enhanced, simple, obsolete) become the reader's
frame tuples; every other block is skipped and counted by name in ``stats.skipped_blocks``.
Like the classic pcap walk it reads on chunk by chunk (through the reader's ``more``) and reports
a block cut short or of an impossible length as truncation.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .reader import CaptureStats, Frame

# Largest record we believe: pcapng blocks and pcap records beyond this are corruption.
MAX_RECORD = 64 * 1024 * 1024
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"

BLOCK_NAMES: dict[int, str] = {
    0x00000004: "name-resolution",
    0x00000005: "interface-statistics",
    0x00000007: "irig-timestamp",
    0x00000008: "arinc-429",
    0x00000009: "systemd-journal-export",
    0x0000000A: "decryption-secrets",
    0x00000BAD: "custom",
    0x40000BAD: "custom",
}

_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14

_Interface = tuple[int, float, int, int]


def pcapng_frames(
    buf: bytes,
    stats: CaptureStats,
    linktypes: set[int],
    more: Callable[[int], bytes],
    truncate: Callable[[str], None],
    late_detail: Callable[[], str],
) -> Iterator[Frame]:
    """Yield the packet records of the pcapng input whose first bytes are ``buf``; ``more(need)``
    reads on (b"" at the end), ``truncate(detail)`` records where the file became unreadable,
    ``late_detail()`` is the read error that ended the input early, if any. ``stats`` and
    ``linktypes`` are the reader's, kept up to date as blocks go by."""
    pos = 0
    frame = 0
    nbytes = 0
    skipped = stats.skipped_blocks
    consumed = 0
    ifaces: list[_Interface] = []  # (linktype, units per second, if_tsoffset, snaplen)
    order = "<"
    hdr = struct.Struct("<II").unpack_from
    epb = struct.Struct("<IIIIIII").unpack_from
    try:
        while True:
            n = len(buf)
            while pos + 12 <= n:
                btype = buf[pos : pos + 4]
                if btype == PCAPNG_SHB:
                    # The byte-order magic decides the order of everything in this section.
                    bom = buf[pos + 8 : pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        order = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        order = ">"
                    else:
                        truncate(f"section header after record {frame} has a bad byte-order magic")
                        return
                    hdr = struct.Struct(order + "II").unpack_from
                    epb = struct.Struct(order + "IIIIIII").unpack_from
                btype_i, blen = hdr(buf, pos)
                if blen < 12 or blen & 3 or blen > MAX_RECORD:
                    truncate(
                        f"block after record {frame} has an impossible length {blen}: corrupt file, stopped there"
                    )
                    return
                end = pos + blen
                if end > n:
                    break
                if btype_i == 6 or btype_i == 2:  # Enhanced or obsolete Packet Block
                    if btype_i == 6:
                        _, _, ifid, hi, lo, caplen, orig = epb(buf, pos)
                    else:  # 16-bit interface id and drop count, same offsets after
                        ifid, _drops, hi, lo, caplen, orig = struct.unpack_from(
                            order + "HHIIII", buf, pos + 8
                        )
                    if ifid < len(ifaces) and caplen <= blen - 32:
                        linktype, div, off, _snap = ifaces[ifid]
                        frame += 1
                        nbytes += caplen
                        yield (
                            frame,
                            ((hi << 32) | lo) / div + off,
                            linktype,
                            buf[pos + 28 : pos + 28 + caplen],
                            orig,
                        )
                    else:
                        _bad_block(skipped, "bad-packet-block")
                elif btype_i == 3:  # Simple Packet Block: interface 0, no timestamp
                    if ifaces and blen >= 16:
                        linktype, _div, _off, snap = ifaces[0]
                        orig = struct.unpack_from(order + "I", buf, pos + 8)[0]
                        caplen = min(orig, blen - 16)
                        if snap:
                            caplen = min(caplen, snap)
                        frame += 1
                        nbytes += caplen
                        yield frame, 0.0, linktype, buf[pos + 12 : pos + 12 + caplen], orig
                    else:
                        _bad_block(skipped, "bad-packet-block")
                elif btype_i == 1:
                    iface = _parse_idb(buf, pos, blen, order)
                    if iface is None:
                        _bad_block(skipped, "bad-interface-block")
                        # Keep numbering aligned: packets name interfaces by position.
                        iface = (-1, 1e6, 0, 0)
                    ifaces.append(iface)
                    linktypes.add(iface[0])
                    stats.interfaces += 1
                elif btype_i == 0x0A0D0D0A:
                    ifaces = []  # interface ids restart in every section
                    stats.sections += 1
                else:
                    name = BLOCK_NAMES.get(btype_i, f"0x{btype_i:08x}")
                    skipped[name] = skipped.get(name, 0) + 1
                pos = end
            need = 12
            if pos + 12 <= n:
                blen = hdr(buf, pos)[1]
                if 12 <= blen <= MAX_RECORD:
                    need = blen
            chunk = more(need - (n - pos))
            if not chunk:
                if pos < n:
                    truncate(
                        f"file ends inside the block after record {frame} ({n - pos} of {need} bytes present)"
                    )
                return
            consumed += pos
            buf = buf[pos:] + chunk
            pos = 0
            stats.frames = frame
            stats.bytes = nbytes
            stats.position = consumed
    finally:
        stats.frames = frame
        stats.bytes = nbytes
        stats.position = consumed + pos
        late = late_detail()
        if late:
            truncate(late)


def _bad_block(skipped: dict[str, int], name: str) -> None:
    skipped[name] = skipped.get(name, 0) + 1


def _parse_idb(buf: bytes, pos: int, blen: int, order: str) -> _Interface | None:
    """Interface Description Block: link type, snaplen and the timestamp options."""
    if blen < 20:
        return None
    linktype, _res, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
    divisor = 1e6
    offset = 0
    opt = pos + 16
    end = pos + blen - 4
    opt_hdr = struct.Struct(order + "HH")
    while opt + 4 <= end:
        code, length = opt_hdr.unpack_from(buf, opt)
        if code == 0:
            break
        value = buf[opt + 4 : opt + 4 + length]
        if code == _OPT_IF_TSRESOL and length >= 1:
            r = value[0]
            # MSB clear: 10^-r seconds per unit; MSB set: 2^-(r & 0x7f).
            divisor = float(2 ** (r & 0x7F)) if r & 0x80 else float(10**r)
        elif code == _OPT_IF_TSOFFSET and length >= 8:
            offset = struct.unpack_from(order + "q", value)[0]
        opt += 4 + ((length + 3) & ~3)
    return (linktype, divisor, offset, snaplen)
