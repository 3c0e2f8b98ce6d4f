"""SVG drawings for the HTML report: the exchange ladder of an IKE SA and the ESP activity plot
of a CHILD SA. Plain SVG markup (inline in the HTML, no script): hover text is SVG ``<title>``.

The ladder is a sequence diagram in message order (not to time scale: a 30-second wait and a
1-millisecond answer would not both be readable); the time of each transmission is written
beside it. Every transmission is an arrow, so a retransmission is visible as another arrow,
dashed; a request never answered ends in a cross before the other lane. A request the capture
cannot show unanswered (sent once just before the capture ended, or before a gap in it: see
``reconstruction.time_order.unanswered_outcome``, the ike-unanswered check's reading) gets an
amber note saying so instead, never "no response".

The ESP plot is to time scale, one lane each way: the span between the first and the last
packet with the idle gaps the tracker recorded (``SequenceStats.idle_gaps``) cut out of it,
bars of the packet rate per bin of the flow's histogram (``EspFlow.timeline``, collected when
the HTML report is asked for: AnalysisOptions.esp_timeline), and marks at the times of
replays, sequence resets, ESN wraps and the first ICV failures (``EspFlow.failed_ts``).
Missing sequence numbers have a count but no recorded time: it is written on the lane.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from ..reconstruction.model import (
    EspFlow,
    ExchangeRecord,
    IkeSaRecord,
    MessageRecord,
    Report,
    raw_seconds,
    utc_datetime,
)
from ..reconstruction.time_order import Unanswered, unanswered_outcome
from .view import digest, message_details

LADDER_W = 760
LANE_I, LANE_R = 150, 610
ROW_H = 40


def _a(text: object) -> str:
    return escape(str(text), quote=True)


def _msg_text(e: ExchangeRecord, m: MessageRecord, errors: set[str]) -> tuple[str, str]:
    """The arrow's label and its hover text (payloads, notifies, decrypted facts). The label
    names error notifies only (it must fit between the lanes); the hover text has them all."""
    kind = "response" if m.is_response else "request"
    label = f"{e.type} #{e.message_id} {'resp' if m.is_response else 'req'}"
    bad = [n for n in m.notifies if n in errors]
    if bad:
        label += " N(" + ", ".join(bad[:2]) + (", ..." if len(bad) > 2 else "") + ")"
    hover = [f"{e.type} {kind}, message id {e.message_id}, {m.size} bytes, frames {_frames(m.frames)}"]
    hover.append("payloads: " + (" ".join(m.payloads) or "-"))
    if m.notifies:
        hover.append("notifies: " + ", ".join(m.notifies))
    if m.encrypted:
        hover.append("decrypted" if m.decrypted else f"encrypted, not decrypted ({m.decrypt_error or 'no keys'})")
    line = digest(message_details(m))
    if line:
        hover.append(line)
    if m.malformed:
        hover.append("MALFORMED: " + m.malformed)
    return label, "\n".join(hover)


def _frames(frames: list[int]) -> str:
    return ", ".join(map(str, frames[:8])) + (f" ... ({len(frames)})" if len(frames) > 8 else "")


def ladder_svg(sa: IkeSaRecord, report: Report, error_notifies: set[str]) -> str:
    """One IKE SA of ``report`` as a sequence diagram: initiator lane left, responder lane right."""
    rows: list[tuple[float, int, ExchangeRecord, MessageRecord, int]] = []
    unanswered: list[tuple[float, int, ExchangeRecord, Unanswered]] = []
    for e in sa.exchanges:
        for m in e.all_messages():
            for k, t in enumerate(m.transmissions):
                rows.append((t.ts, t.frames[0] if t.frames else 0, e, m, k))
        fate = unanswered_outcome(report, e)
        sent = e.last_sent
        if fate is not None and sent is not None and sent.transmissions:
            last = sent.transmissions[-1]
            unanswered.append((last.ts + 1e-9, (last.frames[0] if last.frames else 0), e, fate))
    events: list[tuple[float, int, str, object]] = [(ts, fr, "msg", (e, m, k)) for ts, fr, e, m, k in rows]
    events += [(ts, fr, "fate", (e, fate)) for ts, fr, e, fate in unanswered]
    events.sort(key=lambda x: (x[0], x[1], x[2] == "fate"))
    height = 70 + ROW_H * len(events) + 20
    t0 = report.source.first_ts
    base = t0 if t0 is not None else (events[0][0] if events else 0.0)
    out = [
        f'<svg class="ladder" data-ike-sa="{_a(sa.key)}" viewBox="0 0 {LADDER_W} {height}" '
        f'width="{LADDER_W}" height="{height}" role="img" aria-label="IKE SA {_a(sa.key)} exchange ladder">',
        f'<text x="{LANE_I}" y="18" class="lane-head" text-anchor="middle">Initiator {_a(sa.initiator[0])}</text>',
        f'<text x="{LANE_R}" y="18" class="lane-head" text-anchor="middle">Responder {_a(sa.responder[0])}</text>',
        f'<text x="{LANE_I}" y="34" class="lane-sub" text-anchor="middle">port {sa.initiator[1]}</text>',
        f'<text x="{LANE_R}" y="34" class="lane-sub" text-anchor="middle">port {sa.responder[1]}</text>',
        f'<line x1="{LANE_I}" y1="42" x2="{LANE_I}" y2="{height - 10}" class="lane"/>',
        f'<line x1="{LANE_R}" y1="42" x2="{LANE_R}" y2="{height - 10}" class="lane"/>',
    ]
    for i, (ts, frame, kind, obj) in enumerate(events):
        y = 70 + ROW_H * i
        when = f"#{frame} +{ts - base:.3f}s"
        if kind == "fate":
            e, fate = obj  # type: ignore[misc]
            out.append(_fate_mark(e, fate, y))
            continue
        e, m, k = obj  # type: ignore[misc]
        label, hover = _msg_text(e, m, error_notifies)
        cls = ["msg"]
        if k:
            cls.append("retransmit")
            label = f"retransmission {k} of {label}"
        if any(n in error_notifies for n in m.notifies):
            cls.append("error")
        if (m.encrypted and not m.decrypted) or m.malformed or m.fragments_missing:
            cls.append("warn")
        x1, x2 = (LANE_I, LANE_R) if m.from_initiator else (LANE_R, LANE_I)
        head = x2 - 8 if x2 > x1 else x2 + 8
        out.append(
            f'<g class="{" ".join(cls)}" data-frame="{frame}"><title>{_a(hover)}</title>'
            f'<text x="{(x1 + x2) / 2}" y="{y - 6}" text-anchor="middle">{_a(label)}</text>'
            f'<line x1="{x1}" y1="{y}" x2="{head}" y2="{y}"/>'
            f'<polygon points="{x2},{y} {head},{y - 5} {head},{y + 5}"/>'
            f'<text x="4" y="{y + 4}" class="when">{_a(when)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _fate_mark(e: ExchangeRecord, fate: Unanswered, y: int) -> str:
    """After a request without a response: a cross when the capture shows it unanswered,
    otherwise an amber note (the capture ended or paused before an answer could show), in the
    ladders' common words (``Unanswered.words``)."""
    words = fate.words(f"{e.type} #{e.message_id}")
    xm = (LANE_I + LANE_R) / 2
    if fate.kind == "lost":
        return (
            f'<g class="lost"><title>{_a(words)} in the capture</title>'
            f'<line x1="{xm - 9}" y1="{y - 9}" x2="{xm + 9}" y2="{y + 9}"/>'
            f'<line x1="{xm - 9}" y1="{y + 9}" x2="{xm + 9}" y2="{y - 9}"/>'
            f'<text x="{xm + 16}" y="{y + 4}">{_a(words)}</text></g>'
        )
    hover = words if fate.kind == "in-flight" else f"{words}: {fate.why}"
    return (
        f'<g class="pending" data-outcome="{fate.kind}"><title>{_a(hover)}; no evidence of a silent peer</title>'
        f'<text x="{xm}" y="{y + 4}" text-anchor="middle">… {_a(words)}</text></g>'
    )


