"""The HTML report: self-contained, one ladder per IKE SA, one ESP lane per flow, every finding,
and headless Chromium loads it without a console error (Debian's ``chromium`` package)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from corpus import REPO_ROOT
from report_samples import IDS, sample_report

from ipsecdiag.reconstruction.model import Report
from ipsecdiag.report.html import render_html
from ipsecdiag.report.svg import BAR_H, PLOT_X0, PLOT_X1
from ipsecdiag.report.verdict import verdict

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package chromium)")


class _Dom(HTMLParser):
    """Elements by class, data attributes and the text of the page (enough for the checks)."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: dict[str, list[dict[str, str]]] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        for c in a.get("class", "").split():
            self.classes.setdefault(c, []).append(a)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _dom(html: str) -> _Dom:
    d = _Dom()
    d.feed(html)
    return d


def check_dom(html: str, r: Report) -> None:
    d = _dom(html)
    text = " ".join(d.text)
    assert verdict(r).text in text
    findings = d.classes.get("finding", [])
    assert [f["data-id"] for f in findings] == [f.id for f in r.findings]
    for f in r.findings:
        assert f.title in text  # (escaped in the source, plain in the DOM)
    assert sorted(a["data-ike-sa"] for a in d.classes.get("ladder", [])) == sorted(sa.key for sa in r.ike_sas)
    lanes = [a["data-spi"] for a in d.classes.get("esp-lane", [])]
    assert sorted(lanes) == sorted(f"{f.spi:08x}" for f in r.esp_flows)
    # Each lane's bars (the flow's histogram, when collected) hold every packet of the flow.
    bars = d.classes.get("bars", [])
    assert sorted(int(b["data-packets"]) for b in bars) == sorted(f.packets for f in r.esp_flows if f.timeline)
    assert sum(int(b["data-packets"]) for b in d.classes.get("bar", [])) == sum(
        f.packets for f in r.esp_flows if f.timeline
    )
    # One message arrow per transmission of each IKE message.
    sent = sum(len(m.transmissions) for sa in r.ike_sas for e in sa.exchanges for m in e.all_messages())
    assert len(d.classes.get("msg", [])) == sent


@pytest.mark.parametrize("stem", IDS)
def test_html_structure(stem: str) -> None:
    r = sample_report(stem, timeline=True)
    html = render_html([r])
    check_dom(html, r)
    d = _dom(html)
    # Self-contained: no script, nothing fetched.
    assert not any(tag in ("script", "link", "img", "iframe") for tag, _ in d.tags)
    assert not any("src" in a or a.get("href", "#").split(":")[0] in ("http", "https") for _, a in d.tags)


def test_retransmissions_and_losses_are_marked() -> None:
    d = _dom(render_html([sample_report("ikev2-frag-blackhole")]))
    assert len(d.classes["retransmit"]) == 3
    assert len(d.classes["lost"]) == 1


def test_replays_are_marked_on_the_plot() -> None:
    r = sample_report("esp-replay")
    d = _dom(render_html([r]))
    assert len(d.classes["replay"]) == sum(len(f.seq.replay_events) for f in r.esp_flows) > 0


def test_text_is_escaped() -> None:
    r = sample_report("ikev2-no-proposal")
    r2 = Report(source=r.source, findings=[type(r.findings[0])("x", r.findings[0].severity, "<b>&", "e", "f")])
    html = render_html([r2])
    assert "<b>&" not in html and "&lt;b&gt;&amp;" in html


def _chromium(page: Path, out: Path, shot: Path | None = None, height: int = 1500) -> tuple[str, str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        args = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", f"--window-size=1100,{height}",
        ]  # fmt: skip
        args += [f"--screenshot={shot}"] if shot else ["--dump-dom"]
        p = subprocess.run([*args, page.as_uri()], capture_output=True, text=True, timeout=90, cwd=out)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, p.stderr


@needs_chromium
@pytest.mark.parametrize("stem", IDS)
def test_chromium_loads_it_without_console_errors(stem: str, tmp_path: Path) -> None:
    r = sample_report(stem, timeline=True)
    page = tmp_path / f"{stem}.html"
    page.write_text(render_html([r]))
    dom, log = _chromium(page, tmp_path)
    assert not _console(log), "\n".join(_console(log))
    check_dom(dom, r)  # what the browser built, not just what was written


def _console(log: str) -> list[str]:
    """Console messages in Chromium's log: the page has no script, so any one is a fault
    (an exception, a blocked resource, a content-security-policy refusal)."""
    return [ln for ln in log.splitlines() if "Uncaught" in ln or ":CONSOLE" in ln]


