"""Inputs ``python -m fuzz split`` found (issue 14's bar on today's paths): the HTML report's ESP
plots and the byte-range (``--jobs 2``) analysis on hostile captures.

- ``far-timestamps.pcapng`` under ``--html``: a record time no date can show reached the ESP
  plot's bar tooltip (``datetime.fromtimestamp``: ``ValueError: year 586524 is out of range``);
  it is raw seconds there too, as in the terminal and JSON reports, serial and split alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from regress.inputs import BASE_KEYS, GENERATED
from regress.test_regress import behaved


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_far_timestamps_in_the_html_esp_plot_are_raw_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    monkeypatch.setenv("IPSECDIAG_RANGE_BYTES", "600")  # cut even this small capture in ranges
    cap = tmp_path / "t.pcapng"
    cap.write_bytes(GENERATED["far-timestamps.pcapng"]())
    html, out = tmp_path / "r.html", tmp_path / "r.json"
    args = ["analyze", str(cap), "-k", str(BASE_KEYS), "--html", str(html), "--json", str(out), "--jobs", jobs]
    code, _, _ = behaved([*args, "--no-pager"])
    assert code in (0, 1)
    text = html.read_text()
    assert "from 18141941858304.000000 s</title>" in text  # the bar after the far record
    assert " UTC</title>" in text  # the bars of the good frames keep their clock time
    assert "capture-health" in {f["id"] for f in json.loads(out.read_text())["findings"]}


def test_far_timestamps_split_report_equals_serial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPSECDIAG_RANGE_BYTES", "600")
    cap = tmp_path / "t.pcapng"
    cap.write_bytes(GENERATED["far-timestamps.pcapng"]())
    reports = []
    for jobs in ("1", "2"):
        out = tmp_path / f"r{jobs}.json"
        behaved(["analyze", str(cap), "-k", str(BASE_KEYS), "--html", str(tmp_path / "r.html"), "--json", str(out), "--jobs", jobs])
        reports.append(json.loads(out.read_text()))
    assert reports[0] == reports[1]
