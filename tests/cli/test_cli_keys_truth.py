"""Wrong or useless keys as the command line says them (issue 11): ``decrypt -o`` that decrypts
nothing exits 1 with one line and writes no file; ``analyze`` with wrong keys exits 1 with a
keys-wrong finding per SA."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from ipsecdiag.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
runner = CliRunner()


def _wrong_keys(tmp_path: Path) -> Path:
    full = tmp_path / "all.toml"
    res = runner.invoke(
        app, ["keys", "convert", str(SAMPLES / "ikev2-psk-ok.charon.log"), "--to", "toml", "-o", str(full)]
    )
    assert res.exit_code == 0, res.stderr
    # Flip one hex digit of every key: same shapes, wrong values.
    full.write_text(
        re.sub(r'(sk_e[ir]|key) = "([0-9a-f])', lambda m: f'{m.group(1)} = "{"1" if m.group(2) == "0" else "0"}', full.read_text())
    )
    return full


def test_decrypt_that_decrypts_nothing_exits_1_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    res = runner.invoke(app, ["decrypt", str(SAMPLES / "ikev2-psk-ok.pcap"), "-k", str(_wrong_keys(tmp_path)), "-o", str(out)])
    assert res.exit_code == 1
    [line] = res.stderr.splitlines()
    assert line.startswith("ipsecdiag: nothing decrypted: 20 ESP packet(s) of SPI ")
    assert "20 integrity check failed" in line and f"{out} not written" in line
    assert not out.exists()


def test_decrypt_of_a_capture_without_esp_says_so(tmp_path: Path) -> None:
    out = tmp_path / "out.pcap"
    keys = tmp_path / "k.toml"
    keys.write_text('[[esp]]\nspi = "0x1"\nencr = "ENCR_AES_CBC"\nkey = "00112233445566778899aabbccddeeff"\n')
    res = runner.invoke(app, ["decrypt", str(SAMPLES / "ikev2-no-proposal.pcap"), "-k", str(keys), "-o", str(out)])
    assert res.exit_code == 1
    assert res.stderr.strip() == f"ipsecdiag: nothing decrypted: the capture holds no ESP packets; {out} not written"
    assert not out.exists()


def test_analyze_with_wrong_keys_exits_1_with_keys_wrong_per_sa(tmp_path: Path) -> None:
    res = runner.invoke(app, ["analyze", str(SAMPLES / "ikev2-psk-ok.pcap"), "-k", str(_wrong_keys(tmp_path)), "--json", "-"])
    assert res.exit_code == 1
    rep = json.loads(res.stdout)
    wrong = [f for f in rep["findings"] if f["id"] == "keys-wrong"]
    assert wrong and all(f["severity"] == "error" for f in wrong)
    # One per SA: the IKE SA and each ESP direction, naming the key record's source line (the
    # converted file keeps the charon log line each record came from).
    assert len(wrong) == 3
    assert all(re.search(r"keys from \S*ikev2-psk-ok\.charon\.log:\d+", " ".join(f["evidence"])) for f in wrong)
    assert rep["schema"] == "ipsecdiag/report-1" and rep["keys"]["records"]
