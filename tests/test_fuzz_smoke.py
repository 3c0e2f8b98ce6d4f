"""CI's short fuzz run (issue 14): every codec target and the whole pipeline for a bounded
time with a fixed seed; any escape fails the test and names the saved input.

About a minute in all: 5 s per codec target, 30 s of mutated bundled captures through
``ipsecdiag analyze`` (with and without keys). Campaigns are longer: see fuzz/README.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODEC_SECONDS = 5
PIPELINE_SECONDS = 30


def _fuzz(tmp_path: Path, *args: str, timeout: float) -> list[dict]:
    res = subprocess.run(
        [sys.executable, "-m", "fuzz", *args, "--crash-dir", str(tmp_path / "crashes"), "--no-corpus", "--seed", "ci"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def _no_escapes(tmp_path: Path, figures: list[dict]) -> None:
    for f in figures:
        assert f["inputs"] > 0, f
        saved = sorted(str(p) for p in (tmp_path / "crashes").rglob("*.txt"))
        assert f["escapes"] == 0, f"{f['target']}: {f['unique']} (inputs and tracebacks: {saved[:5]})"


def test_codec_targets(tmp_path: Path) -> None:
    figures = _fuzz(tmp_path, "codec", "--seconds", str(CODEC_SECONDS), timeout=5 * CODEC_SECONDS + 120)
    assert {f["target"] for f in figures} == {"ikev2", "ikev1", "sk_inner", "capture", "keyfile"}
    _no_escapes(tmp_path, figures)


@pytest.mark.slow
def test_pipeline(tmp_path: Path) -> None:
    figures = _fuzz(
        tmp_path, "pipeline", "--seconds", str(PIPELINE_SECONDS), "--time-limit", "20", timeout=PIPELINE_SECONDS + 180
    )
    assert figures and figures[0]["runs"] > figures[0]["inputs"] > 0  # some inputs ran with keys too
    _no_escapes(tmp_path, figures)
