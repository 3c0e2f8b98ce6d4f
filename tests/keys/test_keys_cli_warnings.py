"""`--keys` sources that are recognised but hold no usable keys warn and let the analysis run."""

from __future__ import annotations

import lzma
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import REPO_ROOT

SAMPLE = REPO_ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap"
DATA = Path(__file__).parent / "data"


def _analyze(*keys: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ipsecdiag", "analyze", str(SAMPLE)]
    for k in keys:
        argv += ["--keys", k]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("kind", ["dev-null", "empty", "cut-pluto-log"])
def test_source_without_usable_keys_is_a_warning(tmp_path: Path, kind: str) -> None:
    if kind == "dev-null":
        path, why = "/dev/null", "the file is empty"
    elif kind == "empty":
        (tmp_path / "empty.keys").write_text("")
        path, why = str(tmp_path / "empty.keys"), "the file is empty"
    else:
        text = lzma.decompress((DATA / "pluto-4.10-gcm.log.xz").read_bytes()).decode()
        (tmp_path / "pluto.log").write_text("\n".join(text.splitlines()[:6000]))
        path, why = str(tmp_path / "pluto.log"), "no `ikev2 I/R` key lines"
    proc = _analyze(path)
    assert proc.returncode != 2 and "Traceback" not in proc.stderr
    assert f"ipsecdiag: warning: {path}: no usable keys: {why}" in proc.stderr
    assert "ipsecdiag analysis" in proc.stdout  # the report is there


def test_unrecognisable_source_still_stops_the_run(tmp_path: Path) -> None:
    bad = tmp_path / "bad.keys"
    bad.write_text("hello\nworld\n")
    proc = _analyze("/dev/null", str(bad))
    assert proc.returncode == 2 and "not a recognised key file" in proc.stderr


def test_pending_rekey_keys_are_not_a_warning_for_any_command() -> None:
    """analyze and live print the same warnings: a source without usable keys is one; keys of
    rekeyed IKE SAs whose SPIs the capture supplies ("pending") are not."""
    from ipsecdiag.keys.load import KeyLoad
    from ipsecdiag.keys.model import KeySourceNote

    load = KeyLoad(
        notes=[
            KeySourceNote("a.log", "pending", "2 rekeyed IKE SAs: SPIs from the capture"),
            KeySourceNote("b.keys", "no-keys", "no usable keys: the file is empty"),
        ]
    )
    assert load.user_warnings == ["ipsecdiag: warning: b.keys: no usable keys: the file is empty"]
