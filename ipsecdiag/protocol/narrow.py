"""Traffic selector narrowing (RFC 7296 §2.9).

The responder answers with the part of what the initiator asked for that its policy allows:
every intersection of a requested selector with an allowed one (protocol 0 and the full port
range are wildcards). An empty result is TS_UNACCEPTABLE. The initiator checks that what came
back is a subset of what it asked for (a responder may only narrow, never widen).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..wire.ikev2_ts import TrafficSelector
from ..wire.registry import TsType
from .selectors import Sel, intersect, sel_from_ts

__all__ = ["is_subset", "narrow", "ts_from_sel"]


def ts_from_sel(s: Sel) -> TrafficSelector:
    size = 4 if s.version == 4 else 16
    ts_type = TsType.TS_IPV4_ADDR_RANGE if s.version == 4 else TsType.TS_IPV6_ADDR_RANGE
    return TrafficSelector(
        ts_type, s.proto, s.sport, s.eport, s.start.to_bytes(size, "big"), s.end.to_bytes(size, "big")
    )


def narrow(
    requested: Sequence[TrafficSelector], allowed: Sequence[TrafficSelector]
) -> tuple[TrafficSelector, ...]:
    """The selectors both sides accept, in the requester's order, without duplicates."""
    out: list[TrafficSelector] = []
    for r in requested:
        rs = sel_from_ts(r)
        if rs is None:
            continue
        for a in allowed:
            as_ = sel_from_ts(a)
            if as_ is None:
                continue
            both = intersect(rs, as_)
            if both is not None:
                ts = ts_from_sel(both)
                if ts not in out:
                    out.append(ts)
    return tuple(out)


def is_subset(answer: Sequence[TrafficSelector], requested: Sequence[TrafficSelector]) -> bool:
    """Each answered selector lies inside one requested selector (the responder only narrowed)."""
    for a in answer:
        s = sel_from_ts(a)
        if s is None:
            return False
        inside = False
        for r in requested:
            rs = sel_from_ts(r)
            if rs is not None and intersect(s, rs) == s:
                inside = True
                break
        if not inside:
            return False
    return True
