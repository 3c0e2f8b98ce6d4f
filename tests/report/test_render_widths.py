"""The terminal report at 60, 80 and 120 columns over every bundled and corpus capture: no line
wider than the console, no trailing space, nothing cut (no ellipsis), and in the full view every
SPI, address, sequence number, algorithm name and file name whole on one line. The default
(condensed) view holds the same rules and fits 150 lines at 80 columns (test_condensed.py)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from corpus import CORPUS
from report_samples import SAMPLE_PATHS

from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.presentation import TextOptions, terminal_text
from ipsecdiag.reconstruction.model import Report
from ipsecdiag.report.childsa import child_sa_rows
from ipsecdiag.report.view import proposal_short

CORPUS_PATHS = sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng", ".cap")) if CORPUS.is_dir() else []
CAPTURES = [*SAMPLE_PATHS, *CORPUS_PATHS]
IDS = [str(p.relative_to(CORPUS)) if p.is_relative_to(CORPUS) else p.name for p in CAPTURES]


@cache
def _report(path: Path) -> Report:
    return analyze_capture(path)


def _atoms(r: Report) -> set[str]:
    """Strings the report must show whole, each within one line."""
    out = {Path(f).name for f in r.source.files}
    for sa in r.ike_sas:
        out |= {sa.initiator[0], sa.responder[0]}
        out |= {t for t in proposal_short(sa.proposal).split("/") if t != "-"}
        out |= {n for e in sa.exchanges for m in e.all_messages() for n in m.notifies}  # the ladders
    for f in r.esp_flows:
        out |= {f"{f.spi:08x}", f.src, f.dst, str(f.seq_first), str(f.seq_last), str(f.packets), str(f.bytes)}
    for row in child_sa_rows(r):
        out |= {t for t in row.proposal.split("/") if t != "-"}
    for f in r.findings:
        out.add(f"[{f.id}]")
    return out


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_rendering_rules_full_view(path: Path, width: int) -> None:
    r = _report(path)
    text = terminal_text([r], TextOptions(ladders=True, full=True), width=width, terminal=False)
    lines = text.split("\n")
    too_wide = [ln for ln in lines if len(ln) > width]
    assert not too_wide, too_wide[:3]
    assert not [ln for ln in lines if ln != ln.rstrip()], "trailing spaces"
    # rich marks a cut with "…" right after the last character kept; the reports' own "…"
    # (a frame list, "… and 4 more") stands between spaces.
    cut = [ln for ln in lines if re.search(r"\S…", ln)]
    assert not cut, cut[:3]
    missing = sorted(a for a in _atoms(r) if not any(re.search(rf"(?<![\w:]){re.escape(a)}(?!\w)", ln) for ln in lines))
    assert not missing, f"cut or absent at {width} columns: {missing[:10]}"


@pytest.mark.parametrize("width", [60, 80, 120])
def test_brief_and_verdict_fit(width: int) -> None:
    for path in SAMPLE_PATHS:
        text = terminal_text([_report(path)], TextOptions(brief=True), width=width, terminal=False)
        assert all(len(ln) <= width and ln == ln.rstrip() for ln in text.split("\n"))
