"""Rich renderables for a Report: the verdict, findings and exchange ladders, composed with the
tables of report/tables.py.

Each section is a renderable (``__rich_console__``), so the terminal view is composed rather
than printed; tests render to a fixed-width Console. Without a TTY, the CLI builds the Console
with ``no_color`` and ASCII boxes, so the same renderables degrade to plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from ..reconstruction.model import (
    ExchangeRecord,
    Finding,
    IkeSaRecord,
    MessageRecord,
    Report,
    Severity,
)
from ..reconstruction.time_order import unanswered_outcome
from .childsa import ChildSaRow, child_sa_rows
from .condensed import (
    CHILD_ROWS,
    EVIDENCE_SPLIT,
    FINDINGS_BUDGET,
    TABLE_ROWS,
    ChildSaGroups,
    IkeSaGroups,
    body_grid,
    brief_grid,
    brief_line,
    condensed_findings,
    esp_summary,
    group_findings,
    head_line,
)
from .tables import SEV_STYLE, AhTable, Breakable, ChildSaTable, EspTable, Header, IkeSaTable
from .verdict import verdict
from .view import digest, message_details


def _msg_label(e: ExchangeRecord, m: MessageRecord) -> Text:
    pl = " ".join(m.payloads)
    t = Text()
    t.append(e.type, style="bold")
    t.append(f" #{e.message_id} ")
    t.append("resp" if m.is_response else "req", style="dim")
    t.append(f" [{pl}]")
    if m.notifies:
        errs = [n for n in m.notifies]
        t.append(" N(" + ", ".join(errs) + ")", style="magenta")
    extra = []
    if m.retransmissions:
        extra.append(f"x{m.retransmissions + 1} sent")
    if m.ip_fragmented:
        extra.append(f"{max(tr.ip_fragments for tr in m.transmissions)} IP frags")
    if m.ikev2_fragments:
        extra.append(
            f"{m.ikev2_fragments} IKE frags"
            + (f", {m.fragments_missing} missing" if m.fragments_missing else "")
        )
    if m.encrypted and not m.decrypted:
        extra.append(m.decrypt_error or "encrypted")
    if m.malformed:
        extra.append("MALFORMED: " + m.malformed)
    if extra:
        t.append(" (" + "; ".join(extra) + ")", style="yellow")
    return t


class Ladder:
    """Initiator <-> responder arrows for every exchange of one IKE SA."""

    def __init__(self, sa: IkeSaRecord, index: int, t0: float | None, report: Report | None = None) -> None:
        self.sa = sa
        self.index = index
        self.t0 = t0
        # its end and gaps: a request sent once just before either may have been answered
        # (none known without it: every request without a response reads unanswered)
        self.report = report if report is not None else Report()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        sa = self.sa
        head = Text(f"IKE SA #{self.index} ladder: ", style="bold")
        head.append(f"I {sa.initiator[0]}", style="blue")
        head.append("  <->  ")
        head.append(f"R {sa.responder[0]}", style="green")
        yield head
        spis = Text(f"SPIs {sa.spi_i.hex()} / {sa.spi_r.hex() if sa.spi_r else '-'}", style="dim")
        if sa.rekeyed_from:
            spis.append(f"  ({'probably ' if sa.rekey_inferred else ''}rekey of {sa.rekeyed_from})")
        yield spis
        t = Table(box=None, show_header=False, padding=(0, 1), expand=False)
        t.add_column("frame", justify="right", style="dim")
        t.add_column("time", justify="right", style="dim")
        t.add_column("dir")
        t.add_column("message", overflow="fold")
        if sa.version == 1:
            # IKEv1 exchanges interleave (an Informational amid a Main Mode that goes on after
            # it): one row per message in time order, not exchange by exchange.
            # An exchange the other side never answered is marked after its last message.
            rows = [(m.ts, m.first_frame, 0, ex, m) for ex in sa.exchanges for m in ex.all_messages()]
            rows += [(m.ts, m.first_frame, 1, ex, None) for ex in sa.exchanges if ex.unanswered and (m := ex.last_sent)]
            for _ts, _f, _k, ex, msg in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
                if msg is not None:
                    self._message_row(t, ex, msg)
                else:
                    self._fate_row(t, ex, f"{ex.type} #{ex.message_id}")
            yield t
            return
        for e in sa.exchanges:
            for m in e.all_messages():
                self._message_row(t, e, m)
            self._fate_row(t, e, f"{e.type} #{e.message_id}")
        yield t

    def _fate_row(self, t: Table, e: ExchangeRecord, name: str) -> None:
        fate = unanswered_outcome(self.report, e)
        if fate is not None:
            style = "bold red" if fate.kind == "lost" else "yellow"
            mark = "  X  " if fate.kind == "lost" else "  …  "
            t.add_row("", "", Text(mark, style=style), Text(fate.words(name), style=style))

    def _message_row(self, t: Table, e: ExchangeRecord, m: MessageRecord) -> None:
        arrow = "I -->" if m.from_initiator else "<-- R"
        ts = f"+{m.ts - self.t0:.3f}" if self.t0 is not None else ""
        t.add_row(str(m.first_frame), ts, arrow, _msg_label(e, m))
        line = digest(message_details(m))
        if line:
            t.add_row("", "", "", Text(line, style="dim"))


class FindingsView:
    """The findings, numbered as in the whole report (the verdict says "see finding N"), those
    below ``min_severity`` left out and counted; ``brief``: one line each (severity, id,
    title, first frames). Unless ``full``, findings longer than the budget of the default
    view are condensed (report/condensed.py) and the first line says so."""

    def __init__(
        self,
        findings: list[Finding],
        *,
        verbose: bool = True,
        brief: bool = False,
        full: bool = False,
        min_severity: Severity = Severity.INFO,
    ) -> None:
        self.findings = findings
        self.verbose = verbose
        self.brief = brief
        self.full = full
        self.min_severity = min_severity

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.findings:
            yield Text("Findings: none. The capture shows no problem ipsecdiag knows about.", style="green")
            return
        counts = {s: sum(1 for f in self.findings if f.severity == s) for s in Severity}
        shown = [(i, f) for i, f in enumerate(self.findings, 1) if f.severity >= self.min_severity]
        hidden = len(self.findings) - len(shown)
        head = (
            f"Findings ({counts[Severity.ERROR]} error, {counts[Severity.WARNING]} warning, "
            f"{counts[Severity.INFO]} info"
            + (f"; {hidden} below {self.min_severity.label} not shown" if hidden else "")
        )
        if self.brief:
            yield Text(head + ")", style="bold underline")
            grid = brief_grid()
            for g in group_findings(shown):
                brief_line(grid, g)
            yield grid
            return
        if not self.full and not self._fits(shown, console, options):
            parts, condensed = condensed_findings(shown, console, options)
            yield Text(head + (", condensed: --full shows all)" if condensed else ")"), style="bold underline")
            yield from parts  # type: ignore[misc]
            return
        yield Text(head + ")", style="bold underline")
        for i, f in shown:
            yield from self._one(i, f)

    def _fits(self, shown: list[tuple[int, Finding]], console: Console, options: ConsoleOptions) -> bool:
        """Whether the findings in full fit the default view's budget. Far too long ones (a
        flood's evidence) are not laid out to find out."""
        chars = max(options.max_width - 10, 20)
        estimate = sum(
            3 + len(f.evidence) + (len(f.explanation) + len(f.cause) + len(f.remediation) + sum(map(len, f.evidence))) // chars
            for _, f in shown
        )
        if estimate > 4 * FINDINGS_BUDGET:
            return False
        parts = [x for i, f in shown for x in self._one(i, f)]
        return len(console.render_lines(Group(*parts), options, pad=False)) <= FINDINGS_BUDGET

    def _one(self, i: int, f: Finding) -> Iterator[Text | Table]:
        yield head_line(i, f, f.title)
        t = body_grid(f)
        if f.frames:
            fr = ", ".join(map(str, f.frames[:25])) + (
                f" … ({len(f.frames)} frames)" if len(f.frames) > 25 else ""
            )
            t.add_row("frames", fr)
        for ev in f.evidence:  # proposals and algorithm lists wrap at '/', never inside a name
            t.add_row("evidence", Breakable(ev, split=EVIDENCE_SPLIT))
        if self.verbose and f.cause:
            t.add_row("cause", f.cause)
        t.add_row("fix", Text(f.remediation, style="green"))
        yield t


