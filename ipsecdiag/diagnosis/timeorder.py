"""Whether the capture's record times go forward with its frames.

A capture merged from several files, or taken on several interfaces at once (``-i any``, a
bond, a mirror of two ports), may hold frames out of time order. The reconstruction puts each
IKE SA's messages and transmissions in time order (reconstruction.ike_finish.in_time_order) and the
capture's span is its earliest and latest time, so spans, retransmission intervals and liveness
checks are judged on time. What follows frame order is the ESP tracker's per-flow view: a
flow's first and last packet, sequence reordering and replays, idle gaps. The checks that read
those say what they cannot judge when the capture is out of order; capture-health says it once.

The reader counts every frame whose time steps back (capture/timesteps.py); a capture read in
byte ranges or live compares only the frames the analysis keeps a time for (IKE messages, each
ESP flow's first and last packet and its sequence events, NAT-T keepalives, ICMP errors), and
says so (reconstruction/time_order.py, where the renderers read it too).
"""

from __future__ import annotations

from ..capture.timesteps import TOLERANCE
from ..reconstruction.model import MessageRecord
from ..reconstruction.time_order import NOT_JUDGED, Inversion, TimeOrder, flow_times, out_of_order, time_order

__all__ = ["NOT_JUDGED", "TOLERANCE", "Inversion", "TimeOrder", "flow_times", "out_of_order", "sent_times", "time_order"]


def sent_times(m: MessageRecord, dup_seconds: float) -> list[float]:
    """When a message was sent, its transmissions in time order without the capture's own
    copies: a copy within ``dup_seconds`` of the previous one (the same packet seen on two
    interfaces or a mirror port) is not a retransmission."""
    out: list[float] = []
    for t in sorted(t.ts for t in m.transmissions):
        if not out or t - out[-1] > dup_seconds:
            out.append(t)
    return out
