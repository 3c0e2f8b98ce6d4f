"""Captures not in time order (issue 11): merged files or several interfaces. The bundled
recordings are rewritten with the project's pcap writer with their frames out of time order;
spans, retransmission intervals, request/response pairing and IKEv1 roles must follow time,
and capture-health says once that the capture is out of order and what is not judged."""

from __future__ import annotations

from pathlib import Path

from checks_builders import exchange, ike_sa, msg, report, run, v1_notify

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.diagnosis.checks.dpd import DpdCheck
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Report

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_pcaps"
GCM = {"encr": "ENCR_AES_GCM_16", "encr_key_bits": 256, "prf": "PRF_HMAC_SHA2_256", "ke": "ECP_256"}


def _frames(name: str) -> list[tuple[float, int, bytes]]:
    with open_capture(SAMPLES / name) as cap:
        return [(ts, lt, data) for _fr, ts, lt, data, _orig in cap.frames()]


def _write(path: Path, frames: list[tuple[float, int, bytes]]) -> Path:
    with PcapWriter(path, frames[0][1]) as w:
        for ts, _lt, data in frames:
            w.write(ts, data)
    return path


def _time_order(r: Report) -> list:
    return [f for f in r.findings if f.id == "capture-health" and f.data.get("kind") == "time-order"]


def test_retransmissions_out_of_order_are_timed(tmp_path: Path) -> None:
    fr = _frames("ikev2-unanswered.pcap")  # IKE_SA_INIT sent 4x at 0, 1.0, 2.4, 4.36 s
    r = analyze_capture(_write(tmp_path / "u.pcap", [fr[2], fr[3], fr[0], fr[1], fr[4], fr[5]]))
    assert r.source.first_ts is not None and r.source.last_ts is not None
    assert (r.source.first_ts, r.source.last_ts) == (fr[0][0], fr[5][0])  # earliest and latest, not first/last
    [f] = [f for f in r.findings if f.id == "ike-unanswered"]
    ev = " ".join(f.evidence)
    assert "sent 4x (retransmitted after 1.0s, 1.4s, 2.0s)" in ev and "-" not in ev.split("retransmitted")[1][:30]
    assert "frames 3, 4, 1, 2" in ev  # in time order
    [h] = _time_order(r)
    assert h.severity.label == "warning"
    assert h.data["inversions"] == 2 and h.data["first_frames"] == [3, 4]
    assert abs(h.data["largest_step_back"] - (fr[3][0] - fr[0][0])) < 1e-3
    assert any(e.startswith("not judged (they follow frame order): ESP sequence") for e in h.evidence)
    assert "reordercap" in h.remediation
    # no byte-identical retransmission seconds apart passes for a capture duplicate
    assert not [x for x in r.findings if x.id == "capture-duplicate"]


def test_merged_per_direction_captures_pair_requests_and_responses(tmp_path: Path) -> None:
    """mergecap -a of the initiator's and the responder's capture: every response before its
    request in frame order."""
    fr = _frames("ikev2-psk-ok.pcap")
    ini = [x for x in fr if x[2][26:30] == bytes([192, 0, 2, 2])]  # IPv4 source address
    rsp = [x for x in fr if x[2][26:30] != bytes([192, 0, 2, 2])]
    r = analyze_capture(_write(tmp_path / "m.pcap", rsp + ini))
    [sa] = r.ike_sas
    assert sa.state == "established"
    assert all(e.request is not None and e.response is not None for e in sa.exchanges)
    assert [e.type for e in sa.exchanges] == ["IKE_SA_INIT", "IKE_AUTH", "INFORMATIONAL"]
    assert not [f for f in r.findings if f.severity.label == "error"]
    assert not [f for f in r.findings if f.id in ("ike-unanswered", "esp-one-way", "esp-replay")]
    [h] = _time_order(r)
    assert h.data["inversions"] >= 1
    in_order = analyze_capture(SAMPLES / "ikev2-psk-ok.pcap")
    assert r.source.first_ts == in_order.source.first_ts and r.source.last_ts == in_order.source.last_ts


