"""A group of findings shown as one line in the default view carries its members' numbers, as
--brief does: the verdict ("see finding N") and ``explains`` may name any member."""

from __future__ import annotations

from rich.console import Console

from ipsecdiag.reconstruction.model import Finding, Severity
from ipsecdiag.report.condensed import FINDINGS_BUDGET, condensed_findings


def _f(fid: str, sev: Severity, title: str, lines: int) -> Finding:
    return Finding(fid, sev, title, "why", "fix", frames=[1], evidence=[f"evidence line {i}" for i in range(lines)])


def test_one_line_group_shows_member_numbers() -> None:
    # more errors (each kept in detail) than the budget holds: the info groups go to one line each
    errors = FINDINGS_BUDGET // 4
    shown = [(i, _f("ike-unanswered", Severity.ERROR, f"IKE requests never answered {i}", 3)) for i in range(1, errors + 1)]
    shown += [(errors + i, _f("nat-detected", Severity.INFO, "NAT between the peers", 3)) for i in (1, 2, 3, 5)]
    shown += [(errors + 4, _f("weak-crypto", Severity.INFO, "Weak cryptography offered", 3))]
    console = Console(width=100, record=True, color_system=None)
    parts, condensed = condensed_findings(shown, console, console.options)
    assert condensed
    for p in parts:
        console.print(p)
    text = console.export_text()
    nat = next(ln for ln in text.splitlines() if "[nat-detected]" in ln)
    a = errors + 1
    assert nat.lstrip().startswith(f"{a}-{a + 2},{a + 4} ") and "x4" in nat
    weak = next(ln for ln in text.splitlines() if "[weak-crypto]" in ln)
    assert weak.lstrip().startswith(f"{a + 3}. ")
