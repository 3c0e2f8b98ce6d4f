"""The pipeline entry point: any iterable of frames, snapshots of the findings so far.

A live capture drives :func:`analyze_frames` with its own frames; these tests feed it the
frames of bundled captures and hold it to the file path (:func:`analyze_capture`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from checks_keyed import SAMPLES

from ipsecdiag.capture.reader import Frame, open_capture
from ipsecdiag.keys.load import load_keys
from ipsecdiag.keys.model import KeyStore
from ipsecdiag.pipeline import AnalysisOptions, Snapshot, analyze_capture, analyze_frames
from ipsecdiag.report.json import report_dict


def _frames(path: Path) -> list[Frame]:
    with open_capture(path) as cap:
        return list(cap.frames())


def _comparable(d: dict) -> dict:
    # Fields only a file has: its name, format and size on disk.
    src = {k: v for k, v in d["source"].items() if k not in ("files", "formats", "bytes")}
    return {**d, "source": src}


def _keys(name: str) -> KeyStore:
    store = KeyStore()
    store.extend(load_keys(SAMPLES / f"{name}.charon.log"))
    return store


def test_frames_give_the_report_of_the_file() -> None:
    for name in ("ikev2-psk-ok", "ikev2-frag-blackhole", "ikev1-main-psk"):
        path = SAMPLES / f"{name}.pcap"
        keys = _keys(name)
        from_file = analyze_capture(path, keys=keys)
        from_frames = analyze_frames(iter(_frames(path)), keys=keys, source_name="live", source_format="live")
        assert from_frames.source.files == ["live"] and from_frames.source.formats == ["live"]
        assert _comparable(report_dict(from_frames)) == _comparable(report_dict(from_file))
        assert from_frames.findings, name


class FakeClock:
    """One second per reading: the snapshot rate is then a count of clock() calls."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_snapshots_are_bounded_and_do_not_disturb_the_pass() -> None:
    path = SAMPLES / "ikev2-frag-blackhole.pcap"
    frames = _frames(path)
    keys = _keys("ikev2-frag-blackhole")
    seen: list[Snapshot] = []
    final = analyze_frames(
        iter(frames), keys=keys, on_snapshot=seen.append, snapshot_interval=5.0, clock=FakeClock()
    )
    plain = analyze_frames(iter(frames), keys=keys)
    assert report_dict(final) == report_dict(plain)
    # Two clock readings per frame at most; one snapshot per 5 "seconds" at most.
    assert 1 <= len(seen) <= 2 * len(frames) // 5 + 1
    assert [s.frames for s in seen] == sorted(s.frames for s in seen)
    assert all(s.findings is s.report.findings for s in seen)
    # The last snapshot already knows the unanswered IKE_AUTH the final report diagnoses.
    last_ids = {f.id for f in seen[-1].findings}
    assert "ike-unanswered" in last_ids
    assert last_ids <= {f.id for f in final.findings} | {"ike-unanswered"}
    # A snapshot is a copy: the pass went on without changing what it holds.
    first = seen[0]
    assert first.report.source.frames < final.source.frames
    assert sum(len(sa.exchanges) for sa in first.report.ike_sas) <= sum(len(sa.exchanges) for sa in final.ike_sas)


def test_idle_ticks_keep_snapshots_coming() -> None:
    frames = _frames(SAMPLES / "ikev2-unanswered.pcap")

    def live() -> Iterator[Frame | None]:
        yield from frames[:2]
        for _ in range(20):
            yield None  # no packet: the source is idle
        yield from frames[2:]

    seen: list[Snapshot] = []
    final = analyze_frames(live(), on_snapshot=seen.append, snapshot_interval=3.0, clock=FakeClock())
    assert final.source.frames == frames[-1][0]
    idle = [s for s in seen if s.frames == frames[1][0]]
    assert len(idle) >= 5  # snapshots while no frame arrived, all of the same two frames
    assert final.findings


def test_options_reach_every_stage() -> None:
    path = SAMPLES / "ikev2-psk-ok.pcap"
    r = analyze_capture(path, options=AnalysisOptions(replay_window=128, path_mtu=1400))
    assert r.options.replay_window == 128
    assert r.esp_flows and all(f.seq.replay_window == 128 for f in r.esp_flows)
    mtu = [f for f in r.findings if f.id == "tunnel-mtu"]
    assert mtu and all(f.data["path_mtu"] == 1400 for f in mtu)


def test_empty_source() -> None:
    r = analyze_frames(iter(()))
    assert r.source.frames == 0 and r.source.first_ts is None and r.findings == []


def test_no_keyed_context_outlives_the_analysis() -> None:
    """Keyed cipher contexts belong to the pass (its decryptors, its AH verifiers), not to a
    process-wide cache: once the report is built, none of them is alive."""
    import gc

    from ipsecdiag.crypto.sk import SkContext
    from ipsecdiag.esp.ah import AhVerifier
    from ipsecdiag.esp.sa import EspDecryptor

    kinds = (SkContext, AhVerifier, EspDecryptor)

    def alive() -> int:
        gc.collect()
        return sum(isinstance(o, kinds) for o in gc.get_objects())

    before = alive()
    report = analyze_capture(SAMPLES / "ikev2-cbc-sha256-ok.pcap", keys=_keys("ikev2-cbc-sha256-ok"))
    assert any(f.decrypted for f in report.esp_flows)
    assert any(m.decrypted for sa in report.ike_sas for e in sa.exchanges for m in e.all_messages())
    assert alive() == before