def test_ikev1_responder_answer_first_keeps_the_roles(tmp_path: Path) -> None:
    fr = _frames("ikev1-main-psk.pcap")
    r = analyze_capture(_write(tmp_path / "v1.pcap", [fr[1], fr[0], *fr[2:]]))
    [sa] = r.ike_sas
    assert sa.initiator[0] == "192.0.2.2" and sa.state == "established"
    mm = sa.exchanges[0]
    assert mm.type == "MAIN_MODE" and mm.messages[0].from_initiator and mm.initiated_by_initiator
    assert [m.from_initiator for m in mm.messages] == [True, False, True, False, True, False]
    assert sa.proposal is not None and sa.offered


def test_interface_jitter_is_not_out_of_order(tmp_path: Path) -> None:
    fr = _frames("ikev2-psk-ok.pcap")
    assert 0 < fr[5][0] - fr[4][0] < 0.010  # two ESP packets under a ms apart, swapped
    r = analyze_capture(_write(tmp_path / "j.pcap", [*fr[:4], fr[5], fr[4], *fr[6:]]))
    assert _time_order(r) == []
    assert _time_order(analyze_capture(SAMPLES / "ikev2-psk-ok.pcap")) == []


def test_liveness_check_captured_twice_is_one_transmission() -> None:
    """The same INFORMATIONAL seen on two interfaces 50 µs apart is no retransmission: no dead
    peer from one transmission."""
    req = msg(inner=[], frame=10, ts=10.0, natt=True, resend=[(11, 10.00005)])
    sa = ike_sa(exchange("INFORMATIONAL", 2, req, None), proposal=GCM)
    assert run(DpdCheck(), report(sa, last_ts=30.0)) == []
    resent = msg(inner=[], frame=10, ts=10.0, natt=True, resend=[(11, 10.00005), (12, 12.0)])
    [f] = run(DpdCheck(), report(ike_sa(exchange("INFORMATIONAL", 2, resent, None), proposal=GCM), last_ts=30.0))
    assert f.data["transmissions"] == 2  # the capture's copy is not counted
    # nothing shows the SA given up (no new IKE SA, no DELETE): the capture just ended
    assert "retransmitted until the capture ended" in f.explanation and "given up" not in f.explanation


def test_one_unacknowledged_ikev1_probe_is_no_dead_peer() -> None:
    m = msg(inner=[v1_notify("R_U_THERE", data=(7).to_bytes(4, "big"))], frame=10, ts=10.0, version=1)
    ex = exchange("INFORMATIONAL_V1", 1010, None, messages=[m], by_initiator=True)
    assert run(DpdCheck(), report(ike_sa(ex, version=1), last_ts=60.0)) == []


def test_ikev1_decryption_out_of_order_is_named_as_not_judged(tmp_path: Path) -> None:
    from ipsecdiag.keys.load import load_key_sources

    fr = _frames("ikev1-main-psk.pcap")
    keys = load_key_sources([SAMPLES / "ikev1-main-psk.charon.log"]).store
    late = [*fr[:8], *fr[9:15], fr[8], *fr[15:]]  # Quick Mode message 3 captured after ESP 0.4 s later
    r = analyze_capture(_write(tmp_path / "v1k.pcap", late), keys=keys)
    [h] = _time_order(r)
    assert (
        "IKEv1 decryption within phase 1 and within each exchange, whose IV chain (RFC 2409 Appendix B) "
        "runs in the order captured (messages captured before their phase 1 are decrypted after it"
    ) in h.evidence[3]
    assert not [f for f in r.findings if f.id == "keys-wrong"]  # the keys are right: not their fault
    [h] = _time_order(analyze_capture(_write(tmp_path / "v1.pcap", late)))
    assert "IKEv1" not in h.evidence[3]
