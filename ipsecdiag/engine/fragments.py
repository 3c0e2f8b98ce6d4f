"""IKEv2 message fragmentation (RFC 7383): splitting what we send, reassembling what we get.

Sending (§2.5): the inner payloads are cut into chunks, each protected on its own in an SKF
payload; fragment 1 carries the type of the first inner payload, the others 0. The chunk size
follows from the largest IP datagram we may send (strongSwan's ``fragment_size``, default 1280
octets) minus IP, UDP, non-ESP marker, IKE header, SKF header, IV, ICV and worst-case padding.

Receiving (§2.6): fragments are decrypted one by one (each has its own ICV) and kept until all
``total`` have arrived; a fragment announcing a *larger* total restarts the collection, a
smaller one is ignored, numbers outside 1..total are dropped. Bounds: at most
``max_fragments`` per message and 64 KiB of plaintext; an incomplete set expires at
``deadline`` (the caller's clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..crypto.sk import SkContext
from ..wire.ikev2_payloads import SkfPayload

__all__ = ["Reassembler", "Reassembly", "chunk_size"]

_MAX_PLAINTEXT = 65535
_IKE_HEADER = 28
_SKF_HEADER = 8


def chunk_size(ctx: SkContext, *, fragment_size: int, ipv6: bool, marker: bool) -> int:
    """Plaintext octets per fragment so that the IP datagram stays within ``fragment_size``."""
    overhead = (40 if ipv6 else 20) + 8 + (4 if marker else 0) + _IKE_HEADER + _SKF_HEADER
    overhead += ctx.iv_size + ctx.icv_size + ctx.spec.block_size  # padding + Pad Length, worst case
    return max(fragment_size - overhead, 64)


@dataclass
class Reassembly:
    """The fragments collected for one message id."""

    message_id: int
    total: int
    deadline: float
    first_type: int = 0
    parts: dict[int, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts.values())

    def complete(self) -> bool:
        return len(self.parts) == self.total


class Reassembler:
    """At most one message in reassembly at a time (window size 1 in each direction)."""

    def __init__(self, max_fragments: int) -> None:
        self.max_fragments = max_fragments
        self.current: Reassembly | None = None

    def add(
        self, message_id: int, frag: SkfPayload, plaintext: bytes, deadline: float
    ) -> tuple[int, bytes] | str:
        """Keep one verified fragment; returns ``(first inner type, plaintext)`` when the
        message is complete, else a short status (``"waiting"`` or why it was ignored)."""
        n, total = frag.fragment_number, frag.total_fragments
        if not 1 <= n <= total:
            return f"fragment number {n} of {total} is out of range"
        if total > self.max_fragments:
            return f"{total} fragments exceed the limit of {self.max_fragments}"
        cur = self.current
        if cur is None or cur.message_id != message_id or total > cur.total:
            cur = self.current = Reassembly(message_id, total, deadline)
        elif total < cur.total:
            return f"fragment announces {total} fragments, {cur.total} expected (ignored, §2.6.2)"
        if n in cur.parts:
            return "duplicate fragment"
        if cur.size + len(plaintext) > _MAX_PLAINTEXT:
            self.current = None
            return "reassembled message would exceed 64 KiB"
        cur.parts[n] = plaintext
        if n == 1:
            cur.first_type = frag.next_payload
        if not cur.complete():
            return "waiting"
        self.current = None
        return cur.first_type, b"".join(cur.parts[i] for i in range(1, cur.total + 1))

    @property
    def deadline(self) -> float | None:
        return self.current.deadline if self.current is not None else None

    def expire(self, now: float) -> bool:
        if self.current is not None and now >= self.current.deadline:
            self.current = None
            return True
        return False
