"""IKE SAs that never get past their first request, kept compact from the start (issue 14).

A flood of IKE_SA_INIT requests or IKEv1 Main/Aggressive Mode first messages (a scan, a
denial of service, a client retrying with fresh SPIs) would otherwise cost a full record per
request: the parsed message, an exchange, an SA, about 23 KB each, and a finding each. So every
first request of a new IKE SA is kept here, unparsed, in one bytes object of a few hundred bytes
(its datagram and the facts the record needs), until something else of that SA arrives: the
response, or any later message with its SPI, which *promotes* it, i.e. hands it back to the
reconstructor as if it had just been read, before that message. A genuine negotiation inside a
flood is therefore reconstructed exactly.

At the end of the capture, :meth:`HalfOpenLedger.settle` decides what the requests never
answered become:

- toward a responder with more than ``flood_per_responder`` of them: a *flood* summary (count,
  rate, first and last time, the initiators sending most), no IKE SA each;
- from one initiator toward more than ``scan_responders`` responders: a *scan* summary;
- the others: IKE SAs as before (promoted in capture order), up to ``full_total``; beyond that an
  *overflow* summary.

A small capture (a few unanswered requests) therefore gives exactly the report it gave when every
request was parsed on arrival: the reconstructor orders SAs by the position of their first
message (see ``IkeReconstructor.birth``). Past ``compact_max`` stored requests the rest are only
counted (their retransmissions cannot be told apart from new requests then, which the
capture-health finding says).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field, replace

from ..capture.model import IkeDatagram

FLOOD_PER_RESPONDER = 50  # more never-answered requests toward one responder: a flood
SCAN_RESPONDERS = 20  # one initiator's never-answered requests toward more responders: a scan
FULL_TOTAL = 1000  # never-answered requests shown as IKE SAs, over all responders
COMPACT_MAX = 100_000  # requests kept compact (about 400 bytes each); beyond, counted only
MAX_INITIATORS = 10_000  # distinct initiators counted per summary; the rest added up
MAX_RESPONDERS = 10_000  # distinct responders with their own counters; the rest added up
MAX_AGAIN = 1000  # retransmissions kept per compact request (a fixed-SPI scanner repeats one)
TOP = 5

# One compact request: seq, ts, ip_len, responder index, sport, dport, ip_fragments, frame
# count, ip_version, flags (1: non-ESP marker, 2: TCP), source and destination lengths; then the
# source and destination address texts, the frame numbers (8 bytes each) and the IKE message.
_HEAD = struct.Struct("<QdIIHHHHBBBB")
_FRAME = struct.Struct("<Q")
OTHER = "other responders"


@dataclass
class HalfOpenSummary:
    """Never-answered first requests summarised rather than kept as IKE SAs.

    ``kind`` is "flood" (toward one responder: ``responder``:``port``), "scan" (from one
    initiator, ``initiator``, toward many responders) or "overflow" (the rest, beyond the IKE SAs
    shown one by one)."""

    kind: str
    responder: str = ""
    port: int = 0
    initiator: str = ""
    requests: int = 0  # requests never answered, not kept as IKE SAs
    ikev1: int = 0  # of those, IKEv1 Main/Aggressive Mode first messages (the rest IKE_SA_INIT)
    counted_only: int = 0  # of those, past the compact limit: counted, retransmissions included
    # Of the kept ones, those retransmitted unchanged (same SPI, same bytes: a client backing off,
    # RFC 7296 §2.1), and their retransmissions (up to MAX_AGAIN each). Forged-source floods and
    # scanners send each SPI once.
    retried: int = 0
    retransmissions: int = 0
    first_frame: int = 0
    last_frame: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    initiators: Counter[str] = field(default_factory=Counter)
    other_initiators: int = 0  # requests from initiators beyond MAX_INITIATORS distinct ones
    responders: Counter[str] = field(default_factory=Counter)
    other_responders: int = 0  # requests toward responders beyond MAX_RESPONDERS distinct ones

    @property
    def summarised(self) -> int:
        return self.requests

    @property
    def rate(self) -> float | None:
        """Requests per second between the earliest and the latest one (record times)."""
        span = self.last_ts - self.first_ts
        return self.requests / span if span > 0 else None

    def top(self, n: int = TOP) -> list[tuple[str, int]]:
        return self.initiators.most_common(n)

    def count_from(self, src: str, n: int = 1) -> None:
        if src in self.initiators or len(self.initiators) < MAX_INITIATORS:
            self.initiators[src] += n
        else:
            self.other_initiators += n

    def absorb(self, o: HalfOpenSummary) -> None:
        """Count another summary's requests in this one (which names no responder)."""
        if not o.requests:
            return
        self.first_ts = min(self.first_ts, o.first_ts) if self.requests else o.first_ts
        self.first_frame = min(self.first_frame, o.first_frame) if self.requests else o.first_frame
        self.last_frame = max(self.last_frame, o.last_frame)
        self.last_ts = max(self.last_ts, o.last_ts) if self.requests else o.last_ts
        self.requests += o.requests
        self.ikev1 += o.ikev1
        self.counted_only += o.counted_only
        self.retried += o.retried
        self.retransmissions += o.retransmissions
        for src, n in o.initiators.items():
            self.count_from(src, n)
        self.other_initiators += o.other_initiators
        if o.responder == OTHER:
            self.other_responders += o.requests
        else:
            self.responders[o.responder] += o.requests

    def add(self, frame: int, ts: float, src: str, ikev1: bool, again: int = 0) -> None:
        if not self.requests or ts < self.first_ts:
            self.first_ts = ts
        if not self.requests or frame < self.first_frame:
            self.first_frame = frame
        self.last_frame = max(self.last_frame, frame)
        self.retried += again > 0
        self.retransmissions += again
        self.last_ts = max(self.last_ts, ts) if self.requests else ts
        self.requests += 1
        self.ikev1 += ikev1
        self.count_from(src)


