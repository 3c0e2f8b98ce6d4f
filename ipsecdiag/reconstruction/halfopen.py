"""IKE SAs that never get past their first request, bounded (issue 14).

A flood of IKE_SA_INIT requests or IKEv1 Main/Aggressive Mode first messages (a scan, a
denial of service, a client retrying with fresh SPIs) would otherwise cost a full record per request: the parsed message, an exchange, an SA,
tens of KB each, and one finding each. The ledger lets the first requests toward a responder
become full records as usual; once ``full_per_responder`` of them (or ``full_total`` over all
responders) are still waiting for a response, a new request is kept compact instead: its
datagram, unparsed, in a tuple of a few hundred bytes. A response to a compact request promotes
it back to a full record, so a genuine negotiation inside a flood is still reconstructed. Past
``compact_max`` compact requests the rest are only counted. At the end every responder with
compact or counted requests becomes a :class:`HalfOpenSummary`: how many, at what rate, from
how many initiators and which ones sent the most.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..capture.model import IkeDatagram

FULL_PER_RESPONDER = 50
FULL_TOTAL = 1000
COMPACT_MAX = 100_000
# Distinct initiators counted per responder; the rest are added up as "other initiators".
MAX_INITIATORS = 10_000
TOP_INITIATORS = 5

_Compact = tuple[int, float, str, int, str, int, bytes, str, bool, int, int, int]


@dataclass
class HalfOpenSummary:
    """Requests toward one responder that were summarised rather than kept as IKE SAs."""

    responder: str
    port: int
    summarised: int = 0  # requests never answered, not kept as IKE SAs
    ikev1: int = 0  # of those, IKEv1 Main/Aggressive Mode first messages (the rest: IKE_SA_INIT)
    counted_only: int = 0  # of those, past the compact limit: not even kept compact
    full_records: int = 0  # half-open SAs toward this responder kept in full (the first ones)
    first_frame: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    initiators: Counter[str] = field(default_factory=Counter)
    other_initiators: int = 0  # requests from initiators beyond MAX_INITIATORS distinct ones

    @property
    def rate(self) -> float | None:
        span = self.last_ts - self.first_ts
        return self.summarised / span if span > 0 else None

    def top(self, n: int = TOP_INITIATORS) -> list[tuple[str, int]]:
        return self.initiators.most_common(n)


class HalfOpenLedger:
    def __init__(
        self,
        full_per_responder: int = FULL_PER_RESPONDER,
        full_total: int = FULL_TOTAL,
        compact_max: int = COMPACT_MAX,
    ) -> None:
        self.full_per_responder = full_per_responder
        self.full_total = full_total
        self.compact_max = compact_max
        self._open: dict[int, tuple[str, int]] = {}  # id(full SA) -> responder, while unanswered
        self._open_count: Counter[tuple[str, int]] = Counter()
        self._compact: dict[bytes, _Compact] = {}  # SPIi -> the request, unparsed
        self._sums: dict[tuple[str, int], HalfOpenSummary] = {}

    # -- full records ----------------------------------------------------------------------
    def admits(self, responder: tuple[str, int]) -> bool:
        """May a new IKE_SA_INIT request toward ``responder`` become a full IKE SA record?"""
        return self._open_count[responder] < self.full_per_responder and len(self._open) < self.full_total

    def opened(self, sa_id: int, responder: tuple[str, int]) -> None:
        self._open[sa_id] = responder
        self._open_count[responder] += 1

    def answered(self, sa_id: int) -> None:
        responder = self._open.pop(sa_id, None)
        if responder is not None:
            self._open_count[responder] -= 1

    # -- compact requests ------------------------------------------------------------------
    def keep(self, d: IkeDatagram) -> None:
        """A request that may not become a full record: keep it compact, or count it."""
        spi_i = d.data[:8]
        if spi_i in self._compact:
            return  # a retransmission of a request already kept
        responder = (d.dst, d.dport)
        s = self._sums.get(responder)
        if s is None:
            s = self._sums[responder] = HalfOpenSummary(d.dst, d.dport, first_frame=d.frame, first_ts=d.ts)
        s.summarised += 1
        s.ikev1 += int(d.data[17] >> 4 == 1)
        s.last_ts = d.ts
        if d.src in s.initiators or len(s.initiators) < MAX_INITIATORS:
            s.initiators[d.src] += 1
        else:
            s.other_initiators += 1
        if len(self._compact) < self.compact_max:
            # s.responder: one shared string for every request toward this responder.
            self._compact[spi_i] = (
                d.frame, d.ts, d.src, d.sport, s.responder, d.dport, d.data, d.transport, d.non_esp_marker,
                d.ip_len, d.ip_fragments, d.ip_version,
            )  # fmt: skip
        else:
            s.counted_only += 1

    def claim(self, spi_i: bytes) -> IkeDatagram | None:
        """The compact request with this SPIi, taken out of its summary (it got an answer)."""
        c = self._compact.pop(spi_i, None)
        if c is None:
            return None
        frame, ts, src, sport, dst, dport, data, transport, marker, ip_len, ip_frags, ip_version = c
        s = self._sums[(dst, dport)]
        s.summarised -= 1
        s.ikev1 -= int(data[17] >> 4 == 1)
        s.initiators[src] -= 1
        if s.initiators[src] <= 0:
            del s.initiators[src]
        return IkeDatagram(
            frame, (frame,), ts, src, dst, sport, dport, data, transport, marker, ip_len, ip_frags, ip_version
        )

    def summaries(self) -> list[HalfOpenSummary]:
        out = []
        for (dst, port), s in self._sums.items():
            if s.summarised:
                s.full_records = self._open_count[(dst, port)]
                out.append(s)
        return sorted(out, key=lambda s: -s.summarised)
