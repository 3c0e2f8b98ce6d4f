"""IKEv1 exchanges that stop part way (issue 11): the bundled Main Mode + Quick Mode recording
with Quick Mode message 3 removed and message 2 retransmitted by the responder until it gives up,
written with the project's pcap writer."""

from __future__ import annotations

from pathlib import Path

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.pipeline import analyze_capture

ROOT = Path(__file__).resolve().parents[2]
V1 = ROOT / "sample_pcaps" / "ikev1-main-psk.pcap"


def _stalled(path: Path, resends: int) -> None:
    with open_capture(V1) as cap:
        frames = [(ts, lt, data) for _fr, ts, lt, data, _orig in cap.frames()]
    t8, lt8, qm2 = frames[7]
    with PcapWriter(path, frames[0][1]) as w:
        for ts, _lt, data in frames[:8]:  # Main Mode 1-6, Quick Mode 1-2
            w.write(ts, data)
        for k in range(resends):  # the responder retransmits Quick Mode message 2, unanswered
            w.write(t8 + 2.0 * (2**k), qm2)


def test_quick_mode_message_3_never_sent(tmp_path: Path) -> None:
    p = tmp_path / "qm-stall.pcap"
    _stalled(p, 3)
    report = analyze_capture(p)
    errors = [f for f in report.findings if f.severity.label == "error"]
    assert errors and errors[0].id == "ikev1-exchange-stopped"
    f = errors[0]
    assert f.data == {"phase": "QUICK_MODE", "messages": 2, "missing": 3, "stopped": "initiator"}
    assert "Quick Mode (phase 2) stopped: message 3 never sent by the initiator" in f.title
    assert "no IPsec SA exists on either side" in f.explanation


def test_complete_exchange_is_not_reported() -> None:
    report = analyze_capture(V1)
    assert not [f for f in report.findings if f.id == "ikev1-exchange-stopped"]


def test_message_in_flight_at_capture_end_is_not_reported(tmp_path: Path) -> None:
    p = tmp_path / "qm-now.pcap"
    _stalled(p, 0)  # capture ends right after Quick Mode message 2
    report = analyze_capture(p)
    assert not [f for f in report.findings if f.id == "ikev1-exchange-stopped"]