# Without --ladder, the ladders are drawn when there are at most this many IKE SAs.
AUTO_LADDERS = 3


# The default view of one capture: its full form when it fits this many lines, otherwise
# condensed (issue 13: a busy capture in at most ~150 lines at 80 columns).
REPORT_LINES = 150


def report_renderable(
    report: Report,
    *,
    ladders: bool | None = None,
    max_ladders: int = 20,
    brief: bool = False,
    full: bool = False,
    min_severity: Severity = Severity.INFO,
) -> Group:
    """The verdict, then the findings (what the user came for), then the evidence tables.
    ``ladders`` None: drawn when there are at most AUTO_LADDERS IKE SAs. ``brief``: the
    verdict and one line per finding, nothing else. ``full``: every finding's evidence and
    every row (and every ladder asked for). Otherwise the full form when it fits
    REPORT_LINES at the console's width, else the condensed one (report/condensed.py)."""
    v = verdict(report)
    head = Text(v.text, style=SEV_STYLE.get(v.severity, "green") if v.severity != Severity.INFO else "green")
    if brief:
        findings = FindingsView(report.findings, brief=True, min_severity=min_severity)
        return Group(Text(", ".join(report.source.files), style="bold"), head, findings)
    rows = child_sa_rows(report)

    def parts(condense: bool) -> Group:
        return Group(*_sections(report, head, rows, condense, ladders, max_ladders, min_severity))  # type: ignore[arg-type]

    return parts(False) if full else Group(FittedReport(report, rows, parts))


