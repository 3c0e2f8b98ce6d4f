"""decrypt, keys and show as a user meets them: output that tshark reads with the same inner
packet count as tshark's own decryption, clear one-line errors for bad key material."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus
from typer.testing import CliRunner

from ipsecdiag.cli import app

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_pcaps"
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed (Debian package tshark)")
runner = CliRunner()

LAB = (
    sorted(p for p in (CORPUS / "lab").glob("*") if (p / "capture.pcap").is_file()) if CORPUS.is_dir() else []
)


def _tshark_decrypted_frames(cap: Path, wsdir: Path) -> int:
    """Frames in which tshark decrypted ESP: an IP header inside the ESP layer."""
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(wsdir))
    out = subprocess.run(
        [
            TSHARK,
            "-r",
            str(cap),
            "-n",
            "-Y",
            "esp",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-e",
            "ip.src",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    ).stdout
    return sum(1 for line in out.splitlines() if line.count(",") >= 1)


@needs_corpus
@needs_tshark
@pytest.mark.parametrize("lab", LAB, ids=[p.name for p in LAB])
def test_decrypt_output_matches_tshark_decryption(tmp_path: Path, lab: Path) -> None:
    out = tmp_path / "plain.pcap"
    res = runner.invoke(
        app,
        ["decrypt", str(lab / "capture.pcap"), "--keys", str(lab / "charon-initiator.log"), "-o", str(out)],
    )
    if "no usable keys" in res.stderr:
        pytest.skip("no ESP in this scenario")
    if "nothing decrypted" in res.stderr:  # exit 1 and no file (issue 11): tshark agrees
        assert res.exit_code == 1 and not out.exists()
        assert _tshark_decrypted_frames(lab / "capture.pcap", lab / "wireshark-keys") == 0
        return
    assert res.exit_code == 0, res.stderr
    ours = subprocess.run(
        [TSHARK, "-r", str(out), "-n", "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert len(ours) == _tshark_decrypted_frames(lab / "capture.pcap", lab / "wireshark-keys")


@needs_tshark
def test_keys_convert_output_decrypts_in_tshark(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    res = runner.invoke(
        app,
        [
            "keys",
            "convert",
            str(SAMPLES / "ikev2-cbc-sha256-ok.charon.log"),
            "--to",
            "wireshark",
            "-o",
            str(ws),
        ],
    )
    assert res.exit_code == 0, res.stderr
    assert oct((ws / "esp_sa").stat().st_mode & 0o777) == "0o600"
    assert _tshark_decrypted_frames(SAMPLES / "ikev2-cbc-sha256-ok.pcap", ws) == 20


def test_keep_undecrypted_writes_everything(tmp_path: Path) -> None:
    # Keys for one direction only: the other direction is kept as it was.
    keys = tmp_path / "one.toml"
    full = tmp_path / "all.toml"
    assert (
        runner.invoke(
            app,
            ["keys", "convert", str(SAMPLES / "ikev2-psk-ok.charon.log"), "--to", "toml", "-o", str(full)],
        ).exit_code
        == 0
    )
    text = full.read_text()
    blocks = text.split("[[esp]]")
    keys.write_text(blocks[0] + "[[esp]]" + blocks[1])
    out = tmp_path / "out.pcapng"
    res = runner.invoke(
        app,
        [
            "decrypt",
            str(SAMPLES / "ikev2-psk-ok.pcap"),
            "--keys",
            str(keys),
            "-o",
            str(out),
            "--keep-undecrypted",
        ],
    )
    assert res.exit_code == 0, res.stderr
    assert "10 decrypted, 10 kept undecrypted" in res.stdout.replace("\n", " ")
    from ipsecdiag.capture.reader import open_capture

    with open_capture(out) as cap:
        frames = list(cap.frames())
    assert len(frames) == 20 and {f[2] for f in frames} == {1, 101}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("this is not a key file\n", "not a recognised key file"),
        ('"IPv4","*","*","0x1","AES-FOO","0x00","NULL",""\n', "unknown encryption algorithm 'AES-FOO'"),
        ('"IPv4","*","*","0x1","AES-CBC [RFC3602]","0x0011","NULL",""\n', "encryption key is 2 octets"),
        ('[[esp]]\nspi = "0x1"\nencr = "ENCR_AES_CBC"\nkey = "zz"\n', "hex"),
    ],
    ids=["garbage", "unknown-alg", "short-key", "bad-hex"],
)
def test_bad_key_files_are_one_line_exit_2(tmp_path: Path, content: str, needle: str) -> None:
    k = tmp_path / "keys.txt"
    k.write_text(content)
    proc = subprocess.run(
        [sys.executable, "-m", "ipsecdiag", "analyze", str(SAMPLES / "ikev2-psk-ok.pcap"), "--keys", str(k)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert needle in proc.stderr and "keys.txt" in proc.stderr


def test_wrong_key_says_integrity_failed(tmp_path: Path) -> None:
    full = tmp_path / "all.toml"
    runner.invoke(
        app, ["keys", "convert", str(SAMPLES / "ikev2-psk-ok.charon.log"), "--to", "toml", "-o", str(full)]
    )
    text = full.read_text()
    import re

    # Flip one hex digit of every key: same shapes, wrong values.
    wrong = re.sub(
        r'(sk_e[ir]|key) = "([0-9a-f])',
        lambda m: f'{m.group(1)} = "{"1" if m.group(2) == "0" else "0"}',
        text,
    )
    full.write_text(wrong)
    res = runner.invoke(
        app, ["analyze", str(SAMPLES / "ikev2-psk-ok.pcap"), "--keys", str(full), "--json", "-"]
    )
    rep = json.loads(res.stdout)
    auth = rep["ike_sas"][0]["exchanges"][1]["request"]
    assert auth["decrypted"] is False
    assert auth["decrypt_error"].startswith("integrity check failed with the supplied keys for IKE SA")
    assert all(f["decrypted"] == 0 and f["integrity_failed"] == f["packets"] for f in rep["esp_flows"])


def test_decrypted_details_in_json() -> None:
    res = runner.invoke(
        app,
        [
            "analyze",
            str(SAMPLES / "ikev2-psk-ok.pcap"),
            "--keys",
            str(SAMPLES / "ikev2-psk-ok.charon.log"),
            "--json",
            "-",
        ],
    )
    rep = json.loads(res.stdout)
    sa = rep["ike_sas"][0]
    req = sa["exchanges"][1]["request"]
    assert req["decrypted"] is True
    d = req["details"]
    assert {i["value"] for i in d["ids"]} == {"client.example", "gateway.example"}
    assert d["auth_method"] == "SHARED_KEY_MIC"
    assert d["TSi"] == ["10.1.0.0/24"] and d["TSr"] == ["10.2.0.0/24"]
    (child,) = sa["child_sas"]
    assert {f["ike_sa"] for f in rep["esp_flows"]} == {f"{sa['spi_i']}/{sa['spi_r']}"}
    assert {child["spi_i"], child["spi_r"]} == {f["spi"] for f in rep["esp_flows"]}
    assert all(f["inner_protocols"] == {"IPv4/ICMP": 10} for f in rep["esp_flows"])


def test_show_without_pyshark_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyshark", None)
    res = runner.invoke(app, ["show", str(SAMPLES / "ikev2-psk-ok.pcap"), "5"])
    assert res.exit_code == 2 and "pip install 'ipsecdiag[wireshark]'" in res.stderr


@needs_tshark
def test_show_dissects_decrypted_frame() -> None:
    pytest.importorskip("pyshark", reason="the optional wireshark extra (pyshark) is not installed")
    res = runner.invoke(
        app,
        ["show", str(SAMPLES / "ikev2-psk-ok.pcap"), "5", "--keys", str(SAMPLES / "ikev2-psk-ok.charon.log")],
    )
    assert res.exit_code == 0, res.stderr
    assert "frame 5" in res.stdout and "Layer ICMP" in res.stdout


def test_ikev1_quick_mode_creates_linked_child_sa() -> None:
    res = runner.invoke(
        app,
        [
            "analyze",
            str(SAMPLES / "ikev1-main-psk.pcap"),
            "--keys",
            str(SAMPLES / "ikev1-main-psk.charon.log"),
            "--json",
            "-",
        ],
    )
    rep = json.loads(res.stdout)
    (sa,) = rep["ike_sas"]
    (child,) = sa["child_sas"]
    assert child["created_in"] == "QUICK_MODE" and child["mode"] == "tunnel"
    assert {child["spi_i"], child["spi_r"]} == {f["spi"] for f in rep["esp_flows"]}
    assert child["ts_i"] == ["10.1.0.0/24"] and child["ts_r"] == ["10.2.0.0/24"]
    assert child["deleted_frame"] is not None  # the lab's DELETE at the end
    assert all(f["decrypted"] == f["packets"] == 10 for f in rep["esp_flows"])
