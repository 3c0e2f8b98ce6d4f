"""The exchange ladders (HTML and terminal) at the end of a capture: a request sent once just
before the capture ended may still be answered (ExchangeRecord.unanswered_at), so neither
ladder calls it "no response"; they say what the verdict and the ike-unanswered check say (no
failure). A request never answered while the capture went on for a minute still reads
"no response", with the red cross, as the check's error finding does.

Captures are the bundled sample's frames cut and re-timed with the project's pcap writer, the
"other frames" DNS queries built with scapy between two unrelated hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import REPO_ROOT
from report_samples import sample_report
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.keys.model import KeyStore
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Report, Severity
from ipsecdiag.report.html import render_html
from ipsecdiag.report.render import render_text, report_renderable

SAMPLE = REPO_ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap"  # 1-2 INIT, 3-4 AUTH, 5-24 ESP, 25-26 DELETE
IN_FLIGHT = "capture ended before a response could arrive"

Frames = list[tuple[float, bytes]]


def _sample() -> Frames:
    with open_capture(SAMPLE) as cap:
        return [(ts, bytes(data)) for _n, ts, _lt, data, _orig in cap.frames()]


def _dns(ts: float, n: int) -> tuple[float, bytes]:
    """Another host's DNS query: a frame that is neither IKE nor ESP."""
    pkt = Ether() / IP(src="203.0.113.7", dst="203.0.113.53") / UDP(sport=40000 + n, dport=53) / DNS(
        id=n, qd=DNSQR(qname=f"host{n}.example.")
    )
    return ts, bytes(pkt)


def _other(start: float, seconds: float) -> Frames:
    """Other frames every 2 s for ``seconds`` from ``start`` (no gap a retransmission could hide in)."""
    return [_dns(start + 2.0 * (i + 1), i) for i in range(int(seconds / 2.0))]


def _analyze(tmp: Path, frames: Frames) -> Report:
    path = tmp / "cut.pcap"
    with PcapWriter(path, 1) as w:
        for ts, data in frames:
            w.write(ts, data)
    return analyze_capture(path, keys=KeyStore())


def _init_alone_at_end(fr: Frames) -> Frames:
    # a minute of other traffic, then the IKE_SA_INIT request 0.5 s before the last frame
    t = fr[0][0]
    return [*_other(t - 62.0, 60.0), fr[0], _dns(t + 0.5, 99)]


def _informational_at_end(fr: Frames) -> Frames:
    return fr[:24] + [fr[24]]  # the DELETE request is the capture's last frame


def _init_then_a_minute(fr: Frames) -> Frames:
    return [fr[0], *_other(fr[0][0], 60.0)]


def _informational_then_a_minute(fr: Frames) -> Frames:
    return [*fr[:25], *_other(fr[24][0], 60.0)]


def _informational_then_gap(fr: Frames) -> Frames:
    # sent once, then nothing for 10 minutes: a stitched capture, the outcome unknown
    return [*fr[:25], *_other(fr[24][0] + 600.0, 10.0)]


IN_FLIGHT_CASES = {"IKE_SA_INIT #0": _init_alone_at_end, "INFORMATIONAL #2": _informational_at_end}
LOST_CASES = {"IKE_SA_INIT #0": _init_then_a_minute, "INFORMATIONAL #2": _informational_then_a_minute}


def _unanswered_errors(r: Report) -> list[str]:
    return [f.id for f in r.findings if f.id == "ike-unanswered" and f.severity != Severity.INFO]


def _terminal(r: Report) -> str:
    return render_text([report_renderable(r, ladders=True, full=True)], width=140, terminal=False)


@pytest.mark.parametrize("what", IN_FLIGHT_CASES)
def test_request_at_the_capture_end_is_not_no_response(what: str, tmp_path: Path) -> None:
    r = _analyze(tmp_path, IN_FLIGHT_CASES[what](_sample()))
    assert not _unanswered_errors(r)  # the check: not (yet) unanswered
    html = render_html([r])
    assert "no response" not in html
    assert 'class="lost"' not in html
    assert f"{what}: {IN_FLIGHT}" in html
    text = _terminal(r)
    assert "no response" not in text
    assert f"{what}: {IN_FLIGHT}" in text


@pytest.mark.parametrize("what", LOST_CASES)
def test_request_unanswered_for_a_minute_is_no_response(what: str, tmp_path: Path) -> None:
    r = _analyze(tmp_path, LOST_CASES[what](_sample()))
    assert _unanswered_errors(r) == ["ike-unanswered"]
    html = render_html([r])
    assert html.count('class="lost"') == 1
    assert f"no response to {what}</text>" in html
    assert IN_FLIGHT not in html
    text = _terminal(r)
    assert f"X    no response to {what}" in text and IN_FLIGHT not in text


def test_request_before_a_capture_gap_is_outcome_unknown_in_html(tmp_path: Path) -> None:
    """Sent once, then no frame for 10 minutes: the check says outcome unknown (info), the
    terminal ladder says so, and the HTML ladder says the same words, without the red cross."""
    r = _analyze(tmp_path, _informational_then_gap(_sample()))
    assert not _unanswered_errors(r)
    words = "no response to INFORMATIONAL #2 seen: capture gap after it (outcome unknown)"
    assert words in _terminal(r)
    html = render_html([r])
    assert words in html and 'class="lost"' not in html and IN_FLIGHT not in html


def test_retransmitted_request_at_the_end_is_no_response(tmp_path: Path) -> None:
    """Retransmitted and still unanswered: the sender already waited its interval, so the
    model (and the check) call it unanswered even when the last copy is the last frame."""
    fr = _sample()
    again = (fr[0][0] + 1.0, fr[0][1])
    r = _analyze(tmp_path, [fr[0], again])
    assert _unanswered_errors(r) == ["ike-unanswered"]
    html = render_html([r])
    assert html.count('class="lost"') == 1 and IN_FLIGHT not in html


def test_bundled_sample_ending_on_a_request() -> None:
    """icmp-too-big ends on an INFORMATIONAL request sent once: in flight, not lost."""
    r = sample_report("icmp-too-big")
    assert not _unanswered_errors(r)
    html = render_html([r])
    assert "no response" not in html and 'class="lost"' not in html
    assert f"INFORMATIONAL #2: {IN_FLIGHT}" in html
    assert 'data-outcome="in-flight"' in html


@pytest.mark.parametrize("at_end", [False, True])
def test_ikev1_main_mode_unanswered_is_marked_in_both_ladders(at_end: bool, tmp_path: Path) -> None:
    """IKEv1 has no request/response pairing, but a Main Mode whose responder never sent
    anything is unanswered all the same (ExchangeRecord.unanswered): both ladders mark it
    after its last message, as "no response" or as in flight when the capture ends on it."""
    with open_capture(REPO_ROOT / "sample_pcaps" / "ikev1-main-psk.pcap") as cap:
        mm1 = next((ts, bytes(data)) for _n, ts, _lt, data, _orig in cap.frames())
    frames = [*_other(mm1[0] - 62.0, 60.0), mm1] if at_end else [mm1, *_other(mm1[0], 60.0)]
    r = _analyze(tmp_path, frames)
    text, html = _terminal(r), render_html([r])
    if at_end:
        assert f"MAIN_MODE #0: {IN_FLIGHT}" in text and f"MAIN_MODE #0: {IN_FLIGHT}" in html
        assert "no response" not in text and 'class="lost"' not in html
    else:
        assert _unanswered_errors(r) == ["ike-unanswered"]
        assert "X    no response to MAIN_MODE #0" in text
        assert html.count('class="lost"') == 1 and "no response to MAIN_MODE #0</text>" in html
