"""The default terminal view of a busy capture: findings and tables condensed so the report
stays a few screens long (issue 13: at most ~150 lines at 80 columns; issue 14: floods of
thousands of SAs or SPIs in a few hundred at most). ``--full`` shows everything.

Nothing is hidden silently: every condensed part says how much it left out and that ``--full``
shows it; the counts of errors, warnings and infos stay on the findings' first line, an
error finding is never reduced below its own line, and totals (packets, bytes, bad ICVs,
states) are summed over the rows a group stands for. The JSON report is not affected.

Findings with the same severity, id and title form a group: the first is shown with its
explanation, the start of its evidence, cause and fix; the others with one line each (what
tells them apart). When that is still too long, the info groups and then the warning groups
become one line each, as ``--brief`` shows them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from rich.console import Console, ConsoleOptions, Group, JustifyMethod, RenderResult
from rich.table import Table
from rich.text import Text

from ..reconstruction.model import EspFlow, Finding, Report, Severity
from ..reconstruction.time_order import out_of_order
from .childsa import ChildSaRow
from .tables import SEV_STYLE, STATE_STYLE, Breakable, _box
from .view import proposal_short

# Lines the findings may take in the default view before they are condensed.
FINDINGS_BUDGET = 80
# In a condensed group: evidence lines of the first finding, one-line members shown.
EVIDENCE_LINES = 2
MEMBERS_SHOWN = 3
# More IKE SAs or ESP flows than this are grouped by address pair; more CHILD SAs than
# CHILD_ROWS likewise (a CHILD SA takes five lines). At most GROUPS_SHOWN groups are listed.
TABLE_ROWS = 12
CHILD_ROWS = 6
GROUPS_SHOWN = 10
MORE = "(--full shows all)"

# Evidence wraps after a space, a comma or a '/' between names (ENCR_AES_CBC/AUTH_HMAC_...),
# never at a '/' before a digit (a prefix 10.1.0.0/24, an SPI pair, 500/4500) nor at '-' (a
# date, a group name): tokens with their trailing separators.
EVIDENCE_SPLIT = re.compile(r"(?:[^/, \n]|/(?=\d))+(?:/(?!\d)|[, ])*|(?:/(?!\d)|[, ])+|\n")


def _wrap(text: str, width: int, limit: int) -> list[str]:
    """``text`` wrapped to ``width`` after separators only; stops after ``limit`` lines."""
    lines: list[str] = []
    cur = ""
    for tok in EVIDENCE_SPLIT.findall(" ".join(text.split())):
        while len(tok.rstrip()) > width:  # no separator in a whole line: it is folded
            if cur.strip():
                lines.append(cur.rstrip())
            cur = ""
            lines.append(tok[:width])
            tok = tok[width:]
        if cur and len((cur + tok).rstrip()) > width:
            lines.append(cur.rstrip())
            cur = tok.lstrip()
        else:
            cur += tok
        if len(lines) > limit:
            return lines
    if cur.strip():
        lines.append(cur.rstrip())
    return lines


def clip(text: str, width: int, max_lines: int) -> tuple[list[str], bool]:
    """``text`` wrapped to ``width`` after separators only (EVIDENCE_SPLIT), at most
    ``max_lines`` lines; True when something was left out (the last line then ends in " …")."""
    width = max(width, 8)
    lines = _wrap(text, width, max_lines)
    if len(lines) <= max_lines:
        return lines, False
    lines = lines[:max_lines]
    last = lines[-1]
    if len(last) + 2 > width:
        cut = last.rfind(" ", 0, width - 1)
        last = last[:cut] if cut > 0 else last[: width - 2]
    lines[-1] = last.rstrip() + " …"
    return lines, True


def ranges(nums: list[int], runs_shown: int = 2) -> str:
    """1-3,7 for [1, 2, 3, 7]; the first ``runs_shown`` runs only (the count says how many)."""
    runs: list[list[int]] = []
    for n in nums:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs[:runs_shown]]
    return ",".join(parts) + (",..." if len(runs) > runs_shown else "")


@dataclass
class FindingGroup:
    members: list[tuple[int, Finding]]  # (number in the report, finding), in report order

    @property
    def first(self) -> Finding:
        return self.members[0][1]

    @property
    def numbers(self) -> list[int]:
        return [i for i, _ in self.members]


def group_findings(shown: list[tuple[int, Finding]]) -> list[FindingGroup]:
    groups: dict[tuple[Severity, str, str], FindingGroup] = {}
    for i, f in shown:
        groups.setdefault((f.severity, f.id, f.title), FindingGroup([])).members.append((i, f))
    return list(groups.values())


def brief_line(grid: Table, g: FindingGroup) -> None:
    """One line for a group (a row of a three-column grid): its members' numbers (a verdict or
    an ``explains`` may name any of them, so the first alone would hide the others), severity,
    id, how many, title and the first frames."""
    f = g.first
    frames = [n for _, m in g.members for n in m.frames[:3]][:3]
    more = len(g.members) > 1 or len(f.frames) > 3
    where = f" (frame{'s' if len(frames) > 1 else ''} {', '.join(map(str, frames))}{', ...' if more else ''})"
    label = f"{g.numbers[0]}." if len(g.members) == 1 else ranges(g.numbers)
    count = f" x{len(g.members)}" if len(g.members) > 1 else ""
    text = Text(f"[{f.id}]", style="bold") + Text(f"{count} {f.title}" + (where if frames else ""))
    grid.add_row(label, Text(f"{f.severity.label.upper():7}", style=SEV_STYLE[f.severity]), text)


def brief_grid(justify: JustifyMethod = "right") -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, justify=justify)
    grid.add_column(no_wrap=True)
    grid.add_column()
    return grid


def _distinct(f: Finding, first: Finding) -> str:
    """What tells a member of a group from its first finding, for its one line."""
    if f.explanation != first.explanation:
        return f.explanation
    if f.evidence and (not first.evidence or f.evidence[0] != first.evidence[0]):
        return f.evidence[0]
    return f"frames {_frames(f.frames)}" if f.frames else f.explanation


def _frames(nums: list[int], shown: int = 10) -> str:
    return ", ".join(map(str, nums[:shown])) + (f" … ({len(nums)} frames)" if len(nums) > shown else "")


def head_line(i: int, f: Finding, title: str) -> Table:
    """A finding's first line: number, severity, id and ``title`` (which wraps under itself)."""
    head = Text(f"{i}. ")
    head.append(f"{f.severity.label.upper():7}", style=SEV_STYLE[f.severity])
    head.append(f" [{f.id}]", style="bold")
    line = Table.grid(padding=(0, 1))
    line.add_column(no_wrap=True)
    line.add_column(overflow="fold")
    line.add_row(head, title)
    return line


