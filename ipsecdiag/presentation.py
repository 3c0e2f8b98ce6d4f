"""How ``ipsecdiag analyze`` presents its reports: display filters, the terminal report (verdict
first, paged like git when it is longer than the screen), the HTML file and the JSON outputs.

Kept out of ``cli.py`` so the command only parses options; the renderers in ``report/`` stay
free of I/O (no pager, no files here is their rule, not this module's).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .reconstruction.model import Report, Severity
from .report.filters import ReportFilter, filter_report, parse_ike_sa, parse_peer, parse_spi


class PresentationError(Exception):
    """A bad presentation option: one line for the user (exit 2)."""


def parse_time(option: str, text: str) -> float:
    """A time as ISO 8601 (UTC unless it says otherwise, 'Z' accepted) or seconds since 1970."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PresentationError(
            f"{option} {text!r}: expected an ISO 8601 time (2026-12-03T10:15:00Z) or seconds since 1970"
        ) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def build_filter(
    spis: list[str] | None,
    peers: list[str] | None,
    ike_sas: list[str] | None,
    time_from: str | None,
    time_to: str | None,
) -> ReportFilter:
    try:
        flt = ReportFilter(
            spis=frozenset(parse_spi(s) for s in spis or ()),
            peers=frozenset(parse_peer(p) for p in peers or ()),
            ike_sas=frozenset(parse_ike_sa(s) for s in ike_sas or ()),
            time_from=parse_time("--time-from", time_from) if time_from is not None else None,
            time_to=parse_time("--time-to", time_to) if time_to is not None else None,
        )
    except ValueError as e:
        raise PresentationError(str(e)) from None
    if flt.time_from is not None and flt.time_to is not None and flt.time_to < flt.time_from:
        raise PresentationError("--time-to is before --time-from")
    return flt


def parse_severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as e:
        raise PresentationError(f"--severity: {e}") from None


def apply_filter(reports: list[Report], flt: ReportFilter) -> list[Report]:
    return [filter_report(r, flt) for r in reports]


@dataclass(frozen=True)
class TextOptions:
    brief: bool = False
    full: bool = False  # every finding's evidence and every table row (no condensing)
    min_severity: Severity = Severity.INFO
    ladders: bool | None = None  # None: when there are few IKE SAs
    pager: bool = True


def terminal_text(reports: list[Report], opts: TextOptions, *, width: int, terminal: bool) -> str:
    from rich.text import Text

    from .report.render import render_text, report_renderable

    parts: list[object] = []
    for i, r in enumerate(reports):
        if i:
            parts.append(Text(""))  # one blank line between captures
        parts.append(report_renderable(
                r, ladders=opts.ladders, brief=opts.brief, full=opts.full, min_severity=opts.min_severity
            ))
    return render_text(parts, width=width, terminal=terminal)


def print_reports(reports: list[Report], opts: TextOptions) -> None:
    """The terminal report on stdout; through a pager when stdout is a terminal, paging is not
    turned off and the report is longer than the screen (so the verdict is what is seen first)."""
    tty = sys.stdout.isatty()
    size = shutil.get_terminal_size((80, 24))  # COLUMNS/LINES first, then the terminal
    text = terminal_text(reports, opts, width=size.columns, terminal=tty)
    if tty and opts.pager and text.count("\n") >= size.lines and page(text):
        return
    sys.stdout.write(text)
    sys.stdout.flush()


def page(text: str) -> bool:
    """Show ``text`` through $PAGER (default ``less``, with LESS=FRX unless LESS is set, as git
    does). False when no pager could run, so the caller prints instead."""
    cmd = os.environ.get("PAGER", "less")
    if not cmd.strip() or cmd.strip() == "cat":
        return False
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    try:
        proc = subprocess.Popen(shlex.split(cmd), stdin=subprocess.PIPE, env=env, text=True)
    except (OSError, ValueError):
        return False
    try:
        assert proc.stdin is not None
        proc.stdin.write(text)
        proc.stdin.close()
    except BrokenPipeError:  # the user quit the pager early
        pass
    except KeyboardInterrupt:
        pass
    while True:
        try:
            proc.wait()
            return True
        except KeyboardInterrupt:  # like git: the pager handles ^C, we wait for it
            continue


def write_html(reports: list[Report], target: Path) -> None:
    from .outputs import write_output
    from .report.html import render_html

    files = ", ".join(f for r in reports for f in r.source.files)
    write_output(target, render_html(reports, title=f"ipsecdiag: {files}" if files else "ipsecdiag report"))