@dataclass
class _Responder:
    """Live counters of the requests toward one responder (kept and counted-only)."""

    index: int
    responder: str
    port: int
    sums: HalfOpenSummary
    kept: int = 0


# A promoted request: its position in the capture (the reconstructor's message count when it
# arrived) and its datagrams (the request, then its retransmissions), in capture order.
Promoted = tuple[int, list[IkeDatagram]]


class HalfOpenLedger:
    def __init__(
        self,
        flood_per_responder: int = FLOOD_PER_RESPONDER,
        scan_responders: int = SCAN_RESPONDERS,
        full_total: int = FULL_TOTAL,
        compact_max: int = COMPACT_MAX,
    ) -> None:
        self.flood_per_responder = flood_per_responder
        self.scan_responders = scan_responders
        self.full_total = full_total
        self.compact_max = compact_max
        self._compact: dict[bytes, bytes] = {}  # key (SPIi + IKE version) -> packed request
        self._again: dict[bytes, list[IkeDatagram]] = {}  # key -> retransmissions (data dropped)
        self._resp: list[_Responder] = []
        self._resp_index: dict[tuple[str, int], int] = {}
        self._summaries: list[HalfOpenSummary] = []

    def pending(self, key: bytes) -> bool:
        return key in self._compact

    # -- arrival ---------------------------------------------------------------------------
    def keep(self, d: IkeDatagram, key: bytes, seq: int) -> bool:
        """Keep the first request of a new IKE SA compact (or count it). False when the key is
        already kept with other bytes: the caller promotes the kept one and goes on normally."""
        blob = self._compact.get(key)
        if blob is not None:
            if blob.endswith(d.data) and len(blob) - len(d.data) == _data_offset(blob):
                again = self._again.setdefault(key, [])
                if len(again) < MAX_AGAIN:
                    sums = self._resp[_HEAD.unpack_from(blob)[3]].sums
                    sums.retried += not again
                    sums.retransmissions += 1
                    sums.last_frame = max(sums.last_frame, d.frame)
                    again.append(replace(d, data=b""))
                return True
            return False
        r = self._responder(d.dst, d.dport)
        ikev1 = d.data[17] >> 4 == 1
        r.sums.add(d.frame, d.ts, d.src, ikev1)
        if len(self._compact) >= self.compact_max and (
            r.kept >= self.flood_per_responder or len(self._compact) >= 2 * self.compact_max
        ):
            r.sums.counted_only += 1
            return True
        r.kept += 1
        src, dst = d.src.encode(), d.dst.encode()
        flags = int(d.non_esp_marker) | (2 if d.transport == "tcp" else 0)
        self._compact[key] = b"".join(
            (
                _HEAD.pack(
                    seq, d.ts, d.ip_len, r.index, d.sport, d.dport, d.ip_fragments, len(d.frames),
                    d.ip_version, flags, len(src), len(dst),
                ),
                src,
                dst,
                *(_FRAME.pack(f) for f in d.frames),
                d.data,
            )
        )  # fmt: skip
        return True

    def _responder(self, dst: str, port: int) -> _Responder:
        i = self._resp_index.get((dst, port))
        if i is None:
            if len(self._resp) >= MAX_RESPONDERS:
                dst, port = OTHER, 0  # counters for the responders beyond the limit, together
                i = self._resp_index.get((dst, port))
            if i is None:
                i = self._resp_index[(dst, port)] = len(self._resp)
                self._resp.append(_Responder(i, dst, port, HalfOpenSummary("flood", dst, port)))
        return self._resp[i]

    def claim(self, key: bytes) -> Promoted | None:
        """The kept request with this key and its retransmissions, taken out of the counters
        (something else of its IKE SA arrived)."""
        blob = self._compact.pop(key, None)
        if blob is None:
            return None
        seq, ri, d = self._unpack(blob)
        r = self._resp[ri]
        r.kept -= 1
        s = r.sums
        s.requests -= 1
        s.ikev1 -= int(d.data[17] >> 4 == 1)
        if s.initiators[d.src] > 1:
            s.initiators[d.src] -= 1
        else:
            s.initiators.pop(d.src, None)
        again = [replace(x, data=d.data) for x in self._again.pop(key, ())]
        s.retried -= bool(again)
        s.retransmissions -= len(again)
        return seq, [d, *again]

    @staticmethod
    def _unpack(blob: bytes) -> tuple[int, int, IkeDatagram]:
        """(seq, responder index, the datagram) of a packed request."""
        seq, ts, ip_len, ri, sport, dport, ip_frags, nframes, ip_version, flags, ns, nd = _HEAD.unpack_from(blob)
        off = _HEAD.size
        src, dst = blob[off : off + ns].decode(), blob[off + ns : off + ns + nd].decode()
        off += ns + nd
        frames = tuple(_FRAME.unpack_from(blob, off + 8 * i)[0] for i in range(nframes))
        d = IkeDatagram(
            frames[-1], frames, ts, src, dst, sport, dport, blob[off + 8 * nframes :],
            "tcp" if flags & 2 else "udp", bool(flags & 1), ip_len, ip_frags, ip_version,
        )  # fmt: skip
        return seq, ri, d

    # -- end of capture --------------------------------------------------------------------
    def settle(self, final: bool = True) -> list[Promoted]:
        """Decide what the never-answered requests become (see the module text): return those
        to become IKE SAs, in capture order, and build the summaries of the rest. With
        ``final`` false (a live snapshot) the ledger is left as it was."""
        flood: set[int] = set()
        lumped: set[int] = set()
        overflow = HalfOpenSummary("overflow")
        for i, r in enumerate(self._resp):
            if r.responder == OTHER or (r.sums.counted_only and r.sums.requests <= self.flood_per_responder):
                # Not all of them kept (past the limits): never IKE SAs, and too few for a flood.
                lumped.add(i)
                overflow.absorb(r.sums)
            elif r.sums.requests > self.flood_per_responder:
                flood.add(i)
        rest: list[tuple[int, bytes]] = []  # (seq, key) of requests toward no flooded responder
        by_initiator: dict[str, set[int]] = {}
        for key, blob in self._compact.items():
            seq, _ts, _l, ri, *_x, ns, _nd = _HEAD.unpack_from(blob)
            if ri in flood or ri in lumped:
                continue
            src = blob[_HEAD.size : _HEAD.size + ns].decode()
            by_initiator.setdefault(src, set()).add(ri)
            rest.append((seq, key))
        scanners = {src for src, rs in by_initiator.items() if len(rs) > self.scan_responders}
        rest.sort()
        promote: list[Promoted] = []
        scans: dict[str, HalfOpenSummary] = {}
        for _seq, key in rest:
            seq, _ri, d = self._unpack(self._compact[key])
            if d.src in scanners:
                s = scans.get(d.src)
                if s is None:
                    s = scans[d.src] = HalfOpenSummary("scan", initiator=d.src, port=d.dport)
                s.add(d.frame, d.ts, d.src, d.data[17] >> 4 == 1, len(self._again.get(key, ())))
                s.responders[d.dst] += 1
            elif len(promote) < self.full_total:
                again = [replace(x, data=d.data) for x in self._again.get(key, ())]
                promote.append((seq, [d, *again]))
            else:
                overflow.add(d.frame, d.ts, d.src, d.data[17] >> 4 == 1, len(self._again.get(key, ())))
                overflow.responders[d.dst] += 1
        self._summaries = [self._resp[i].sums for i in sorted(flood) if self._resp[i].sums.requests]
        self._summaries += list(scans.values()) + ([overflow] if overflow.requests else [])
        self._summaries.sort(key=lambda s: -s.requests)
        if final:
            for _seq, ds in promote:
                self.claim(ledger_key(ds[0].data))
        return promote

    def summaries(self) -> list[HalfOpenSummary]:
        """The summaries of the last :meth:`settle`."""
        return list(self._summaries)


def _data_offset(blob: bytes) -> int:
    *_x, nframes, _v, _fl, ns, nd = _HEAD.unpack_from(blob)
    return _HEAD.size + ns + nd + 8 * nframes


def ledger_key(data: bytes) -> bytes:
    """The key of an IKE message's SA in the ledger: its initiator SPI (cookie) and version."""
    return data[:8] + bytes([data[17] >> 4])