def body_grid(f: Finding) -> Table:
    """The labelled lines under a finding's head, starting with its explanation."""
    t = Table.grid(padding=(0, 1))
    t.add_column(style="dim", no_wrap=True)
    t.add_column(overflow="fold")
    t.add_row("", f.explanation)
    return t


def group_detail(g: FindingGroup, width: int) -> Iterator[Table]:
    """A group: its first finding with the start of its evidence, then one line per member."""
    i, f = g.members[0]
    yield head_line(i, f, f.title + (f" ({len(g.members)} findings: {ranges(g.numbers)})" if len(g.members) > 1 else ""))
    t = body_grid(f)
    if f.frames:
        t.add_row("frames", _frames(f.frames))
    col = max(width - 9, 20)  # "evidence" and a space
    left = EVIDENCE_LINES
    for n, ev in enumerate(f.evidence):
        if left <= 0:
            rest = f.evidence[n:]
            t.add_row("", Text(f"… {len(rest)} more evidence line{'s' if len(rest) > 1 else ''} {MORE}", style="dim"))
            break
        lines, cut = clip(ev, col, left)
        left -= len(lines) + (1 if cut else 0)
        t.add_row("evidence", Text("\n".join(lines), no_wrap=True, overflow="crop"))
    if f.cause:
        t.add_row("cause", f.cause)
    t.add_row("fix", Text(f.remediation, style="green"))
    yield t
    if len(g.members) > 1:
        also = Table.grid(padding=(0, 1))
        also.add_column(style="dim", no_wrap=True)
        also.add_column(no_wrap=True, overflow="crop")
        for n, (j, m) in enumerate(g.members[1 : 1 + MEMBERS_SHOWN]):
            label = f"{j}."
            text, _ = clip(_distinct(m, f), max(col - len(label) - 1, 20), 1)
            also.add_row("also" if n == 0 else "", Text(label + " " + text[0]))
        rest = g.numbers[1 + MEMBERS_SHOWN :]
        if rest:
            also.add_row("", Text(f"… {len(rest)} more like this: {ranges(rest)} {MORE}", style="dim"))
        yield also


