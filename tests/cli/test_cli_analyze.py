"""The CLI as a user meets it: sample captures, JSON contract, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipsecdiag.cli import app

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_pcaps"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_no_arguments_prints_help() -> None:
    code, out, err = run()
    assert "analyze" in out + err


def test_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    code, out, err = run("analyze", str(tmp_path / "nope.pcap"))
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("ipsecdiag: error:"), err
    assert "Traceback" not in err + out


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello world, this is not a capture\n",
        b"PK\x03\x04" + bytes(100),
        bytes(24),
        b"\xd4\xc3\xb2\xa1",
    ],
    ids=["empty", "text", "zip", "zeros", "short-pcap-magic"],
)
def test_garbage_input_exit_2_without_traceback(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.pcap"
    p.write_bytes(content)
    # Run as a real process: a traceback would show on stderr.
    proc = subprocess.run(
        [sys.executable, "-m", "ipsecdiag", "analyze", str(p)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr


def test_directory_as_capture_exit_2(tmp_path: Path) -> None:
    code, out, err = run("analyze", str(tmp_path))
    assert code == 2 and "error" in err


def test_bad_fail_on_is_usage_error() -> None:
    code, _, err = run("analyze", str(SAMPLES / "ikev2-psk-ok.pcap"), "--fail-on", "sometimes")
    assert code == 2 and "--fail-on" in err


def _json(*args: str) -> tuple[int, dict]:
    code, out, err = run("analyze", *args, "--json", "-")
    return code, json.loads(out)


def test_json_contract_on_unanswered_sample() -> None:
    code, rep = _json(str(SAMPLES / "ikev2-unanswered.pcap"))
    assert rep["schema"] == "ipsecdiag/report-1"
    src = rep["source"]
    assert src["ipsec_frames"] + sum(src["skipped"].values()) == src["frames"]
    (sa,) = rep["ike_sas"]
    assert sa["version"] == 2 and sa["spi_r"] is None and sa["state"] == "failed"
    (ex,) = sa["exchanges"]
    assert ex["type"] == "IKE_SA_INIT" and ex["message_id"] == 0
    assert ex["response"] is None and ex["retransmissions"] >= 2
    assert len(ex["request"]["frames"]) == ex["retransmissions"] + 1
    # charon's back-off (retransmit_timeout 1 s, base 1.4): each interval longer than the last
    gaps = ex["request"]["retransmit_intervals"]
    assert len(gaps) == ex["retransmissions"] and all(b > a for a, b in zip(gaps, gaps[1:], strict=False))
    ids = [f["id"] for f in rep["findings"]]
    assert ids[0] == "ike-unanswered"
    assert code == 1  # an error finding with the default --fail-on error


def test_exit_code_follows_fail_on() -> None:
    path = str(SAMPLES / "ikev2-unanswered.pcap")
    assert run("analyze", path, "--fail-on", "never")[0] == 0
    assert run("analyze", path, "--fail-on", "warning")[0] == 1


def test_no_proposal_sample_names_the_offered_proposal() -> None:
    code, rep = _json(str(SAMPLES / "ikev2-no-proposal.pcap"))
    f = rep["findings"][0]
    assert f["id"] == "ike-no-proposal-chosen" and f["severity"] == "error"
    assert f["frames"] == [1, 2]
    assert any("ENCR_AES_CBC" in e and "MODP_2048" in e for e in f["evidence"])
    (sa,) = rep["ike_sas"]
    assert sa["state"] == "failed"
    assert sa["exchanges"][0]["response"]["notifies"] == ["NO_PROPOSAL_CHOSEN"]


def test_healthy_sample_has_no_error_or_warning() -> None:
    code, rep = _json(str(SAMPLES / "ikev2-psk-ok.pcap"))
    assert code == 0
    assert not [f for f in rep["findings"] if f["severity"] in ("error", "warning")]
    (sa,) = rep["ike_sas"]
    assert [e["type"] for e in sa["exchanges"]] == ["IKE_SA_INIT", "IKE_AUTH", "INFORMATIONAL"]
    assert len(rep["esp_flows"]) == 2
    assert {f["packets"] for f in rep["esp_flows"]} == {10}
    assert all(f["encap"] == "udp" and f["seq_first"] == 1 and f["seq_last"] == 10 for f in rep["esp_flows"])


def test_ikev1_main_mode_sample() -> None:
    code, rep = _json(str(SAMPLES / "ikev1-main-psk.pcap"))
    (sa,) = rep["ike_sas"]
    assert sa["version"] == 1 and sa["state"] in ("established", "deleted")
    types = [e["type"] for e in sa["exchanges"]]
    assert types[0] == "MAIN_MODE" and "QUICK_MODE" in types
    mm = sa["exchanges"][0]
    assert len(mm["messages"]) == 6
    assert sa["proposal"]["encr"] == "AES_CBC" and sa["proposal"]["ke"] == "MODP_2048"


def test_several_captures_give_one_json_object() -> None:
    two = (str(SAMPLES / "ikev2-psk-ok.pcap"), str(SAMPLES / "ikev2-no-proposal.pcap"))
    code, out, err = run("analyze", *two, "--json", "-")
    doc = json.loads(out)
    assert doc["schema"] == "ipsecdiag/reports-1" and len(doc["reports"]) == 2
    assert all(r["schema"] == "ipsecdiag/report-1" for r in doc["reports"])
    assert code == 1
    code, out, err = run("analyze", *two, "--json-lines", "-")
    lines = out.splitlines()
    assert len(lines) == 2 and [json.loads(ln)["source"]["files"] for ln in lines] == [[two[0]], [two[1]]]


def test_terminal_report_fits_80_columns_and_shows_sections() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "ipsecdiag", "analyze", str(SAMPLES / "ikev2-unanswered.pcap")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    out = res.stdout
    assert res.returncode == 1
    assert max(len(line) for line in out.splitlines()) <= 80
    for needle in ("Frames", "IKE SAs", "ladder", "no response to IKE_SA_INIT", "[ike-unanswered]"):
        assert needle in out, needle
    assert "\x1b[" not in out  # plain text when stdout is not a terminal


def test_explain_finding_and_notify() -> None:
    code, out, _ = run("explain", "ike-unanswered")
    assert code == 0 and "UDP 500" in out
    code, out, _ = run("explain", "TS_UNACCEPTABLE")
    assert code == 0 and "ts-unacceptable" in out
    code, _, err = run("explain", "no-such-thing")
    assert code == 2 and "unknown" in err