PLOT_W, PLOT_X0, PLOT_X1 = 760, 150, 740
BAR_H = 30  # tallest packet-rate bar, above the lane's span


def _bars(f: EspFlow, y: float, peak: float, x: Callable[[float], float]) -> str:
    """The flow's histogram as bars standing on the lane (baseline ``y``), height by packet
    rate (packets per second of the bin, so lanes with different bin widths compare), the
    highest rate of the plot ``peak`` drawn BAR_H tall."""
    tl = f.timeline
    if tl is None:
        return ""
    w = tl.bin_seconds
    out = [f'<g class="bars" data-packets="{sum(tl.packets)}" data-bin-seconds="{w}">']
    for i, (p, b) in enumerate(zip(tl.packets, tl.bytes, strict=True)):
        if not p:
            continue
        t = tl.start + i * w
        x0, x1 = x(t), x(t + w)
        width = max(round(x1 - x0, 1), 2.0)  # visible when the bin is narrow or clipped at the end
        x0 = min(x0, PLOT_X1 - width)
        h = max(1.0, round(BAR_H * p / w / peak, 1))
        out.append(
            f'<rect class="bar" data-packets="{p}" x="{x0}" y="{round(y - h, 1)}" width="{width}" '
            f'height="{h}"><title>{p} packets, {b} bytes in {_dur(w)} from {_clock(t)}</title></rect>'
        )
    out.append("</g>")
    return "".join(out)


def _dur(w: float) -> str:
    return f"{w:g} s" if w >= 1 else f"{w * 1000:.3g} ms"


