"""`ipsecdiag show` (review 3, item 1 and 16): several frames at once on tshark 4.0, any tshark
failure as one line with exit 2, frames the capture does not have named with exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipsecdiag import wsdissect
from ipsecdiag.cli import app

ROOT = Path(__file__).resolve().parents[2]
PCAP = ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap"
LOG = ROOT / "sample_pcaps" / "ikev2-psk-ok.charon.log"
pytestmark = [
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed (Debian package tshark)"),
]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _pyshark() -> None:
    pytest.importorskip("pyshark", reason="the optional wireshark extra (pyshark) is not installed")


def test_two_frames_are_both_dissected() -> None:
    res = runner.invoke(app, ["show", str(PCAP), "5", "3", "--keys", str(LOG)])
    assert res.exit_code == 0, res.stderr
    assert "===== frame 3 =====" in res.stdout and "===== frame 5 =====" in res.stdout
    assert res.stdout.index("frame 3 =") < res.stdout.index("frame 5 =")


def test_the_filter_is_one_tshark_reads() -> None:
    import subprocess

    out = subprocess.run(
        ["tshark", "-r", str(PCAP), "-Y", wsdissect.frame_filter([3, 5, 6])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert [ln.split()[0] for ln in out.stdout.splitlines()] == ["3", "5", "6"]


def test_a_tshark_failure_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    # The filter the old code built: tshark 4.0 refuses it and exits 2.
    monkeypatch.setattr(wsdissect, "frame_filter", lambda frames: "frame.number in {3 5")
    res = runner.invoke(app, ["show", str(PCAP), "3", "5"])
    assert res.exit_code == 2
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ipsecdiag: error: ") and "tshark exited with status 2" in lines[0]


def test_a_capture_tshark_cannot_finish_is_one_line(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(PCAP.read_bytes()[:3000])  # ends inside a packet
    res = runner.invoke(app, ["show", str(cut), "1", "2"])
    assert res.exit_code == 2
    (line,) = res.stderr.strip().splitlines()
    assert "cut short" in line and "Traceback" not in res.stderr


def test_frames_not_in_the_capture_exit_2_and_are_named() -> None:
    res = runner.invoke(app, ["show", str(PCAP), "9999"])
    assert res.exit_code == 2
    assert res.stderr.strip() == f"ipsecdiag: error: frame(s) not in {PCAP}: 9999"
    res = runner.invoke(app, ["show", str(PCAP), "5", "9998", "9999"])
    assert res.exit_code == 2 and "===== frame 5 =====" in res.stdout
    assert res.stderr.strip().endswith(": 9998, 9999")
