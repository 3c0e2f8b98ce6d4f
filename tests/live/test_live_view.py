"""The dashboard renderer: what it shows from a report snapshot and the capture status."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.report.live_view import Dashboard, LiveStatus, finding_line

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


def _render(obj: object) -> str:
    c = Console(record=True, width=140, force_terminal=True, color_system=None)
    c.print(obj)
    return c.export_text()


def test_dashboard_shows_sas_flows_rates_findings_and_drops() -> None:
    r = analyze_capture(SAMPLES / "ikev2-psk-ok.pcap")
    flow = r.esp_flows[0]
    status = LiveStatus(
        interface="eth0",
        backend="dumpcap",
        elapsed=83.0,
        frames=r.source.frames,
        drops="3 dropped (3 by the kernel)",
        dropped=3,
        writing="cap.pcapng",
        esp_rates={(flow.spi, flow.src, flow.dst): (1234.0, 2_500_000.0)},
        now_ts=r.source.last_ts,
    )
    text = _render(Dashboard(r, status))
    assert "eth0 via dumpcap  01:23" in text and "3 dropped (3 by the kernel)" in text
    assert "writing cap.pcapng" in text
    assert "IKE SAs" in text and ("established" in text or "deleted" in text)
    assert "INFORMATIONAL" in text  # the last exchange: the DELETE at the end
    assert f"{flow.spi:08x}" in text and "1.2k" in text and "2.5M" in text
    for f in r.findings:
        assert f"[{f.id}]" in text


def test_idle_sas_and_flows_leave_the_dashboard() -> None:
    r = analyze_capture(SAMPLES / "ikev2-psk-ok.pcap")
    status = LiveStatus(interface="eth0", backend="tcpdump", now_ts=(r.source.last_ts or 0) + 3600)
    text = _render(Dashboard(r, status, idle=120))
    assert "No active IKE SA (1 idle)" in text and "No active ESP flow (2 idle)" in text


def test_finding_line() -> None:
    r = analyze_capture(SAMPLES / "ikev2-no-proposal.pcap")
    (f,) = [f for f in r.findings if f.id == "ike-no-proposal-chosen"]
    line = finding_line(f, r.source.last_ts)
    assert line.split()[1:3] == ["ERROR", "[ike-no-proposal-chosen]"] and line.endswith("(frames 1,2)")