def condensed_findings(
    shown: list[tuple[int, Finding]], console: Console, options: ConsoleOptions
) -> tuple[list[object], bool]:
    """The findings within FINDINGS_BUDGET lines if possible: each group in detail, then the
    info groups as one line each, then the warning groups too (errors keep their detail).
    Returns the renderables and whether the view left something out."""
    groups = group_findings(shown)
    width = options.max_width
    parts: list[object] = []
    for brief_below in (Severity.INFO, Severity.WARNING, Severity.ERROR):
        parts = []
        grid: Table | None = None
        for g in groups:
            if g.first.severity < brief_below:
                if grid is None:
                    grid = brief_grid("left")
                    parts.append(grid)
                brief_line(grid, g)
            else:
                grid = None
                parts.extend(group_detail(g, width))
        if len(console.render_lines(Group(*parts), options, pad=False)) <= FINDINGS_BUDGET:  # type: ignore[arg-type]
            break
    condensed = len(groups) < len(shown) or any(
        len(f.evidence) > 1 or len(f.frames) > 10 for _, f in shown
    ) or brief_below > Severity.INFO
    return parts, condensed


# --- tables grouped by address pair --------------------------------------------------------

_T = TypeVar("_T")


def _top(groups: dict[tuple[str, str], list[_T]], weight: Callable[[list[_T]], int]) -> tuple[list[tuple[tuple[str, str], list[_T]]], list[_T]]:
    """The GROUPS_SHOWN heaviest groups in first-seen order, and the members of the others."""
    ranked = sorted(groups.items(), key=lambda kv: -weight(kv[1]))
    kept = {k for k, _ in ranked[:GROUPS_SHOWN]}
    rest = [x for k, v in groups.items() if k not in kept for x in v]
    return [(k, v) for k, v in groups.items() if k in kept], rest


def _by_one_side(groups: dict[tuple[str, str], list[_T]], keep: int) -> dict[tuple[str, str], list[_T]]:
    """Address-pair groups as they are, or, when there are more than GROUPS_SHOWN pairs (one
    host talking to many), grouped by the address at ``keep`` (0 or 1) alone, the other
    side left empty for the renderer to count."""
    if len(groups) <= GROUPS_SHOWN:
        return groups
    out: dict[tuple[str, str], list[_T]] = {}
    for pair, members in groups.items():
        key = (pair[0], "") if keep == 0 else ("", pair[1])
        out.setdefault(key, []).extend(members)
    return out


def _counts(values: list[str]) -> str:
    return ", ".join(f"{n} {v}" for v, n in Counter(values).most_common())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class IkeSaGroups:
    """The IKE SAs grouped by initiator and responder address (by responder alone when there
    are more pairs than GROUPS_SHOWN, as in a flood from many sources): how many, their
    numbers in the report, their states and proposals. Two lines a group."""

    def __init__(self, report: Report) -> None:
        self.r = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        sas = self.r.ike_sas
        groups: dict[tuple[str, str], list[int]] = {}
        for i, sa in enumerate(sas, 1):
            groups.setdefault((sa.initiator[0], sa.responder[0]), []).append(i)
        pairs = len(groups)
        shown, rest = _top(_by_one_side(groups, keep=1), len)
        yield Text(f"IKE SAs: {len(sas)} between {_plural(pairs, 'address pair')} {MORE}", style="bold")
        for (init, resp), nums in shown:
            members = [sas[n - 1] for n in nums]
            if not init:
                init = _plural(len({sa.initiator[0] for sa in members}), "initiator")
            nums = sorted(nums)
            states = _counts([sa.state for sa in members])
            head = Text(f"{init} -> {resp}: ", style="bold")
            head.append(f"{_plural(len(nums), 'IKE SA')}, ")
            worst = next((s for s in ("failed", "incomplete") if any(sa.state == s for sa in members)), "")
            head.append(states, style=STATE_STYLE.get(worst, ""))
            yield head
            props = Counter(proposal_short(sa.proposal) for sa in members if sa.proposal)
            prop = props.most_common(1)[0][0] if props else "(no proposal negotiated)"
            if len(props) > 1:
                prop += f" (+{len(props) - 1} other)"
            grid = Table.grid(padding=(0, 1))
            grid.add_column(no_wrap=True)
            grid.add_column()
            grid.add_row(f"  #{ranges(nums)}", Breakable(prop))
            yield grid
        if rest:
            yield Text(
                f"… {_plural(len(rest), 'more IKE SA')}: " + _counts([sas[n - 1].state for n in rest]), style="dim"
            )
        summarised = sum(h.requests for h in self.r.half_open)
        if summarised:
            yield Text(f"(+{summarised} unanswered first requests summarised in the findings)", style="dim")


