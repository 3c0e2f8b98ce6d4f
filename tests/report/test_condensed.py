"""The default terminal view fits (issues 13 and 14): every bundled and corpus capture in at most
150 lines at 80 columns, floods of SPIs and half-open IKE SAs in a few hundred, with the counts
of errors and warnings and every finding id still shown, and --full as long as before."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus
from regress.floods import half_open_flood, many_spi_flood
from report_samples import SAMPLE_PATHS

from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.presentation import TextOptions, terminal_text
from ipsecdiag.reconstruction.model import Report, Severity
from ipsecdiag.report.condensed import clip, ranges

CORPUS_PATHS = sorted(p for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng", ".cap")) if CORPUS.is_dir() else []
CAPTURES = [*SAMPLE_PATHS, *CORPUS_PATHS]
IDS = [str(p.relative_to(CORPUS)) if p.is_relative_to(CORPUS) else p.name for p in CAPTURES]
BUSY = CORPUS / "external" / "ndpi" / "ipsec_isakmp_esp.pcap"  # 834 frames, 74 ESP flows

# The default view of any capture, at 80 columns (issue 13); a flood's (issue 14).
MAX_LINES = 150
MAX_FLOOD_LINES = 300


@cache
def _report(path: Path) -> Report:
    return analyze_capture(path)


def _text(r: Report, width: int = 80, **opts: object) -> list[str]:
    return terminal_text([r], TextOptions(**opts), width=width, terminal=False).split("\n")  # type: ignore[arg-type]


def _honest(r: Report, lines: list[str]) -> None:
    """What a condensed view must never hide: the counts, every finding's id, the verdict."""
    text = "\n".join(lines)
    n = {s: sum(1 for f in r.findings if f.severity == s) for s in Severity}
    if r.findings:
        assert f"Findings ({n[Severity.ERROR]} error, {n[Severity.WARNING]} warning, {n[Severity.INFO]} info" in text
    missing = {f"[{f.id}]" for f in r.findings} - set(re.findall(r"\[[a-z0-9-]+\]", text))
    assert not missing, missing


@pytest.mark.parametrize("path", CAPTURES, ids=IDS)
def test_default_view_fits_and_holds_the_rules(path: Path) -> None:
    r = _report(path)
    for width in (60, 80, 120):
        lines = _text(r, width)
        assert not [ln for ln in lines if len(ln) > width], width
        assert not [ln for ln in lines if ln != ln.rstrip()], "trailing spaces"
        assert not [ln for ln in lines if re.search(r"\S…", ln)], [ln for ln in lines if re.search(r"\S…", ln)][:3]
        _honest(r, lines)
        if width == 80:
            assert len(lines) <= MAX_LINES, f"{len(lines)} lines at 80 columns"
    # A report that fits is shown whole; a condensed one keeps the verdict.
    default, full = _text(r, 80), _text(r, 80, full=True)
    assert default == full if len(full) <= MAX_LINES else default[0] == full[0]


@needs_corpus
def test_busy_capture_default_full_and_brief() -> None:
    r = _report(BUSY)
    default, full, brief = _text(r), _text(r, full=True), _text(r, brief=True)
    assert len(brief) <= 24 and len(default) <= MAX_LINES < len(full)
    text = "\n".join(default)
    assert "condensed: --full shows all)" in text and "IKE SAs: 70 between" in text
    # Every ESP flow is counted in the grouped CHILD SA table, and their packets summed.
    flows = r.esp_flows
    assert f"{len(flows)} ESP SPIs, {sum(f.packets for f in flows)} packets" in text
    # The full view keeps each flow's own row.
    assert all(any(f"{f.spi:08x}" in ln for ln in full) for f in flows)


def test_flood_of_spis_fits(tmp_path: Path) -> None:
    cap = tmp_path / "spis.pcap"
    many_spi_flood(cap, 12_000)  # beyond the tracker's 10,000 flows: some summarised
    r = analyze_capture(cap)
    lines = _text(r)
    assert len(lines) <= MAX_FLOOD_LINES, len(lines)
    text = "\n".join(lines)
    _honest(r, lines)
    assert f"CHILD SAs: {len(r.esp_flows)} between 1 address pair" in text
    assert f"ESP flows: {len(r.esp_flows)} SPIs" in text
    assert "[capture-health]" in text  # what was summarised is said


def test_flood_of_half_open_sas_fits(tmp_path: Path) -> None:
    cap = tmp_path / "half-open.pcap"
    half_open_flood(cap, 5_000)
    r = analyze_capture(cap)
    lines = _text(r)
    assert len(lines) <= MAX_FLOOD_LINES, len(lines)
    _honest(r, lines)
    text = "\n".join(lines)
    assert "[ike-half-open-flood]" in text
    summarised = sum(h.requests for h in r.half_open)
    assert summarised == 0 or f"{summarised} unanswered first requests are summarised" in " ".join(text.split())
    unanswered = [i for i, f in enumerate(r.findings, 1) if f.id == "ike-unanswered"]
    if len(unanswered) > 1:  # the IKE SAs kept one by one: one group, numbered
        assert f"({len(unanswered)} findings: {ranges(unanswered)})" in text
    if len({sa.initiator[0] for sa in r.ike_sas}) > 10:
        assert f"{len({sa.initiator[0] for sa in r.ike_sas})} initiators -> 192.0.2.1" in text


