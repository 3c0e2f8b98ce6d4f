"""Rich renderables for a Report: the verdict, findings and exchange ladders, composed with the
tables of report/tables.py.

Each section is a renderable (``__rich_console__``), so the terminal view is composed rather
than printed; tests render to a fixed-width Console. Without a TTY, the CLI builds the Console
with ``no_color`` and ASCII boxes, so the same renderables degrade to plain text.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.console import Console, ConsoleOptions, Group, RenderResult
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
from .childsa import child_sa_rows
from .tables import SEV_STYLE, AhTable, ChildSaTable, EspTable, Header, IkeSaTable
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

    def __init__(self, sa: IkeSaRecord, index: int, t0: float | None) -> None:
        self.sa = sa
        self.index = index
        self.t0 = t0

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
        for e in sa.exchanges:
            for m in e.all_messages():
                arrow = "I -->" if m.from_initiator else "<-- R"
                ts = f"+{m.ts - self.t0:.3f}" if self.t0 is not None else ""
                t.add_row(str(m.first_frame), ts, arrow, _msg_label(e, m))
                line = digest(message_details(m))
                if line:
                    t.add_row("", "", "", Text(line, style="dim"))
            if e.version == 2 and e.unanswered:
                t.add_row(
                    "",
                    "",
                    Text("  X  ", style="bold red"),
                    Text(f"no response to {e.type} #{e.message_id}", style="bold red"),
                )
        yield t


def _ranges(nums: list[int]) -> str:
    """1-3,7 for [1, 2, 3, 7]; the first two runs only (the count says how many)."""
    runs: list[list[int]] = []
    for n in nums:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs[:2]]
    return ",".join(parts) + (",..." if len(runs) > 2 else "")


class FindingsView:
    """The findings, numbered as in the whole report (the verdict says "see finding N"), those
    below ``min_severity`` left out and counted; ``brief``: one line each (severity, id,
    title, first frames)."""

    def __init__(
        self,
        findings: list[Finding],
        *,
        verbose: bool = True,
        brief: bool = False,
        min_severity: Severity = Severity.INFO,
    ) -> None:
        self.findings = findings
        self.verbose = verbose
        self.brief = brief
        self.min_severity = min_severity

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.findings:
            yield Text("Findings: none. The capture shows no problem ipsecdiag knows about.", style="green")
            return
        counts = {s: sum(1 for f in self.findings if f.severity == s) for s in Severity}
        shown = [(i, f) for i, f in enumerate(self.findings, 1) if f.severity >= self.min_severity]
        hidden = len(self.findings) - len(shown)
        yield Text(
            f"Findings ({counts[Severity.ERROR]} error, {counts[Severity.WARNING]} warning, "
            f"{counts[Severity.INFO]} info"
            + (f"; {hidden} below {self.min_severity.label} not shown" if hidden else "")
            + ")",
            style="bold underline",
        )
        if self.brief:
            yield from self._brief(shown)
            return
        for i, f in shown:
            yield from self._one(i, f)

    def _brief(self, shown: list[tuple[int, Finding]]) -> Iterator[Table]:
        """One line per finding; findings with the same id and title share one line that
        gives their numbers and how many there are (a busy capture fits a screen)."""
        groups: dict[tuple[str, str], list[tuple[int, Finding]]] = {}
        for i, f in shown:
            groups.setdefault((f.id, f.title), []).append((i, f))
        line = Table.grid(padding=(0, 1))
        line.add_column(no_wrap=True, justify="right")
        line.add_column(no_wrap=True)
        line.add_column()
        for members in groups.values():
            nums = [i for i, _ in members]
            f = members[0][1]
            frames = [n for _, m in members for n in m.frames[:3]][:3]
            more = len(members) > 1 or len(f.frames) > 3
            where = f" (frame{'s' if len(frames) > 1 else ''} {', '.join(map(str, frames))}{', ...' if more else ''})"
            label = f"{nums[0]}." if len(nums) == 1 else _ranges(nums)
            count = f" x{len(members)}" if len(members) > 1 else ""
            text = Text(f"[{f.id}]", style="bold") + Text(f"{count} {f.title}" + (where if frames else ""))
            line.add_row(label, Text(f"{f.severity.label.upper():7}", style=SEV_STYLE[f.severity]), text)
        yield line


    def _one(self, i: int, f: Finding) -> Iterator[Text | Table]:
        head = Text(f"{i}. ")
        head.append(f"{f.severity.label.upper():7}", style=SEV_STYLE[f.severity])
        head.append(f" [{f.id}]", style="bold")
        # A long title wraps under itself, not under the number.
        line = Table.grid(padding=(0, 1))
        line.add_column(no_wrap=True)
        line.add_column(overflow="fold")
        line.add_row(head, f.title)
        yield line
        t = Table.grid(padding=(0, 1))
        t.add_column(style="dim", no_wrap=True)
        t.add_column(overflow="fold")
        t.add_row("", f.explanation)
        if f.frames:
            fr = ", ".join(map(str, f.frames[:25])) + (
                f" … ({len(f.frames)} frames)" if len(f.frames) > 25 else ""
            )
            t.add_row("frames", fr)
        for ev in f.evidence:
            t.add_row("evidence", ev)
        if self.verbose and f.cause:
            t.add_row("cause", f.cause)
        t.add_row("fix", Text(f.remediation, style="green"))
        yield t


# Without --ladder, the ladders are drawn when there are at most this many IKE SAs.
AUTO_LADDERS = 3


def report_renderable(
    report: Report,
    *,
    ladders: bool | None = None,
    max_ladders: int = 20,
    brief: bool = False,
    min_severity: Severity = Severity.INFO,
) -> Group:
    """The verdict, then the findings (what the user came for), then the evidence tables.
    ``ladders`` None: drawn when there are at most AUTO_LADDERS IKE SAs. ``brief``: the
    verdict and one line per finding, nothing else."""
    v = verdict(report)
    head = Text(v.text, style=SEV_STYLE.get(v.severity, "green") if v.severity != Severity.INFO else "green")
    findings = FindingsView(report.findings, brief=brief, min_severity=min_severity)
    if brief:
        return Group(Text(", ".join(report.source.files), style="bold"), head, findings)
    parts: list[object] = [head, Text(""), Header(report), Text(""), findings, Text(""), IkeSaTable(report)]
    rows = child_sa_rows(report)
    if rows:
        parts += [Text(""), ChildSaTable(rows, report)]
    if ladders is None:
        ladders = len(report.ike_sas) <= AUTO_LADDERS
    if ladders:
        t0 = report.source.first_ts
        for i, sa in enumerate(report.ike_sas[:max_ladders], 1):
            parts += [Text(""), Ladder(sa, i, t0)]
        if len(report.ike_sas) > max_ladders:
            parts.append(
                Text(f"({len(report.ike_sas) - max_ladders} more IKE SAs not shown; use --json)", style="dim")
            )
    if report.esp_flows:
        parts += [Text(""), EspTable(report)]
    if report.ah_flows:
        parts += [Text(""), AhTable(report)]
    return Group(*parts)  # type: ignore[arg-type]


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
