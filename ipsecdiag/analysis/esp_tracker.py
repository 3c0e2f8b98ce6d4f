"""Per-SPI ESP accounting on the hot path: counters, sequence analysis, optional decryption.

Memory is bounded by the number of flows: each flow keeps a fixed-size bitmap of the last
``SEQ_WINDOW`` sequence numbers (to tell duplicates from reordering), never a list of packets.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from .model import EspFlow, addr_text

SEQ_WINDOW = 4096
_MASK = (1 << SEQ_WINDOW) - 1
_U32 = struct.Struct("!I")
_SPI_SEQ = struct.Struct("!II")

# Called for every ESP packet when decryption is active:
# (flow_state, frame, ts, data, off, end) -> None
EspHook = Callable[["FlowState", int, float, bytes, int, int], None]


class FlowState:
    """Mutable per-flow counters (slots: this object is touched for every packet)."""

    __slots__ = (
        "spi",
        "src",
        "dst",
        "sport",
        "dport",
        "packets",
        "bytes",
        "seq_first",
        "seq_last",
        "seq_min",
        "seq_max",
        "first_ts",
        "last_ts",
        "first_frame",
        "last_frame",
        "bitmap",
        "duplicates",
        "reordered",
        "too_old",
        "truncated",
        "decryptor",
        "decrypted",
        "integrity_failed",
        "undecryptable",
        "inner",
        "resets",
        "max_reorder_depth",
        "dup_frames",
        "extra",
    )

    def __init__(self, spi: int, src: bytes, dst: bytes, sport: int, dport: int) -> None:
        self.spi = spi
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.packets = 0
        self.bytes = 0
        self.seq_first = -1
        self.seq_last = 0
        self.seq_min = 0
        self.seq_max = 0
        self.first_ts = 0.0
        self.last_ts = 0.0
        self.first_frame = 0
        self.last_frame = 0
        self.bitmap = 0
        self.duplicates = 0
        self.reordered = 0
        self.too_old = 0  # below the tracking window: cannot tell duplicate from reorder
        self.truncated = 0
        self.decryptor: Any = None
        self.decrypted = 0
        self.integrity_failed = 0
        self.undecryptable = 0
        self.inner: dict[str, int] = {}
        self.resets = 0
        self.max_reorder_depth = 0
        self.dup_frames: list[tuple[int, float, int]] = []  # (frame, ts, seq), capped
        self.extra: dict[str, Any] = {}


class EspTracker:
    def __init__(self) -> None:
        self.flows: dict[tuple[bytes, bytes, bytes, int, int], FlowState] = {}
        self.packets = 0
        self.hook: EspHook | None = None
        self.malformed: list[tuple[int, int, str]] = []  # frame, offset-in-esp, reason

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
        self.packets += 1
        if end - off < 8:
            self.malformed.append((frame, off, f"ESP header needs 8 bytes, {end - off} present"))
            return
        spi, seq = _SPI_SEQ.unpack_from(data, off)
        key = (data[off : off + 4], src, dst, sport, dport)
        f = self.flows.get(key)
        if f is None:
            f = FlowState(spi, src, dst, sport, dport)
            self.flows[key] = f
            f.seq_first = seq
            f.seq_min = seq
            f.seq_max = seq
            f.first_ts = ts
            f.first_frame = frame
            f.bitmap = 1
        else:
            top = f.seq_max
            if seq > top:
                shift = seq - top
                f.bitmap = ((f.bitmap << shift) | 1) & _MASK if shift < SEQ_WINDOW else 1
                f.seq_max = seq
            else:
                d = top - seq
                if d < SEQ_WINDOW:
                    bit = 1 << d
                    if f.bitmap & bit:
                        f.duplicates += 1
                        if len(f.dup_frames) < 256:
                            f.dup_frames.append((frame, ts, seq))
                    else:
                        f.bitmap |= bit
                        f.reordered += 1
                        if d > f.max_reorder_depth:
                            f.max_reorder_depth = d
                else:
                    f.too_old += 1
                    if seq < 8 and top > 64:
                        f.resets += 1
                if seq < f.seq_min:
                    f.seq_min = seq
        f.packets += 1
        f.bytes += end - off
        f.seq_last = seq
        f.last_ts = ts
        f.last_frame = frame
        if self.hook is not None:
            self.hook(f, frame, ts, data, off, end)

    def flows_out(self) -> list[EspFlow]:
        out: list[EspFlow] = []
        for f in sorted(self.flows.values(), key=lambda x: (x.first_frame, x.spi)):
            span = f.seq_max - f.seq_min + 1
            unique = f.packets - f.duplicates - f.too_old
            flow = EspFlow(
                spi=f.spi,
                src=addr_text(f.src),
                dst=addr_text(f.dst),
                encap="udp" if f.sport or f.dport else "none",
                sport=f.sport,
                dport=f.dport,
                packets=f.packets,
                bytes=f.bytes,
                seq_first=f.seq_first,
                seq_last=f.seq_last,
                seq_min=f.seq_min,
                seq_max=f.seq_max,
                first_ts=f.first_ts,
                last_ts=f.last_ts,
                first_frame=f.first_frame,
                last_frame=f.last_frame,
                duplicates=f.duplicates,
                reordered=f.reordered,
                gaps=max(0, span - unique) if f.too_old == 0 else 0,
                decrypted=f.decrypted,
                integrity_failed=f.integrity_failed,
                undecryptable=f.undecryptable,
                truncated=f.truncated,
                keys=f.decryptor is not None,
            )
            flow.inner_protocols.update(f.inner)
            flow.extra = {
                "too_old": f.too_old,
                "max_reorder_depth": f.max_reorder_depth,
                "dup_frames": list(f.dup_frames),
                **f.extra,
            }
            out.append(flow)
        return out
