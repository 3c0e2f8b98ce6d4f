"""The live session without a network: stop conditions, finding events, rates, and the whole
``ipsecdiag live`` command driven by a fake tcpdump (no root needed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fakecap import make_tool
from typer.testing import CliRunner

from ipsecdiag.capture import live as live_mod
from ipsecdiag.capture.reader import open_capture
from ipsecdiag.cli import app
from ipsecdiag.live.session import FindingTracker, LiveSession, RateMeter, replacements
from ipsecdiag.reconstruction.model import EspFlow, Finding, Severity

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


class FakeFeed:
    """Batches on a schedule: ``script`` is a list of batches, ``[]`` meaning "nothing yet"."""

    def __init__(self, script: list[list[tuple]]) -> None:
        self.script = list(script)
        self.stopped = 0
        self.closed = False
        self.error = None

    def get(self, timeout: float):
        if self.stopped and not self.script:
            return None
        if not self.script:
            time.sleep(min(timeout, 0.01))
            return []
        return self.script.pop(0)

    def stop(self) -> None:
        self.stopped += 1

    def close(self) -> None:
        self.closed = True


def _fr(n: int) -> tuple:
    return (n, 1000.0 + n, 1, b"x" * 60, 60)


def test_count_stops_and_drains_without_passing_extra_frames() -> None:
    feed = FakeFeed([[_fr(1), _fr(2)], [], [_fr(3), _fr(4), _fr(5)], [_fr(6)]])
    s = LiveSession(feed, count=4)  # type: ignore[arg-type]
    got = [f for f in s.frames() if f is not None]
    assert [f[0] for f in got] == [1, 2, 3, 4]
    assert feed.stopped == 1 and feed.closed and s.stop_reason == "--count 4 reached"


def test_idle_source_yields_none_and_duration_stops() -> None:
    t = [0.0]
    feed = FakeFeed([[_fr(1)]] + [[] for _ in range(30)])
    s = LiveSession(feed, duration=2.0, clock=lambda: t[0])  # type: ignore[arg-type]
    out = []
    for f in s.frames():
        out.append(f)
        t[0] += 0.25
    assert out[0] == _fr(1) and None in out
    assert s.stop_reason == "--duration 2s reached" and feed.stopped == 1


def test_request_stop_keeps_the_frames_already_captured() -> None:
    feed = FakeFeed([[_fr(1)], [_fr(2)], [_fr(3)]])
    s = LiveSession(feed)  # type: ignore[arg-type]
    it = s.frames()
    assert next(it) == _fr(1)
    s.request_stop("interrupted")
    rest = [f for f in it if f is not None]
    assert [f[0] for f in rest] == [2, 3] and s.stop_reason == "interrupted"


def _finding(fid: str, frames: list[int]) -> Finding:
    return Finding(fid, Severity.ERROR, "t", "e", "r", frames=frames, ike_sa="a/b")


def test_finding_tracker_reports_new_and_withdrawn_once() -> None:
    t = FindingTracker()
    a1 = _finding("ike-unanswered", [3])
    new, gone = t.update([a1])
    assert new == [a1] and gone == []
    # more evidence for the same finding (first frame unchanged) is not a new finding
    assert t.update([_finding("ike-unanswered", [3, 5])]) == ([], [])
    new, gone = t.update([])
    assert new == [] and [f.id for f in gone] == ["ike-unanswered"]


def test_a_refined_finding_replaces_the_earlier_one_instead_of_being_withdrawn() -> None:
    # review 3 item 13: the IKE SA key gains its SPIr and the frames grow: same finding, refined
    early = Finding("nat-detected", Severity.INFO, "t", "e", "r", frames=[1], ike_sa="a/0000")
    later = Finding("nat-detected", Severity.INFO, "t2", "e", "r", frames=[1, 2], ike_sa="a/b")
    other = Finding("ike-unanswered", Severity.ERROR, "t", "e", "r", frames=[1], ike_sa="a/0000")
    assert replacements([later], [early, other]) == {id(later): early}
    assert replacements([later], [other]) == {}  # another id is a real withdrawal


def _first_frames(src: Path, n: int, dst: Path) -> Path:
    """The classic-pcap ``src`` cut to its first ``n`` records (little-endian headers)."""
    data = src.read_bytes()
    at = 24
    for _ in range(n):
        at += 16 + int.from_bytes(data[at + 8 : at + 12], "little")
    dst.write_bytes(data[:at])
    return dst


def test_live_lines_say_a_refined_finding_replaces_its_earlier_line(tmp_path: Path, fake_tcpdump) -> None:
    # frame 1 alone, then frames 2-3 (the fake cuts the file in two halves of its bytes):
    # nat-detected for the half-known SA is refined once the response arrives (the bundled
    # strongSwan captures force UDP encapsulation)
    fake_tcpdump(_first_frames(SAMPLES / "ikev2-psk-ok.pcap", 3, tmp_path / "three.pcap"), pieces=2, pause=1.0)
    lines = tmp_path / "events.jsonl"
    res = CliRunner().invoke(app, ["live", "-i", "lo", "--duration", "3", "--json-lines", str(lines)])
    assert res.exit_code in (0, 1), res.output
    events = [json.loads(x) for x in lines.read_text().splitlines()][:-1]
    nat = [e for e in events if e.get("id") == "nat-detected"]
    assert [e["event"] for e in nat] == ["finding", "finding", "finding-withdrawn"], nat
    assert nat[1]["replaces"] == {"ike_sa": nat[0]["ike_sa"], "frames": [1]}
    assert nat[2]["replaced_by"] == {"ike_sa": nat[1]["ike_sa"], "frames": [1, 2]}
    assert "withdrawn" not in res.output and "(replaces the earlier line for frames 1)" in res.output


def test_rate_meter_measures_over_about_a_second() -> None:
    m = RateMeter(window=1.0)
    flow = EspFlow(spi=1, src="192.0.2.1", dst="192.0.2.2", encap="none")
    for i in range(9):
        flow.packets, flow.bytes = 100 * i, 10_000 * i
        rates = m.update([flow], wall=i * 0.25)
    pps, bps = rates[(1, "192.0.2.1", "192.0.2.2")]
    assert pps == pytest.approx(400) and bps == pytest.approx(40_000)
    assert m.update([], wall=3.0) == {} and not m._hist  # a flow gone takes its samples with it


# ------------------------------------------------------------------ the command, fake tcpdump


@pytest.fixture
def fake_tcpdump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def install(capture: Path, **kw) -> Path:
        tool = make_tool(tmp_path, "tcpdump", capture=capture, **kw)
        monkeypatch.setattr(live_mod.shutil, "which", lambda name, **k: str(tool) if name == "tcpdump" else None)
        return tool

    return install


def test_live_command_reports_like_analyze_of_what_it_wrote(tmp_path: Path, fake_tcpdump) -> None:
    fake_tcpdump(SAMPLES / "ikev2-no-proposal.pcap", pieces=2, pause=0.2)
    written, lines = tmp_path / "w.pcapng", tmp_path / "events.jsonl"
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["live", "-i", "lo", "--duration", "2", "--write", str(written), "--json", str(tmp_path / "live.json"),
         "--json-lines", str(lines)],
    )  # fmt: skip
    assert res.exit_code == 1, res.output  # NO_PROPOSAL_CHOSEN is an error, as in analyze
    assert "ERROR [ike-no-proposal-chosen]" in res.output  # one line per new finding (no TTY)
    assert "live capture on lo via tcpdump: 2 frames" in res.output
    live_doc = json.loads((tmp_path / "live.json").read_text())
    info = live_doc.pop("live")
    assert info["backend"] == "tcpdump" and info["stopped"].startswith("--duration")
    assert info["dropped"]["kernel"] == 0 and info["written"] == [str(written)]
    an = runner.invoke(app, ["analyze", str(written), "--json", "-"])
    an_doc = json.loads(an.stdout)
    assert live_doc["source"].pop("files") == ["lo"] and live_doc["source"].pop("formats") == ["live tcpdump"]
    an_doc["source"].pop("files"), an_doc["source"].pop("formats")
    assert live_doc == an_doc
    events = [json.loads(x) for x in lines.read_text().splitlines()]
    assert events[-1]["schema"] == "ipsecdiag/report-1"
    found = [e for e in events[:-1] if e["event"] == "finding"]
    assert "ike-no-proposal-chosen" in {e["id"] for e in found}
    assert all(e["frames"] for e in found)


def test_live_command_count_and_usage_errors(tmp_path: Path, fake_tcpdump) -> None:
    fake_tcpdump(SAMPLES / "ikev2-psk-ok.pcap")
    runner = CliRunner()
    res = runner.invoke(app, ["live", "-i", "lo", "--count", "5", "--json", "-", "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["source"]["frames"] == 5 and doc["live"]["stopped"] == "--count 5 reached"
    for argv, msg in (
        (["--ring", "3x1MB"], "--ring needs --write"),
        (["--duration", "soon"], "--duration 'soon'"),
        (["--write", str(tmp_path / "x.pcapng"), "--ring", "1x1MB"], "2 to"),
        (["--json", "-", "--json-lines", "-"], "cannot both"),
        (["--fail-on", "sometimes"], "--fail-on"),
    ):
        res = runner.invoke(app, ["live", "-i", "lo", *argv])
        assert res.exit_code == 2 and msg in res.output, (argv, res.output)
    res = runner.invoke(app, ["live", "-i", "nosuch0"])
    assert res.exit_code == 2 and "interface 'nosuch0' does not exist" in res.output


def test_frames_seen_by_live_equal_the_capture(tmp_path: Path, fake_tcpdump) -> None:
    fake_tcpdump(SAMPLES / "ikev2-frag-blackhole.pcap", pieces=5, pause=0.05)
    out = tmp_path / "w.pcapng"
    res = CliRunner().invoke(app, ["live", "-i", "lo", "--duration", "1.5", "--write", str(out), "--json", "-"])
    assert res.exit_code in (0, 1), res.output
    with open_capture(SAMPLES / "ikev2-frag-blackhole.pcap") as a, open_capture(out) as b:
        assert [f[1:] for f in a.frames()] == [f[1:] for f in b.frames()]


def test_a_capture_tool_that_dies_is_reported_with_the_report_so_far(tmp_path: Path, fake_tcpdump) -> None:
    fake_tcpdump(SAMPLES / "ikev2-psk-ok.pcap", die="tcpdump: pcap_loop: The interface went down")
    res = CliRunner().invoke(app, ["live", "-i", "lo", "--duration", "20", "--json", "-", "--fail-on", "never"])
    assert res.exit_code == 0, res.output
    assert "the capture ended by itself: tcpdump exited with status 1: tcpdump: pcap_loop" in res.output
    doc = json.loads(res.stdout)
    assert doc["source"]["frames"] == 26 and doc["live"]["stopped"].startswith("capture ended (tcpdump exited")