def _clock(ts: float) -> str:
    when = utc_datetime(ts)  # a record time no date can show is raw seconds (issue 14)
    return raw_seconds(ts) if when is None else when.strftime("%H:%M:%S.%f")[:-3] + " UTC"


def _peak_rate(flows: list[tuple[str, EspFlow]]) -> float:
    rates = [p / f.timeline.bin_seconds for _, f in flows if f.timeline is not None for p in f.timeline.packets]
    return max(rates, default=0.0) or 1.0


def esp_plot_svg(label: str, flows: list[tuple[str, EspFlow]], t_first: float, t_last: float) -> str:
    """The ESP activity of one CHILD SA, each way on its own lane, on the time axis
    ``t_first .. t_last`` (the capture's span, so plots of one capture line up)."""
    span = max(t_last - t_first, 1e-6)

    def x(ts: float) -> float:
        ts = min(max(ts, t_first), t_first + span)  # a histogram bin may reach past the capture
        return round(PLOT_X0 + (PLOT_X1 - PLOT_X0) * (ts - t_first) / span, 1)

    bars = any(f.timeline is not None for _, f in flows)
    lane_h = 46 + (BAR_H if bars else 0)
    peak = _peak_rate(flows)
    height = 28 + lane_h * len(flows) + 22
    spis = " ".join(f"{f.spi:08x}" for _, f in flows)
    out = [
        f'<svg class="esp-plot" data-spis="{spis}" viewBox="0 0 {PLOT_W} {height}" width="{PLOT_W}" '
        f'height="{height}" role="img" aria-label="ESP {_a(label)}">',
        f'<text x="4" y="16" class="plot-head">{_a(label)}</text>',
    ]
    for i, (way, f) in enumerate(flows):
        y = 28 + lane_h * i + 14 + (BAR_H if bars else 0)
        s = f.seq
        out.append(f'<g class="esp-lane" data-spi="{f.spi:08x}">')
        out.append(f'<text x="4" y="{y + 4}" class="way">{_a(way)} {f.spi:08x}</text>')
        out.append(
            f'<rect class="active" x="{x(f.first_ts)}" y="{y - 6}" width="{max(x(f.last_ts) - x(f.first_ts), 2)}" '
            f'height="12"><title>{f.packets} packets, {f.bytes} bytes, frames {f.first_frame}..{f.last_frame}, '
            f"sequence {f.seq_first}..{f.seq_last}</title></rect>"
        )
        for start, end, _a_frame, _b_frame in s.idle_gaps:
            out.append(
                f'<rect class="gap" x="{x(start)}" y="{y - 7}" width="{max(x(end) - x(start), 1)}" height="14">'
                f"<title>no packet for {end - start:.1f} s</title></rect>"
            )
        out.append(_bars(f, y + 6, peak, x))
        marks = [(ts, "replay", f"replay: frame {fr}, sequence {seq} ({why})") for fr, ts, seq, why in s.replay_events]
        marks += [(ts, "reset", f"sequence reset: frame {fr}, {a} -> {b}") for fr, ts, a, b in s.reset_events]
        marks += [(ts, "wrap", f"ESN wrap: frame {fr}") for fr, ts in s.wrap_events]
        marks += [(ts, "icv", f"ICV failure: frame {fr}") for fr, ts in zip(f.failed_frames, f.failed_ts, strict=False)]
        for ts, cls, text in marks:
            out.append(
                f'<path class="mark {cls}" d="M{x(ts)},{y - 8} l5,-8 h-10 z"><title>{_a(text)}</title></path>'
            )
        notes = [f"{f.packets} pkts", f"{f.bytes} B"]
        if f.gaps:
            notes.append(f"{f.gaps} seq missing")
        if s.replays:
            notes.append(f"{s.replays} replays")
        if f.integrity_failed:
            placed = len(f.failed_ts)
            more = f" (first {placed} marked)" if placed < f.integrity_failed else ""
            notes.append(f"{f.integrity_failed} ICV failures{more}")
        if s.idle_gaps_dropped:
            notes.append(f"{s.idle_gaps_dropped} more gaps")
        cls = "notes bad" if f.integrity_failed or s.replays else "notes"
        out.append(f'<text x="{PLOT_X0}" y="{y + 22}" class="{cls}">{_a(", ".join(notes))}</text></g>')
    out.append(f'<line class="axis" x1="{PLOT_X0}" y1="{height - 16}" x2="{PLOT_X1}" y2="{height - 16}"/>')
    out.append(f'<text x="{PLOT_X0}" y="{height - 4}" class="tick">+0 s</text>')
    out.append(
        f'<text x="{PLOT_X1}" y="{height - 4}" class="tick" text-anchor="end">+{t_last - t_first:.3f} s</text>'
    )
    out.append("</svg>")
    return "".join(out)