def _flow_notes(flows: list[EspFlow], disorder: bool) -> list[str]:
    """Sequence anomalies and decryption summed over ``flows`` (bad ICVs always named); no
    reordering when the capture is out of time order (``disorder``: it follows frame order)."""
    notes = [
        f"{n} {what}"
        for n, what in (
            (sum(f.duplicates for f in flows), "dup"),
            (0 if disorder else sum(f.reordered for f in flows), "reord"),
            (sum(f.gaps for f in flows), "missing"),
        )
        if n
    ]
    keyed = [f for f in flows if f.keys]
    if keyed:
        notes.append(f"{sum(f.decrypted for f in keyed)} decrypted")
        bad = sum(f.integrity_failed for f in keyed)
        if bad:
            notes.append(f"{bad} bad ICV")
        if len(keyed) < len(flows):
            notes.append(f"{len(flows) - len(keyed)} SPIs without key")
    return notes


class ChildSaGroups:
    """The CHILD SAs and their ESP flows grouped by the two peers: how many CHILD SAs and
    SPIs, the IKE SAs that own them, packets and bytes each way, states, sequence anomalies
    and decryption. Stands for both the CHILD SA and the ESP flow tables of ``--full``."""

    def __init__(self, rows: list[ChildSaRow], report: Report) -> None:
        self.rows = rows
        self.r = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        index = {sa.key: i for i, sa in enumerate(self.r.ike_sas, 1)}
        disorder = out_of_order(self.r)
        groups: dict[tuple[str, str], list[ChildSaRow]] = {}
        for row in self.rows:
            groups.setdefault((row.src, row.dst), []).append(row)
        shown, rest = _top(_by_one_side(groups, keep=0), lambda rows: sum(r.packets_in + r.packets_out for r in rows))
        flows = [f for row in self.rows for f in row.flows]
        title = (
            f"CHILD SAs: {len(self.rows)} between {_plural(len(groups), 'address pair')}, "
            f"{_plural(len(flows), 'ESP SPI')}, {_plural(sum(f.packets for f in flows), 'packet')} {MORE}"
        )
        t = Table(title=title, box=_box(console), title_justify="left", padding=(0, 0, 0, 1), pad_edge=False)
        shown = [((src, dst or _plural(len({r.dst for r in rows}), "peer")), rows) for (src, dst), rows in shown]
        addr = max(max(len(k[0]), len(k[1]) + 4) for k, _ in shown)
        t.add_column("Initiator\n<-> Responder", no_wrap=True, min_width=addr)
        t.add_column("SAs", justify="right", no_wrap=True)
        t.add_column("Out", justify="right", no_wrap=True)
        t.add_column("In", justify="right", no_wrap=True)
        t.add_column("State, notes")
        for (src, dst), rows in shown:
            owners = sorted({index[r.ike_sa] for r in rows if r.ike_sa in index})
            notes = [_counts([r.state for r in rows]), *_flow_notes([f for r in rows for f in r.flows], disorder)]
            if owners:
                notes.append(f"IKE SA #{ranges(owners)}")
            t.add_row(
                f"{src}\n<-> {dst}",
                str(len(rows)),
                f"{sum(r.packets_out for r in rows)} pkts\n{sum(r.bytes_out for r in rows)} B",
                f"{sum(r.packets_in for r in rows)} pkts\n{sum(r.bytes_in for r in rows)} B",
                Breakable("; ".join(notes), breaks=" ;,"),
            )
        yield t
        if rest:
            notes = [_counts([r.state for r in rest]), *_flow_notes([f for r in rest for f in r.flows], disorder)]
            yield Text(f"… {_plural(len(rest), 'more CHILD SA')}: " + "; ".join(notes), style="dim")


def esp_summary(report: Report) -> Text:
    """The line that stands for the ESP flow table when the CHILD SA groups sum the flows."""
    flows = report.esp_flows
    notes = _flow_notes(flows, out_of_order(report))
    return Text(
        f"ESP flows: {_plural(len(flows), 'SPI')}, {_plural(sum(f.packets for f in flows), 'packet')}, "
        f"{sum(f.bytes for f in flows)} bytes" + (f" ({', '.join(notes)})" if notes else "")
        + f", summed per address pair in the CHILD SAs above {MORE}",
        style="bold",
    )
