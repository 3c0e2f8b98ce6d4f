"""Anti-replay window model on the ESP hot path and the replay-family findings
(RFC 4303 §3.3.3 sequence numbers, §3.4.3 anti-replay, Appendix A extended sequence numbers)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from corpus import REPO_ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecdiag.diagnosis.base import CheckContext
from ipsecdiag.diagnosis.checks.replay import ReplayCheck
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.esp_tracker import MAX_EVENTS, RECENT, EspTracker
from ipsecdiag.reconstruction.model import ChildSaRecord, EspFlow, IkeSaRecord, Report
from ipsecdiag.reconstruction.options import AnalysisOptions

SYNTH = REPO_ROOT / "sample_pcaps" / "synth"
SAMPLES = REPO_ROOT / "sample_pcaps"
SRC, DST = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
SPI = 0x1000
FAMILY = {"esp-replay", "capture-duplicate", "esp-out-of-window", "esp-seq-reset", "esp-seq-exhaustion"}


def pkt(seq: int, salt: int = 0, spi: int = SPI) -> bytes:
    """An ESP packet with a body unique per (seq, salt), behind 14 bytes of fake link header."""
    return bytes(14) + struct.pack("!II", spi, seq & 0xFFFFFFFF) + struct.pack("!QQ", seq, salt) * 4


def feed(t: EspTracker, seqs: list[int], t0: float = 0.0, step: float = 0.01, frame0: int = 1) -> None:
    for i, seq in enumerate(seqs):
        data = pkt(seq)
        t.on_esp(frame0 + i, t0 + i * step, SRC, DST, 0, 0, data, 14, len(data))


def only_flow(t: EspTracker) -> EspFlow:
    (f,) = t.flows_out()
    return f


# -- the window model -------------------------------------------------------------------------
def test_in_order_flow_is_clean() -> None:
    t = EspTracker()
    feed(t, list(range(1, 1001)))
    f = only_flow(t)
    assert (f.packets, f.duplicates, f.reordered, f.gaps, f.seq_max) == (1000, 0, 0, 0, 1000)
    assert f.seq.out_of_window == f.seq.replays == f.seq.resets == 0


def test_gaps_are_counted_as_missing() -> None:
    t = EspTracker()
    feed(t, [1, 2, 3, 7, 8, 20])
    assert only_flow(t).gaps == 14


def test_reordering_inside_the_window_is_accepted() -> None:
    t = EspTracker(replay_window=64)
    feed(t, [1, 2, 5, 3, 4, 6, 70, 10])  # 10 arrives 60 behind 70: inside a 64 window
    f = only_flow(t)
    assert f.reordered == 3 and f.seq.out_of_window == 0
    assert f.seq.max_reorder_depth == 60


def test_reordering_beyond_the_window_is_dropped_and_the_needed_window_reported() -> None:
    seqs = [s for s in range(1, 201) if s != 50] + [50]  # 50 arrives 150 behind
    t = EspTracker(replay_window=64)
    feed(t, seqs)
    f = only_flow(t)
    assert f.seq.out_of_window == 1
    assert f.seq.oow_events == [(200, 50, 150)]
    finding = run_replay_check([f])[0]
    assert finding.id == "esp-out-of-window" and finding.data["window_needed"] == 151
    wide = EspTracker(replay_window=256)
    feed(wide, seqs)
    assert only_flow(wide).seq.out_of_window == 0


def test_window_option_reaches_the_tracker_through_analyze() -> None:
    path = SYNTH / "esp-reorder.pcap"
    narrow = analyze_capture(path, checks=[ReplayCheck()], options=AnalysisOptions(replay_window=64))
    wide = analyze_capture(path, checks=[ReplayCheck()], options=AnalysisOptions(replay_window=128))
    assert [f.id for f in narrow.findings] == ["esp-out-of-window"]
    assert narrow.findings[0].data["window_needed"] == 111
    assert wide.findings == []


# -- duplicates: capture artefact or replay -----------------------------------------------------
def test_byte_identical_copy_within_microseconds_is_a_capture_duplicate() -> None:
    t = EspTracker()
    for i, seq in enumerate(range(1, 11)):
        data = pkt(seq)
        t.on_esp(2 * i + 1, i * 0.1, SRC, DST, 0, 0, data, 14, len(data))
        t.on_esp(2 * i + 2, i * 0.1 + 20e-6, SRC, DST, 0, 0, data, 14, len(data))
    f = only_flow(t)
    assert f.seq.capture_duplicates == 10 and f.seq.replays == 0
    assert f.seq.dup_events[0][:3] == (2, 1, 1)


def test_identical_copy_much_later_is_a_replay() -> None:
    t = EspTracker()
    feed(t, list(range(1, 41)))
    data = pkt(5)
    t.on_esp(100, 5.0, SRC, DST, 0, 0, data, 14, len(data))
    f = only_flow(t)
    assert f.seq.replays == 1 and f.seq.capture_duplicates == 0
    assert f.seq.replay_events[0][3] == "later"
    assert f.seq.resets == 0


def test_reused_sequence_number_with_other_bytes_is_a_replay_even_when_close() -> None:
    t = EspTracker()
    feed(t, list(range(1, 41)))
    other = pkt(40, salt=1)
    t.on_esp(100, 0.39 + 0.0002, SRC, DST, 0, 0, other, 14, len(other))
    f = only_flow(t)
    assert f.seq.replays == 1 and f.seq.replay_events[0][3] == "different-bytes"


def test_duplicate_horizon_is_configurable() -> None:
    t = EspTracker(dup_seconds=0.01)
    feed(t, [1, 2, 3])
    data = pkt(3)
    t.on_esp(10, 0.02 + 0.005, SRC, DST, 0, 0, data, 14, len(data))
    assert only_flow(t).seq.capture_duplicates == 1


def test_interleaved_mirror_copies_are_found_in_the_recent_ring() -> None:
    """Copies arriving a few packets later (two capture interfaces) are still duplicates."""
    t = EspTracker()
    frames = []
    for seq in range(1, 101):
        frames.append((seq, pkt(seq)))
    fr = 1
    for i in range(0, 100, 4):
        block = frames[i : i + 4]
        for k, (_, data) in enumerate(block):
            t.on_esp(fr, i * 1e-4 + k * 1e-6, SRC, DST, 0, 0, data, 14, len(data))
            fr += 1
        for k, (_, data) in enumerate(block):
            t.on_esp(fr, i * 1e-4 + 10e-6 + k * 1e-6, SRC, DST, 0, 0, data, 14, len(data))
            fr += 1
    f = only_flow(t)
    assert f.seq.capture_duplicates == 100 and f.seq.replays == 0


def test_event_lists_and_ring_are_bounded() -> None:
    t = EspTracker()
    data = pkt(1)
    for i in range(5000):
        t.on_esp(i + 1, i * 1.0, SRC, DST, 0, 0, data, 14, len(data))
    f = only_flow(t)
    assert f.seq.replays == 4999
    assert len(f.seq.replay_events) == MAX_EVENTS
    assert len(t._ring) == RECENT


# -- resets, wraps, exhaustion ------------------------------------------------------------------
def test_restart_near_one_on_the_same_spi_is_a_reset() -> None:
    t = EspTracker()
    feed(t, list(range(1, 501)) + list(range(1, 51)))
    f = only_flow(t)
    assert f.seq.resets == 1 and f.seq.replays == 0 and f.duplicates == 0
    assert f.seq.reset_events[0][2:] == (500, 1)
    assert f.gaps == 0


def test_reset_on_a_short_sa_inside_the_tracking_window() -> None:
    t = EspTracker()
    feed(t, list(range(1, 101)) + list(range(1, 21)))
    f = only_flow(t)
    assert f.seq.resets == 1 and f.seq.replays == 0


def test_stale_low_packet_followed_by_the_old_numbering_is_not_a_reset() -> None:
    t = EspTracker()
    feed(t, list(range(1, 101)))
    data = pkt(1)
    t.on_esp(200, 2.0, SRC, DST, 0, 0, data, 14, len(data))  # packet 1 again, 1 s later
    feed(t, list(range(101, 111)), t0=2.01, frame0=201)
    f = only_flow(t)
    assert f.seq.resets == 0
    assert f.seq.replays == 1


def test_lone_low_packet_at_the_end_is_not_a_reset() -> None:
    t = EspTracker()
    feed(t, list(range(1, 101)))
    data = pkt(2)
    t.on_esp(500, 9.0, SRC, DST, 0, 0, data, 14, len(data))
    f = only_flow(t)
    assert f.seq.resets == 0 and f.seq.replays == 1


def test_esn_wrap_continues_the_sequence() -> None:
    """RFC 4303 Appendix A: with ESN the low 32 bits wrap and the high half is inferred."""
    top = 1 << 32
    t = EspTracker()
    feed(t, list(range(top - 100, top)) + list(range(0, 100)))
    f = only_flow(t)
    assert f.seq.esn_wraps == 1
    assert f.seq.resets == 0 and f.seq.too_old == 0 and f.duplicates == 0
    assert f.seq_max == top + 99
    assert f.gaps == 0


def test_packet_sent_before_the_wrap_arriving_after_it_is_reordering() -> None:
    top = 1 << 32
    seqs = [s for s in range(top - 50, top) if s != top - 3] + list(range(0, 20)) + [top - 3]
    t = EspTracker(replay_window=64)
    feed(t, seqs)
    f = only_flow(t)
    assert f.reordered == 1 and f.duplicates == 0
    assert f.seq.max_reorder_depth == 22 and f.seq.out_of_window == 0


def _flow_near_limit() -> EspFlow:
    top = (1 << 32) - 1000
    t = EspTracker()
    feed(t, list(range(top - 10, top)))
    return only_flow(t)


def run_replay_check(flows: list[EspFlow], sas: list[IkeSaRecord] | None = None) -> list:
    r = Report(esp_flows=flows, ike_sas=sas or [])
    return list(ReplayCheck().run(CheckContext(report=r)))


def _sa_with_esn(spi: int, esn: bool | None) -> IkeSaRecord:
    sa = IkeSaRecord(version=2, spi_i=bytes(8), spi_r=bytes(8), initiator=("a", 500), responder=("b", 500))
    sa.child_sas.append(ChildSaRecord(spi_i=spi, spi_r=spi + 1, esn=esn))
    return sa


def test_sequence_near_2_32_without_esn_warns() -> None:
    f = _flow_near_limit()
    (finding,) = run_replay_check([f])
    assert finding.id == "esp-seq-exhaustion" and finding.severity.label == "warning"
    assert run_replay_check([f], [_sa_with_esn(SPI, False)])[0].data["esn"] is False


def test_sequence_near_2_32_with_esn_is_fine() -> None:
    assert run_replay_check([_flow_near_limit()], [_sa_with_esn(SPI, True)]) == []


def test_wrap_without_esn_is_an_error_and_with_unknown_esn_is_inferred() -> None:
    top = 1 << 32
    t = EspTracker()
    feed(t, list(range(top - 10, top)) + list(range(0, 10)))
    f = only_flow(t)
    (finding,) = run_replay_check([f], [_sa_with_esn(SPI, False)])
    assert finding.id == "esp-seq-exhaustion" and finding.severity.label == "error"
    assert run_replay_check([f]) == []  # ESN unknown: the wrap itself says ESN is on


def test_low_sequence_numbers_do_not_warn() -> None:
    t = EspTracker()
    feed(t, list(range(1, 100)))
    assert run_replay_check([only_flow(t)]) == []


# -- property: the model matches a naive reference ---------------------------------------------
def _reference(seqs: list[int], window: int) -> tuple[int, int, int]:
    """(duplicates, reordered, out_of_window) computed the slow, obvious way."""
    seen: set[int] = set()
    top = None
    dups = reord = oow = 0
    for s in seqs:
        if s in seen:
            dups += 1
            continue
        seen.add(s)
        if top is not None and s < top:
            reord += 1
            if top - s >= window:
                oow += 1
        top = s if top is None else max(top, s)
    return dups, reord, oow


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=20, max_value=400), min_size=1, max_size=150),
    st.sampled_from([4, 16, 64]),
)
def test_window_model_matches_reference(seqs: list[int], window: int) -> None:
    t = EspTracker(replay_window=window)
    # Distinct timestamps 1 s apart: every repeat is a replay, none a capture duplicate.
    for i, s in enumerate(seqs):
        data = pkt(s)
        t.on_esp(i + 1, float(i), SRC, DST, 0, 0, data, 14, len(data))
    f = only_flow(t)
    dups, reord, oow = _reference(seqs, window)
    assert (f.duplicates, f.reordered, f.seq.out_of_window) == (dups, reord, oow)
    assert f.seq.replays == dups and f.seq.resets == 0


# -- end to end on the synthesized and recorded captures --------------------------------------
def _ids(path: Path, **options: object) -> list[str]:
    r = analyze_capture(path, options=AnalysisOptions(**options))
    return [f.id for f in r.findings]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("esp-replay", {"esp-replay"}),
        ("esp-capture-duplicates", {"capture-duplicate"}),
        ("esp-reorder", {"esp-out-of-window"}),
        ("esp-seq-reset", {"esp-seq-reset"}),
        ("esp-seq-exhaustion", {"esp-seq-exhaustion"}),
    ],
)
def test_synthesized_captures(name: str, expected: set[str]) -> None:
    ids = set(_ids(SYNTH / f"{name}.pcap"))
    assert ids & FAMILY == expected


def test_replay_capture_evidence() -> None:
    r = analyze_capture(SYNTH / "esp-replay.pcap", checks=[ReplayCheck()])
    (f,) = r.findings
    assert f.data["replays"] == 2 and f.frames == [60, 82]
    assert any("different bytes" in e for e in f.evidence)


def test_ike_capture_duplicates_are_reported(tmp_path: Path) -> None:
    from ipsecdiag.capture.reader import open_capture
    from ipsecdiag.capture.writer import PcapWriter

    src = SAMPLES / "ikev2-psk-ok.pcap"
    out = tmp_path / "dup.pcap"
    with open_capture(src) as cap, PcapWriter(out, 1) as w:
        for frame, ts, _lt, data, _orig in cap.frames():
            w.write(ts, data)
            if frame == 1:
                w.write(ts + 5e-6, data)
    r = analyze_capture(out, checks=[ReplayCheck()])
    (f,) = r.findings
    assert f.id == "capture-duplicate" and f.data == {"esp": 0, "ike": 1} and f.frames == [2]


def test_untimed_capture_has_no_ike_duplicates(tmp_path: Path) -> None:
    """A capture whose frames all carry one timestamp cannot tell a copy from a retransmission."""
    from ipsecdiag.capture.reader import open_capture
    from ipsecdiag.capture.writer import PcapWriter

    out = tmp_path / "untimed.pcap"
    with open_capture(SAMPLES / "ikev2-psk-ok.pcap") as cap, PcapWriter(out, 1) as w:
        for frame, _ts, _lt, data, _orig in cap.frames():
            w.write(0.0, data)
            if frame == 1:
                w.write(0.0, data)
    assert analyze_capture(out, checks=[ReplayCheck()]).findings == []


@pytest.mark.parametrize(
    "name", ["ikev2-psk-ok", "ikev2-cbc-sha256-ok", "ikev1-main-psk", "ikev2-invalid-ke"]
)
def test_healthy_samples_raise_no_sequence_findings(name: str) -> None:
    assert not set(_ids(SAMPLES / f"{name}.pcap")) & FAMILY
