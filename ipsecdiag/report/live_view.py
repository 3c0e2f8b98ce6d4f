"""The live dashboard: what the capture shows so far, redrawn a few times per second.

Reads a findings-so-far :class:`Report` snapshot plus the capture's own status (interface,
back end, drops, rates the live session measured); like every renderer it reads, never
computes protocol state. IKE SAs and ESP flows that have been quiet for ``idle`` seconds
leave the screen (they stay in the report and its counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from ..reconstruction.model import EspFlow, Finding, IkeSaRecord, Report
from .tables import ASCII_SIMPLE_HEAD, SEV_STYLE, STATE_STYLE
from .view import proposal_short

IDLE_SECONDS = 120.0
MAX_ROWS = 12  # per table; the report has them all


@dataclass
class LiveStatus:
    """The capture side of the dashboard, in plain values (renderers import no capture code)."""

    interface: str
    backend: str
    elapsed: float = 0.0  # seconds since the capture started
    frames: int = 0
    drops: str = ""  # "0 dropped (0 by the kernel)"
    dropped: int = 0
    writing: str = ""  # where the raw capture goes, "" when it is not kept
    stopping: bool = False
    # (spi, src, dst) -> (packets per second, bytes per second) over the last second or so
    esp_rates: dict[tuple[int, str, str], tuple[float, float]] = field(default_factory=dict)
    now_ts: float | None = None  # capture time of the newest frame: what "idle" is measured against


def _box(console: Console) -> box.Box:
    return box.SIMPLE_HEAD if console.is_terminal else ASCII_SIMPLE_HEAD


def _clock(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def _age(now: float | None, ts: float) -> str:
    if now is None:
        return "-"
    d = max(0.0, now - ts)
    return f"{d:.1f}s" if d < 60 else f"{int(d // 60)}m{int(d % 60):02d}s"


def _rate(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def _sa_last(sa: IkeSaRecord) -> tuple[float, str]:
    """Time and label of the newest message of an IKE SA."""
    best, label = sa.first_ts, "-"
    for e in sa.exchanges:
        for m in e.all_messages():
            if m.ts >= best:
                best = m.ts
                kind = "response" if m.is_response else "request"
                label = f"{e.type} {kind}" + (f" x{m.retransmissions + 1}" if m.retransmissions else "")
    return best, label


def _sa_last_ts(sa: IkeSaRecord) -> float:
    return max((m.ts for e in sa.exchanges for m in e.all_messages()), default=sa.first_ts)


class Dashboard:
    def __init__(self, report: Report, status: LiveStatus, *, idle: float = IDLE_SECONDS) -> None:
        self.r = report
        self.s = status
        self.idle = idle

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._header()
        yield Text("")
        yield self._findings(self.r.findings)
        yield Text("")
        yield self._ike(console)
        yield Text("")
        yield self._esp(console)

    def _header(self) -> Text:
        s, src = self.s, self.r.source
        m, sec = divmod(int(s.elapsed), 60)
        t = Text("ipsecdiag live", style="bold underline")
        t.append(f"  {s.interface} via {s.backend}  {m:02d}:{sec:02d}", style="bold")
        if s.stopping:
            t.append("  stopping…", style="yellow")
        t.append(
            f"\n{s.frames} frames: {src.ike_messages} IKE, {src.esp_packets} ESP, {src.ah_packets} AH, "
            f"{src.icmp_errors} ICMP errors; "
        )
        t.append(s.drops or "drops not reported yet", style="bold red" if s.dropped else "")
        if s.writing:
            t.append(f"\nwriting {s.writing}", style="dim")
        return t

    def _findings(self, findings: list[Finding]) -> Group | Text:
        if not findings:
            return Text("Findings: none so far.", style="green")
        rows = Table.grid(padding=(0, 1))
        rows.add_column(no_wrap=True)
        rows.add_column(no_wrap=True)
        rows.add_column(overflow="ellipsis", no_wrap=True)
        rows.add_column(style="dim", no_wrap=True)
        for f in findings[:MAX_ROWS]:
            frames = ", ".join(map(str, f.frames[:4])) + ("…" if len(f.frames) > 4 else "")
            rows.add_row(
                Text(f"{f.severity.label.upper():7}", style=SEV_STYLE[f.severity]),
                Text(f"[{f.id}]", style="bold"),
                Text(f.title),
                f"frames {frames}" if frames else "",
            )
        more = len(findings) - MAX_ROWS
        parts: list[Text | Table] = [Text(f"Findings ({len(findings)})", style="bold"), rows]
        if more > 0:
            parts.append(Text(f"… {more} more in the final report", style="dim"))
        return Group(*parts)

    def _ike(self, console: Console) -> Table | Text:
        now = self.s.now_ts
        active = [sa for sa in self.r.ike_sas if now is None or now - _sa_last_ts(sa) <= self.idle]
        hidden = len(self.r.ike_sas) - len(active)
        if not active:
            return Text(f"No active IKE SA ({hidden} idle)." if hidden else "No IKE SA yet.", style="dim")
        t = Table(title="IKE SAs", box=_box(console), title_justify="left", padding=(0, 0, 0, 1), pad_edge=False)
        for col in ("Ver", "Initiator -> Responder", "State", "Last exchange", "Age", "Proposal"):
            t.add_column(col, no_wrap=col != "Proposal", overflow="fold")
        for sa in active[-MAX_ROWS:]:
            ts, label = _sa_last(sa)
            t.add_row(
                f"v{sa.version}",
                f"{sa.initiator[0]}:{sa.initiator[1]} -> {sa.responder[0]}:{sa.responder[1]}",
                Text(sa.state + (" (inferred)" if sa.state_basis == "inferred" else ""), style=STATE_STYLE.get(sa.state, "")),
                label,
                _age(now, ts),
                proposal_short(sa.proposal),
            )
        if hidden or len(active) > MAX_ROWS:
            t.caption = f"{len(self.r.ike_sas)} IKE SAs in all, {hidden} idle"
        return t

    def _esp(self, console: Console) -> Table | Text:
        now = self.s.now_ts
        flows: list[EspFlow] = [f for f in self.r.esp_flows if now is None or now - f.last_ts <= self.idle]
        hidden = len(self.r.esp_flows) - len(flows)
        if not flows:
            return Text(f"No active ESP flow ({hidden} idle)." if hidden else "No ESP yet.", style="dim")
        t = Table(title="ESP flows", box=_box(console), title_justify="left", padding=(0, 0, 0, 1), pad_edge=False)
        for col in ("SPI", "Src -> Dst", "Pkts", "Pkt/s", "Byte/s", "Last seen"):
            t.add_column(col, no_wrap=True, justify="right" if col in ("Pkts", "Pkt/s", "Byte/s") else "left")
        for f in sorted(flows, key=lambda f: -f.last_ts)[:MAX_ROWS]:
            pps, bps = self.s.esp_rates.get((f.spi, f.src, f.dst), (0.0, 0.0))
            t.add_row(
                f"{f.spi:08x}",
                f"{f.src} -> {f.dst}" + (f" (UDP {f.sport})" if f.encap == "udp" else ""),
                str(f.packets),
                _rate(pps),
                _rate(bps),
                _clock(f.last_ts),
            )
        if hidden or len(flows) > MAX_ROWS:
            t.caption = f"{len(self.r.esp_flows)} ESP flows in all, {hidden} idle"
        return t


def finding_line(f: Finding, at: float | None) -> str:
    """One line per new finding, for output that is not a terminal."""
    frames = ",".join(map(str, f.frames[:6])) + ("…" if len(f.frames) > 6 else "")
    tail = f" (frames {frames})" if frames else ""
    return f"{_clock(at)} {f.severity.label.upper()} [{f.id}] {f.title}{tail}"