def test_clip_wraps_after_separators_and_marks_what_it_leaves_out() -> None:
    text = "IKE:ENCR_AES_CBC_128/ENCR_AES_CBC_256/AUTH_HMAC_SHA1_96/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA1 (frame 325), weak"
    lines, cut = clip(text, 40, 2)
    assert cut and len(lines) == 2 and lines[-1].endswith(" …")
    assert all(len(ln) <= 40 for ln in lines)
    assert lines[0] == "IKE:ENCR_AES_CBC_128/ENCR_AES_CBC_256/"  # broken after the '/', not inside a name
    assert clip("short text", 40, 1) == (["short text"], False)
    # A prefix, an SPI pair and a port pair are never split at their '/'.
    lines, _ = clip("created (frame 4), selectors 10.1.0.0/24 === 10.2.0.0/24, SPIs 0xc0de0201/0xc0de0202", 36, 5)
    assert "10.1.0.0/24" in " ".join(lines) and "0xc0de0201/0xc0de0202" in lines[-1], lines


def test_full_view_evidence_wraps_between_algorithm_names_only() -> None:
    from dataclasses import replace

    from report_samples import sample_report

    r = sample_report("ikev2-no-proposal")
    ev = "IKE SA offered IKE:" + "/".join(f"ENCR_AES_GCM_16_{n}" for n in range(100, 120)) + " in 10.1.0.0/24"
    rep = replace(r, findings=[replace(r.findings[0], evidence=[ev])])
    for width in (60, 80):
        lines = _text(rep, width, full=True)
        names = {f"ENCR_AES_GCM_16_{n}" for n in range(100, 120)} | {"10.1.0.0/24"}
        assert all(any(re.search(rf"{re.escape(a)}(?!\d)", ln) for ln in lines) for a in names), width
    lines, cut = clip("x" * 100, 30, 2)  # no separator at all: cut, and the cut marked
    assert cut and all(len(ln) <= 30 for ln in lines) and lines[-1].endswith(" …")


def test_ranges() -> None:
    assert ranges([1, 2, 3, 7]) == "1-3,7"
    assert ranges([1, 2, 3, 7, 9]) == "1-3,7,..."
    assert ranges([4]) == "4"


def test_repeated_findings_are_grouped_and_counted_not_hidden() -> None:
    """Without the corpus too: a bundled failing capture with its error repeated 40 times
    (each naming another peer) and 200 evidence lines on it."""
    from dataclasses import replace

    from report_samples import sample_report

    r = sample_report("ikev2-no-proposal")
    err = next(f for f in r.findings if f.severity == Severity.ERROR)
    many = [
        replace(err, explanation=f"{err.explanation} (peer 192.0.2.{i})", evidence=[f"line {n} of {i}" for n in range(200)])
        for i in range(40)
    ]
    rep = replace(r, findings=[*many, *r.findings[1:]])
    lines = _text(rep)
    text = "\n".join(lines)
    assert len(lines) <= MAX_LINES and "condensed: --full shows all)" in text
    _honest(rep, lines)
    assert f"[{err.id}] {err.title} (40 findings: 1-40)" in " ".join(text.split())
    assert "… 198 more evidence lines (--full shows all)" in text
    assert "also 2. " in text and "… 36 more like this: 5-40 (--full shows all)" in text
    full = _text(rep, full=True)
    assert len(full) > 40 * 200 and sum("evidence line 199 of" in ln or "line 199 of" in ln for ln in full) == 40


def test_grouped_flows_keep_bad_icvs_and_totals_visible() -> None:
    """Twenty decrypted ESP SPIs between two hosts, one with ICV failures: grouped, the
    failures are still counted in the default view."""
    from dataclasses import replace

    from report_samples import sample_report

    r = sample_report("ikev2-psk-ok")
    base = r.esp_flows[0]
    flows = [
        replace(base, spi=0x100 + i, packets=10, bytes=1000, keys=True, decrypted=10 - (3 if i == 7 else 0),
                integrity_failed=3 if i == 7 else 0, child_sa=None)
        for i in range(20)
    ]
    rep = replace(r, esp_flows=flows, ike_sas=[])
    text = "\n".join(_text(rep))
    assert "CHILD SAs: 20 between 1 address pair, 20 ESP SPIs, 200 packets" in text
    assert "197 decrypted, 3 bad ICV" in " ".join(text.split())
    assert "ESP flows: 20 SPIs, 200 packets, 20000 bytes (197 decrypted, 3 bad ICV)" in " ".join(text.split())
