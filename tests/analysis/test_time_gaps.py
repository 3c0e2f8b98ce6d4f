"""Captures out of time order or with gaps (review 2, items 2, 5, 11, 12), rewritten with the
project's pcap reader and writer:

* the two halves of a capture swapped (mergecap -a b a): the IKE DELETE read before the IKE_AUTH
  still ends the CHILD SA, the endpoints are those first seen in time, and no view prints a
  negative span, a backwards sequence range or reordering that capture-health calls not judged;
* every frame stepping back is counted (as tshark's frame.time_epoch would), not only the IKE
  and ESP frames the report keeps a time for;
* a request sent once and followed by minutes without a frame is an unknown outcome, not an
  unanswered request;
* ESP flows of a CHILD SA whose IKE_AUTH was captured encrypted (no keys) carry their IKE SA in
  the JSON, as the text links them by address.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from checks_keyed import LAB, SAMPLES, analyze, needs_decryption
from corpus import needs_corpus

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Report
from ipsecdiag.report.childsa import child_sa_rows
from ipsecdiag.report.json import report_dict
from ipsecdiag.report.render import render_text, report_renderable

Frames = list[tuple[float, int, bytes]]


def _frames(path: Path) -> Frames:
    with open_capture(path) as cap:
        return [(ts, lt, data) for _fr, ts, lt, data, _orig in cap.frames()]


def _write(path: Path, frames: Frames) -> Path:
    with PcapWriter(path, frames[0][1]) as w:
        for ts, _lt, data in frames:
            w.write(ts, data)
    return path


def _text(r: Report) -> str:
    return render_text([report_renderable(r, full=True)], width=120, terminal=False)


def _health(r: Report) -> dict:
    [h] = [f for f in r.findings if f.id == "capture-health" and f.data.get("kind") == "time-order"]
    return h.data


@needs_decryption
def test_swapped_halves_delete_children_and_print_nothing_backwards(tmp_path: Path) -> None:
    fr = _frames(SAMPLES / "ikev2-psk-ok.pcap")  # INIT, AUTH, ESP 5-24, DELETE 25/26
    swapped = _write(tmp_path / "swapped.pcap", fr[12:] + fr[:12])
    r = analyze(swapped, SAMPLES / "ikev2-psk-ok.charon.log")
    [sa] = r.ike_sas
    assert sa.state == "deleted" and sa.initiator == ("192.0.2.2", 500)
    [child] = sa.child_sas
    assert child.deleted_frame == 13  # the DELETE request, read before the IKE_AUTH (frames 15/16)
    assert _health(r)["every_frame"] is True
    text = _text(r)
    assert "installed" not in text and "deleted, ESP" in text
    assert not re.search(r"\d reord", text) and "-0." not in text
    assert "seen   not judged: capture out of order" in text
    for f in r.esp_flows:
        assert f.seq_first > f.seq_last  # frame order: the later half first
        assert f"{f.seq_min}..{f.seq_max}" in text and f"{f.seq_first}..{f.seq_last}" not in text
    [row] = child_sa_rows(r)  # the HTML view's times: earliest and latest known, never backwards
    assert row.first_ts is not None and row.last_ts is not None and row.first_ts <= row.last_ts
    doc = json.loads(json.dumps(report_dict(r), default=str))
    assert doc["ike_sas"][0]["child_sas"][0]["deleted_frame"] == 13
    for f in doc["esp_flows"]:
        assert f["reordered"] is None and f["first_time"] <= f["last_time"]
    # the same frames in order: nothing changes in what was right
    in_order = analyze(SAMPLES / "ikev2-psk-ok.pcap", SAMPLES / "ikev2-psk-ok.charon.log")
    assert in_order.ike_sas[0].child_sas[0].deleted_frame == 25
    assert "not judged" not in _text(in_order)
    assert all(isinstance(f["reordered"], int) for f in report_dict(in_order)["esp_flows"])


@needs_corpus
@needs_decryption
def test_swapped_halves_keep_the_ports_first_seen(tmp_path: Path) -> None:
    """The lab's NAT-T run: IKE floats to 4500 at IKE_AUTH; the half read first holds only
    4500. The initiator is named as first seen in time, on 500 (json-schema.md)."""
    lab = LAB / "ikev2-psk-ok"
    fr = _frames(lab / "capture.pcap")
    r = analyze(_write(tmp_path / "s.pcap", fr[25:] + fr[:25]), lab / "charon-initiator.log")
    [sa] = r.ike_sas
    assert (sa.initiator, sa.responder) == (("10.99.1.2", 500), ("10.99.2.2", 500))
    assert sa.state == "deleted" and sa.child_sas[0].deleted_frame is not None


def test_every_frame_stepping_back_is_counted(tmp_path: Path) -> None:
    """ESP packets in the middle of a flow count too: the halves swapped, every frame of the
    earlier half read second steps back."""
    fr = _frames(SAMPLES / "ikev2-psk-ok.pcap")
    r = analyze_capture(_write(tmp_path / "s.pcap", fr[12:] + fr[:12]))
    h = _health(r)
    assert h["inversions"] == 12 and h["every_frame"] is True  # tshark: frames 15-26 of 26
    [f] = [f for f in r.findings if f.data.get("kind") == "time-order"]
    assert f.title == "Capture not in time order (12 frame(s) out of order)"


def _gap_capture(tmp_path: Path, gap: float) -> Path:
    """An IKE SA set up, ESP, then the INFORMATIONAL request sent once, and the rest of the
    capture ``gap`` seconds later (a second snippet stitched on): ESP of the same SA."""
    fr = _frames(SAMPLES / "ikev2-psk-ok.pcap")
    head = fr[:12] + [fr[24]]  # INIT, AUTH, ESP, the DELETE request; its response never seen
    t = fr[24][0] + gap
    tail = [(t + 0.2 * i, lt, data) for i, (_ts, lt, data) in enumerate(fr[12:20])]
    return _write(tmp_path / f"gap{gap:.0f}.pcap", head + tail)


def test_request_sent_once_before_a_capture_gap_is_no_unanswered_error(tmp_path: Path) -> None:
    r = analyze_capture(_gap_capture(tmp_path, 600.0))
    [f] = [f for f in r.findings if f.id == "ike-unanswered"]
    assert f.severity.label == "info"
    assert f.title == "IKE request outcome unknown: capture gap"
    assert "no frame in the 10 s after it (the next, frame 14, comes 600 s later)" in " ".join(f.evidence)
    assert f.data["outcome"] == "unknown: capture gap"
    assert not [x for x in r.findings if x.severity.label == "error"]
    text = _text(r)  # the ladder says the same
    assert "no response to INFORMATIONAL #2 seen: capture gap after it (outcome unknown)" in text
    assert "X    no response" not in text


def test_request_sent_once_before_the_clock_steps_back_is_unknown(tmp_path: Path) -> None:
    fr = _frames(SAMPLES / "ikev2-psk-ok.pcap")
    # the request, then snippets of the same ESP from an hour earlier and an hour later
    head = fr[:12] + [fr[24]]
    esp = fr[12:20]
    tail = [(ts + d, lt, data) for d in (-3600.0, 3600.0) for ts, lt, data in esp]
    r = analyze_capture(_write(tmp_path / "back.pcap", head + tail))
    found = [f for f in r.findings if f.id == "ike-unanswered"]
    assert found and all(f.severity.label == "info" for f in found)
    assert "the capture steps back" in " ".join(found[0].evidence)


def test_a_capture_that_goes_on_still_proves_the_request_unanswered(tmp_path: Path) -> None:
    """The same request with the capture going on 5 s later (within the retransmission
    interval) and never retransmitted: the gap rule does not apply."""
    r = analyze_capture(_gap_capture(tmp_path, 5.0))
    [f] = [f for f in r.findings if f.id == "ike-unanswered"]
    assert f.severity.label == "error"
    assert "of this IKE SA" not in f.explanation and "1 request(s)" not in f.explanation
    assert f.explanation.endswith("never answered INFORMATIONAL request(s) sent to it.")
    assert "X    no response to INFORMATIONAL #2" in _text(r)


def test_esp_flows_carry_the_ike_sa_linked_by_address() -> None:
    """Without keys the IKE_AUTH is encrypted: the CHILD SA is linked by address, and the JSON
    says so instead of null."""
    r = analyze_capture(SAMPLES / "ikev2-psk-ok.pcap")
    [sa] = r.ike_sas
    flows = report_dict(r)["esp_flows"]
    assert flows and all(f["ike_sa"] == sa.key and f["ike_sa_inferred"] is True for f in flows)
    keyed = report_dict(analyze(SAMPLES / "ikev2-psk-ok.pcap", SAMPLES / "ikev2-psk-ok.charon.log"))
    assert all(f["ike_sa"] == sa.key and f["ike_sa_inferred"] is False for f in keyed["esp_flows"])