@needs_chromium
def test_the_console_check_sees_a_script_error(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedName.call()</script></body></html>")
    _dom_text, log = _chromium(page, tmp_path)
    assert any("undefinedName" in ln for ln in _console(log))


@needs_chromium
def test_screenshot(tmp_path: Path) -> None:
    """A screenshot of a failing sample, kept in docs/ when IPSECDIAG_UPDATE_DOCS is set."""
    import os

    page = tmp_path / "report.html"
    page.write_text(
        render_html([sample_report("ikev2-frag-blackhole", timeline=True), sample_report("esp-replay", timeline=True)])
    )
    shot = tmp_path / "shot.png"
    _chromium(page, tmp_path, shot, height=2600)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page was drawn, not a blank
    if os.environ.get("IPSECDIAG_UPDATE_DOCS"):
        (REPO_ROOT / "docs" / "html-report.png").write_bytes(data)


def test_a_flood_of_spis_is_plotted_up_to_the_cap_anomalies_first() -> None:
    """300 one-way SPIs, the last with ICV failures: 200 plots (that one among them), a line
    saying how many are not plotted, and every SPI still a row of the CHILD SA table."""
    from dataclasses import replace

    from ipsecdiag.report.html import PLOTS

    r = sample_report("ikev2-psk-ok")
    base = r.esp_flows[0]
    flows = [
        replace(base, spi=0x1000 + i, keys=True, integrity_failed=2 if i == 299 else 0, child_sa=None)
        for i in range(300)
    ]
    page = render_html([replace(r, esp_flows=flows, ike_sas=[], findings=[])])
    dom = _Dom()
    dom.feed(page)
    plots = dom.classes.get("esp-plot", [])
    assert len(plots) == PLOTS == 200
    assert any("0000112b" in p["data-spis"] for p in plots)  # the SPI with ICV failures
    assert "100 more CHILD SAs with traffic are not plotted" in page
    assert all(f"{0x1000 + i:08x}" in page for i in range(300))


def test_a_plot_carries_bars_where_the_packets_are() -> None:
    """esp-replay, each way: one bar per occupied bin, standing in the lane, at the bin's time,
    the busiest bin the tallest; without the histogram (a report not collected for the HTML)
    the lanes are drawn without bars."""
    r = sample_report("esp-replay", timeline=True)
    d = _dom(render_html([r]))
    bars = d.classes["bar"]
    occupied = sum(1 for f in r.esp_flows if f.timeline for p in f.timeline.packets if p)
    assert len(bars) == occupied > 2 * 10
    heights = [float(b["height"]) for b in bars]
    assert max(heights) == BAR_H and min(heights) >= 1
    assert all(PLOT_X0 <= float(b["x"]) <= PLOT_X1 for b in bars)
    plain = _dom(render_html([sample_report("esp-replay")]))
    assert "bar" not in plain.classes and len(plain.classes["esp-lane"]) == len(r.esp_flows)


def test_icv_failures_are_placed_in_time() -> None:
    from dataclasses import replace

    r = sample_report("esp-replay", timeline=True)
    f = r.esp_flows[0]
    t = [f.first_ts + (f.last_ts - f.first_ts) * k / 4 for k in (1, 2, 3)]
    bad = replace(f, integrity_failed=5, failed_frames=[7, 9, 11], failed_ts=t)
    d = _dom(render_html([replace(r, esp_flows=[bad, *r.esp_flows[1:]])]))
    marks = d.classes["icv"]
    assert len(marks) == 3
    xs = [float(m["d"][1:].split(",")[0]) for m in marks]
    assert PLOT_X0 < xs[0] < xs[1] < xs[2] < PLOT_X1
    assert "5 ICV failures (first 3 marked)" in " ".join(d.text)


def test_analyze_html_collects_the_histograms_plain_analyze_does_not(tmp_path: Path) -> None:
    from test_cli_report import SAMPLES, run

    cap = str(SAMPLES / "synth" / "esp-replay.pcap")
    out = tmp_path / "r.html"
    p = run(cap, "--html", str(out), "--json", "-")
    flows = json.loads(p.stdout)["esp_flows"]
    assert all(sum(f["timeline"]["packets"]) == f["packets"] for f in flows) and flows
    assert all(sum(f["timeline"]["bytes"]) == f["bytes"] for f in flows)
    assert len(_dom(out.read_text()).classes["bar"]) == sum(1 for f in flows for n in f["timeline"]["packets"] if n)
    plain = json.loads(run(cap, "--json", "-").stdout)["esp_flows"]
    assert not any("timeline" in f for f in plain)


def test_header_and_child_sa_table_say_what_the_terminal_says() -> None:
    # review 3 item 17: the terminal's Skipped and Keys lines and its per-flow Decr counts
    r = sample_report("ikev2-frag-blackhole")
    text = " ".join(_dom(render_html([r])).text)
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(r.source.skipped.items()))
    assert r.source.skipped and f"Skipped: {skipped}" in text
    assert r.source.keys_loaded and f"Keys: {r.source.keys_loaded} key record(s) loaded" in text
    ok = sample_report("ikev2-psk-ok")
    text = " ".join(_dom(render_html([ok])).text)
    assert "Decrypted" in text and ok.esp_flows and all(f.keys for f in ok.esp_flows)
    for f in ok.esp_flows:
        assert f.decrypted > 0 and f"{'out' if f.src == ok.ike_sas[0].initiator[0] else 'in'} {f.decrypted}" in text
    bare = sample_report("ikev2-psk-ok", keyed=False)
    text = " ".join(_dom(render_html([bare])).text)
    assert "Decrypted" not in text and "Skipped: none" in text and "Keys:" not in text