class FittedReport:
    """The full report when it fits REPORT_LINES lines, otherwise the condensed one. A report
    whose rows alone take more lines than that (a flood) is not laid out to find out."""

    def __init__(self, report: Report, rows: list[ChildSaRow], parts: Callable[[bool], Group]) -> None:
        self.report = report
        self.rows = rows
        self.parts = parts

    def _at_least(self) -> int:
        """Fewer lines than the full report takes: two per IKE SA and ESP flow, four per
        CHILD SA, three per finding and one per evidence line."""
        r = self.report
        return (
            2 * (len(r.ike_sas) + len(r.esp_flows))
            + 4 * len(self.rows)
            + sum(3 + len(f.evidence) for f in r.findings)
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self._at_least() <= REPORT_LINES:
            lines = console.render_lines(self.parts(False), options, pad=False)
            if len(lines) <= REPORT_LINES:
                # The lines laid out to count them are the output: laying the report out
                # again took half of a small capture's rendering (40 ms).
                for line in lines:
                    yield from line
                    yield Segment.line()
                return
        yield self.parts(True)


def _sections(
    report: Report,
    head: Text,
    rows: list[ChildSaRow],
    condense: bool,
    ladders: bool | None,
    max_ladders: int,
    min_severity: Severity,
) -> list[object]:
    """The report's parts: in full, or with busy sections condensed (findings over their
    budget, tables of many rows grouped by address pair)."""
    findings = FindingsView(report.findings, full=not condense, min_severity=min_severity)
    many_sas = condense and len(report.ike_sas) > TABLE_ROWS
    parts: list[object] = [head, Text(""), Header(report), Text(""), findings, Text("")]
    parts.append(IkeSaGroups(report) if many_sas else IkeSaTable(report))
    grouped = condense and len(rows) > CHILD_ROWS
    if rows:
        parts += [Text(""), ChildSaGroups(rows, report) if grouped else ChildSaTable(rows, report)]
    if ladders is None:
        ladders = len(report.ike_sas) <= AUTO_LADDERS
    if ladders:
        limit = max_ladders if condense else len(report.ike_sas)
        t0 = report.source.first_ts
        for i, sa in enumerate(report.ike_sas[:limit], 1):
            parts += [Text(""), Ladder(sa, i, t0, report)]
        if len(report.ike_sas) > limit:
            parts.append(
                Text(f"({len(report.ike_sas) - limit} more IKE SAs not shown; --full or --json)", style="dim")
            )
    if report.esp_flows:
        many = grouped and len(report.esp_flows) > TABLE_ROWS
        parts += [Text(""), esp_summary(report) if many else EspTable(report)]
    if report.ah_flows:
        parts += [Text(""), AhTable(report)]
    return parts


def render_text(renderables: list[object], *, width: int, terminal: bool) -> str:
    """The report as text ``width`` columns wide: coloured for a terminal, otherwise plain
    ASCII with no trailing spaces on any line (rich pads table cells to the column width)."""
    import io

    buf = io.StringIO()
    console = Console(
        file=buf,
        width=width,
        force_terminal=terminal,
        no_color=not terminal,
        color_system="auto" if terminal else None,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    for r in renderables:
        console.print(r)
    text = buf.getvalue()
    if terminal:
        return text
    return "\n".join(line.rstrip() for line in text.split("\n"))
