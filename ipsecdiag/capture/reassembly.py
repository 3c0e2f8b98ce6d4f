"""IPv4/IPv6 fragment reassembly for the decoder, bounded in time and memory.

Groups are keyed like the kernels key them: IPv4 by (src, dst, id, protocol), IPv6 by
(src, dst, id). A group is buffered only while it may be IPsec: once its first fragment
(offset 0) shows an ordinary protocol, its data is dropped and the key gets a *tombstone*
that only counts later fragments, so bulk fragmented traffic (NFS, DNS) costs no memory.
Overlapping or conflicting fragments drop the group (RFC 5722 for IPv6; for IPv4 the same
rule defeats teardrop-style ambiguity). Groups expire ``timeout`` seconds after their first
fragment (capture time), and the oldest is evicted when ``max_buffers`` groups or
``max_bytes`` buffered bytes would be exceeded.

A completed datagram leaves a tombstone for ``DUPLICATE_WINDOW`` seconds, so fragments a
mirror port delivered twice do not open a new group that would later look like a lost
fragment; the window is short because IPv4 identifiers are reused quickly at high rates.
Tombstones live in their own bounded table and never evict live groups.

The reassembler never counts frames itself; it calls ``account(n_frames, outcome)`` where
``outcome`` is None for IPsec frames or a skip reason, so the decoder's accounting stays in
one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import FragmentGroup

INF = float("inf")

# Outcome of frames that belonged to a group nobody could reassemble and whose protocol was
# never seen (first fragment missing).
INCOMPLETE = "incomplete-fragment"
DUPLICATE_WINDOW = 2.0


@dataclass(frozen=True)
class FirstFragment:
    """What the offset-0 fragment says about the datagram (from the decoder's classify())."""

    ipsec: bool
    proto: int
    sport: int | None = None
    dport: int | None = None


class _Group:
    __slots__ = (
        "version",
        "src",
        "dst",
        "ident",
        "frames",
        "ts_first",
        "ts_last",
        "deadline",
        "pieces",
        "total",
        "seen",
        "first",
        "hdr_len",
        "nh",
    )

    def __init__(self, version: int, src: bytes, dst: bytes, ident: int, ts: float, deadline: float) -> None:
        self.version = version
        self.src = src
        self.dst = dst
        self.ident = ident
        self.frames: list[int] = []
        self.ts_first = ts
        self.ts_last = ts
        self.deadline = deadline
        self.pieces: dict[int, bytes] = {}
        self.total: int | None = None  # payload length, known once the last fragment is seen
        self.seen = 0  # distinct payload bytes received
        self.first: FirstFragment | None = None
        self.hdr_len = 0  # IP header length (v4) or unfragmentable part length (v6) of fragment 0
        self.nh = -1  # IPv6: next header of the fragmentable part, from fragment 0


class IpReassembler:
    """Buffers fragments; hands complete datagrams to ``complete`` and reports groups.

    Callbacks:
      classify(group_version, nh_or_proto, payload) -> FirstFragment, for the offset-0 piece;
      complete(frames, ts, version, src, dst, proto_or_nh, payload, ip_len, n_fragments) -> outcome;
      account(n_frames, outcome) -> None;
      report(group) -> None, for groups whose first fragment looked like IPsec or was missing.
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_buffers: int,
        max_bytes: int,
        classify: Callable[[int, int, bytes], FirstFragment],
        complete: Callable[[tuple[int, ...], float, int, bytes, bytes, int, bytes, int, int], str | None],
        account: Callable[[int, str | None], None],
        report: Callable[[FragmentGroup], None],
        ntoa: Callable[[bytes], str],
    ) -> None:
        self.timeout = timeout
        self.max_buffers = max(1, max_buffers)
        self.max_bytes = max_bytes
        self._classify = classify
        self._complete = complete
        self._account = account
        self._report = report
        self._ntoa = ntoa
        self._groups: dict[tuple[object, ...], _Group] = {}
        # key -> (until, outcome): later fragments of a settled datagram are counted as outcome.
        self._tombs: dict[tuple[object, ...], tuple[float, str | None]] = {}
        self.max_tombs = max(1024, 4 * self.max_buffers)
        self.buffered_bytes = 0
        self.pending_frames = 0
        self.deadline = INF
        self.evicted = 0

    def add(
        self,
        frame: int,
        ts: float,
        key: tuple[object, ...],
        version: int,
        src: bytes,
        dst: bytes,
        ident: int,
        offset: int,
        more: bool,
        payload: bytes,
        hdr_len: int,
        nh: int,
    ) -> None:
        """One fragment: ``payload`` is the fragment's data, ``offset`` in bytes.

        ``nh`` is the protocol (IPv4) or the fragment header's next header (IPv6). The frame
        is accounted for by the group (now or when it completes or expires).
        """
        tomb = self._tombs.get(key)
        if tomb is not None:
            if ts <= tomb[0]:
                self._account(1, tomb[1])
                return
            del self._tombs[key]
        groups = self._groups
        g = groups.get(key)
        if g is None:
            if len(groups) >= self.max_buffers:
                self._evict_oldest()
            g = _Group(version, src, dst, ident, ts, ts + self.timeout)
            groups[key] = g
            if self.deadline == INF:
                self.deadline = g.deadline
        g.ts_last = ts
        length = len(payload)
        g.frames.append(frame)
        self.pending_frames += 1
        # Exact duplicates are common (mirror ports, retransmitted sniffing); keep the first copy.
        old = g.pieces.get(offset)
        if old is not None and len(old) == length and (not more) == (g.total == offset + length):
            if old != payload:
                self._finish(key, g, "overlap")
            return
        end = offset + length
        if (g.total is not None and (end > g.total or (not more and end != g.total))) or any(
            o < end and offset < o + len(p) for o, p in g.pieces.items()
        ):
            self._finish(key, g, "overlap")
            return
        if not more:
            g.total = end
        g.pieces[offset] = payload
        g.seen += length
        self.buffered_bytes += length
        if offset == 0:
            g.hdr_len = hdr_len
            g.nh = nh
            g.first = self._classify(version, nh, payload)
            if not g.first.ipsec:
                self._kill(key, g, "not-ipsec")
                return
        if g.total is not None and g.seen == g.total:
            self._finish(key, g, "")
            return
        while self.buffered_bytes > self.max_bytes and self._groups:
            self._evict_oldest()

    def expire(self, now: float) -> None:
        """Close groups whose deadline is before ``now`` (capture time)."""
        groups = self._groups
        while groups:
            key, g = next(iter(groups.items()))
            if g.deadline >= now:
                self.deadline = g.deadline
                return
            self._finish(key, g, "timeout")
        self.deadline = INF

    def flush(self, reason: str = "end-of-capture") -> None:
        for key, g in list(self._groups.items()):
            self._finish(key, g, reason)
        self._tombs.clear()
        self.deadline = INF

    # -- internals -------------------------------------------------------------------------
    def _evict_oldest(self) -> None:
        key, g = next(iter(self._groups.items()))
        self.evicted += 1
        self._finish(key, g, "evicted")

    def _tomb(self, key: tuple[object, ...], until: float, outcome: str | None) -> None:
        tombs = self._tombs
        if len(tombs) >= self.max_tombs:
            del tombs[next(iter(tombs))]
        tombs[key] = (until, outcome)

    def _remove(self, key: tuple[object, ...], g: _Group) -> None:
        """Forget a live group: its buffered bytes and pending frames leave the totals."""
        self.pending_frames -= len(g.frames)
        self.buffered_bytes -= sum(len(p) for p in g.pieces.values())
        del self._groups[key]
        groups = self._groups
        self.deadline = next(iter(groups.values())).deadline if groups else INF

    def _kill(self, key: tuple[object, ...], g: _Group, outcome: str) -> None:
        """Ordinary traffic: account the frames now, keep only a tombstone for the rest."""
        self._remove(key, g)
        self._account(len(g.frames), outcome)
        self._tomb(key, g.deadline, outcome)

    def _finish(self, key: tuple[object, ...], g: _Group, reason: str) -> None:
        """Complete (reason "") or give up on a group; report it and account its frames."""
        complete = reason == ""
        pieces = g.pieces
        frames = tuple(sorted(g.frames))
        payload = b"".join(pieces[o] for o in sorted(pieces)) if complete else b""
        self._remove(key, g)
        first = g.first
        if first is None or first.ipsec:
            self._report(
                FragmentGroup(
                    first_frame=frames[0],
                    frames=frames,
                    ts_first=g.ts_first,
                    ts_last=g.ts_last,
                    src=self._ntoa(g.src),
                    dst=self._ntoa(g.dst),
                    ident=g.ident,
                    proto=first.proto if first else -1,
                    complete=complete,
                    total_len=g.total,
                    bytes_seen=g.seen,
                    sport=first.sport if first else None,
                    dport=first.dport if first else None,
                    reason=reason,
                )
            )
        if complete:
            outcome = self._complete(
                frames,
                g.ts_last,
                g.version,
                g.src,
                g.dst,
                g.nh,
                payload,
                g.hdr_len + len(payload),
                len(pieces),
            )
            self._tomb(key, g.ts_last + min(self.timeout, DUPLICATE_WINDOW), outcome)
        else:
            outcome = INCOMPLETE if first is None else None
            if reason == "overlap":
                # Later fragments of the same datagram must not start a fresh group.
                self._tomb(key, g.deadline, outcome)
        self._account(len(frames), outcome)
