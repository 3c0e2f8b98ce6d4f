"""Several files that continue one another are one capture for ``analyze`` (ring, splits).

A bundled capture cut into pieces with the project's writer gives, through
``analyze piece*``, the report of the whole file: findings, evidence frame numbers, IKE SAs
and ESP flows included; only the source's file list differs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipsecdiag.capture.multi import capture_groups, series_key, series_runs
from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapNgWriter, PcapWriter
from ipsecdiag.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


def _frames(path: Path) -> list[tuple]:
    with open_capture(path) as c:
        return list(c.frames())


def _split(src: Path, out: Path, cuts: list[int], *, ng: bool, stem: str = "piece") -> list[Path]:
    frames = _frames(src)
    edges = [0, *cuts, len(frames)]
    paths = []
    for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False), 1):
        p = out / f"{stem}_{i:05d}.{'pcapng' if ng else 'pcap'}"
        w = PcapNgWriter(p) if ng else PcapWriter(p, frames[0][2])
        with w:
            for _n, ts, lt, data, orig in frames[a:b]:
                if ng:
                    w.write(ts, data, linktype=lt, orig_len=orig)
                else:
                    w.write(ts, data, orig)
        paths.append(p)
    return paths


def _analyze(*args: str) -> tuple[int, object]:
    res = CliRunner().invoke(app, ["analyze", *args, "--json", "-", "--fail-on", "error"])
    assert res.exit_code in (0, 1), res.output
    doc = json.loads(res.stdout)
    # --json is always one object: several reports come as ipsecdiag/reports-1 (issue 13).
    return res.exit_code, doc["reports"] if doc.get("schema") == "ipsecdiag/reports-1" else doc


@pytest.mark.parametrize(
    ("sample", "cuts", "ng", "keys"),
    [
        ("ikev2-frag-blackhole.pcap", [4, 7, 9], False, True),  # cuts inside the fragmented IKE_AUTH
        ("ikev2-psk-ok.pcap", [3, 13], True, True),  # an exchange straddles files; ESP across them
        ("ikev2-invalid-ke.pcap", [1], True, False),
        ("ikev1-main-psk.pcap", [5, 6, 20], False, True),
    ],
)
def test_pieces_give_the_report_of_the_whole_file(
    tmp_path: Path, sample: str, cuts: list[int], ng: bool, keys: bool
) -> None:
    src = SAMPLES / sample
    pieces = _split(src, tmp_path, cuts, ng=ng)
    extra = ["--keys", str(src.with_suffix(".charon.log"))] if keys else []
    code_whole, whole = _analyze(str(src), *extra)
    code_parts, parts = _analyze(*map(str, pieces), *extra)
    assert isinstance(parts, dict), "continuing pieces must give one report, not an array"
    assert parts["source"].pop("files") == [str(p) for p in pieces]
    assert parts["source"].pop("formats") == ["pcapng" if ng else "pcap"] * len(pieces)
    whole["source"].pop("files"), whole["source"].pop("formats")
    assert parts == whole
    assert code_parts == code_whole
    assert parts["source"]["frames"] == len(_frames(src))


def test_separate_keeps_one_report_per_file(tmp_path: Path) -> None:
    pieces = _split(SAMPLES / "ikev2-psk-ok.pcap", tmp_path, [10], ng=False)
    _, reps = _analyze(*map(str, pieces), "--separate")
    assert isinstance(reps, list) and [r["source"]["frames"] for r in reps] == [10, 16]


def test_unrelated_captures_stay_separate(tmp_path: Path) -> None:
    # different names (not one numbered series), even though one starts after the other ends
    _, reps = _analyze(str(SAMPLES / "ikev2-psk-ok.pcap"), str(SAMPLES / "ikev2-no-proposal.pcap"))
    assert isinstance(reps, list) and len(reps) == 2


def test_a_series_whose_times_go_back_is_not_one_capture(tmp_path: Path) -> None:
    a = _split(SAMPLES / "ikev2-no-proposal.pcap", tmp_path, [], ng=False, stem="cap")[0]
    b_frames = _frames(SAMPLES / "ikev2-psk-ok.pcap")  # recorded before ikev2-no-proposal
    b = tmp_path / "cap_00002.pcap"
    with PcapWriter(b, 1) as w:
        for _n, ts, _lt, data, orig in b_frames:
            w.write(ts, data, orig)
    groups = [(g.files, len(list(g.frames()))) for g in capture_groups([a, b])]
    assert groups == [([str(a)], 2), ([str(b)], len(b_frames))]
    _, reps = _analyze(str(a), str(b))
    assert isinstance(reps, list) and [r["source"]["frames"] for r in reps] == [2, len(b_frames)]


def test_link_type_or_format_change_ends_the_capture(tmp_path: Path) -> None:
    frames = _frames(SAMPLES / "ikev2-psk-ok.pcap")
    a, b, c = (tmp_path / f"x{i}.pcap" for i in (1, 2, 3))
    with PcapWriter(a, 1) as w:
        w.write(frames[0][1], frames[0][3])
    with PcapWriter(b, 101) as w:  # raw IP: another link type
        w.write(frames[1][1], frames[1][3][14:])
    with PcapNgWriter(c) as w:  # pcapng after pcap
        w.write(frames[2][1], frames[2][3], linktype=1)
    assert [g.files for g in _groups([a, b, c])] == [[str(a)], [str(b)], [str(c)]]


def _groups(paths: list[Path]):
    for g in capture_groups(paths):
        list(g.frames())
        yield g


def test_series_names() -> None:
    assert series_key("ring_00001_20261203101500.pcapng") == series_key("ring_00012_20261203111500.pcapng")
    assert series_key("cap") == series_key("cap1") == series_key("cap17")
    assert series_key("a.pcap") != series_key("b.pcap")
    runs = series_runs(["cap", "cap1", "other.pcap", "p1.pcap", "p2.pcap"])
    assert runs == [["cap", "cap1"], ["other.pcap"], ["p1.pcap", "p2.pcap"]]
    assert series_runs(["p1", "p2"], separate=True) == [["p1"], ["p2"]]


def test_an_empty_file_in_a_series_is_skipped_over(tmp_path: Path) -> None:
    pieces = _split(SAMPLES / "ikev2-psk-ok.pcap", tmp_path, [10, 10], ng=True)  # the middle one is empty
    (g,) = list(_groups(pieces))
    assert g.files == [str(p) for p in pieces] and g.frames_read == 26
