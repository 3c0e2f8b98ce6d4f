"""Every hostile input that once escaped (issue 14) now ends as exit 0, 1 or 2, never a
traceback, never click's "Aborted.", and exit 2 always with exactly one line on stderr.

The inputs are generated from the bundled captures (``inputs.py``), given as options, or, for
inputs the fuzzer found in the shared corpus, rebuilt from a byte patch (``found/*.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus
from regress.inputs import BASE, BASE_KEYS, GENERATED, toml_keys
from typer.testing import CliRunner

from ipsecdiag.cli import app

HERE = Path(__file__).resolve().parent
runner = CliRunner()


def behaved(args: list[str]) -> tuple[int, str, str]:
    res = runner.invoke(app, args)
    text = res.stdout + res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 1, 2), (res.exit_code, text[-2000:])
    assert "Traceback" not in text and "Aborted" not in text, text[-2000:]
    if res.exit_code == 2:
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("ipsecdiag: error: "), res.stderr
    return res.exit_code, res.stdout, res.stderr


def findings(report_json: Path) -> set[str]:
    doc = json.loads(report_json.read_text())
    return {f["id"] for r in (doc if isinstance(doc, list) else [doc]) for f in r["findings"]}


# name -> (expected exit status class, finding id the report must hold, or stderr text on exit 2)
EXPECT = {
    "far-timestamps.pcapng": ("report", "capture-health"),
    "gzip-cut-in-header.pcap.gz": ("error", "inside the pcap header"),
    "gzip-corrupt-start.pcap.gz": ("error", "unreadable gzip data"),
    "gzip-corrupt-tail.pcap.gz": ("report", "capture-truncated"),
    "gzip-cut-tail.pcap.gz": ("report", "capture-truncated"),
}


@pytest.mark.parametrize("with_keys", [False, True], ids=["no-keys", "keys"])
@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_input(tmp_path: Path, name: str, with_keys: bool) -> None:
    cap = tmp_path / name
    cap.write_bytes(GENERATED[name]())
    out = tmp_path / "report.json"
    args = ["analyze", str(cap), "--json", str(out)] + (["--keys", str(BASE_KEYS)] if with_keys else [])
    code, stdout, stderr = behaved(args)
    kind, what = EXPECT[name]
    if kind == "error":
        assert code == 2 and what in stderr, stderr
        assert not out.exists()
    else:
        assert code in (0, 1)
        assert what in findings(out)


def test_far_timestamps_are_raw_seconds_in_both_reports(tmp_path: Path) -> None:
    cap = tmp_path / "t.pcapng"
    cap.write_bytes(GENERATED["far-timestamps.pcapng"]())
    out = tmp_path / "r.json"
    _, stdout, _ = behaved(["analyze", str(cap), "--json", str(out), "--keys", str(BASE_KEYS)])
    assert "18446744073709.55" in stdout
    text = out.read_text()
    assert "18446744073709.55" in text and "2026-" in text  # the good frames keep their dates


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
def test_far_timestamps_in_decrypt_output_are_clamped_not_a_crash(tmp_path: Path, suffix: str) -> None:
    cap = tmp_path / "t.pcapng"
    cap.write_bytes(GENERATED["far-timestamps.pcapng"]())
    out = tmp_path / f"plain{suffix}"
    code, stdout, _ = behaved(["decrypt", str(cap), "-k", str(BASE_KEYS), "-o", str(out)])
    assert code == 0 and "20 decrypted" in stdout
    from ipsecdiag.capture.reader import open_capture

    with open_capture(out) as plain:
        times = [ts for _fr, ts, *_ in plain.frames()]
    assert len(times) == 20 and max(times) == 0xFFFFFFFF  # the last ESP frames, clamped to 2106


@pytest.mark.parametrize(
    "option",
    [
        ["--ike-port", "70000"],
        ["--ike-port", "-1"],
        ["--ike-port", "0"],
        ["--natt-port", "65536"],
        ["--natt-idle-timeout", "nan"],
        ["--natt-idle-timeout", "inf"],
        ["--natt-idle-timeout", "-inf"],
        ["--natt-idle-timeout", "0"],
        ["--path-mtu", "100"],
        ["--replay-window", "0"],
    ],
    ids=lambda o: " ".join(o),
)
def test_bad_option_values_are_one_line(option: list[str]) -> None:
    code, _, stderr = behaved(["analyze", str(BASE), *option])
    assert code == 2 and option[0] in stderr


@pytest.mark.parametrize("cmd", ["analyze", "decrypt"])
def test_bad_ports_in_decrypt_too(tmp_path: Path, cmd: str) -> None:
    extra = ["-k", str(BASE_KEYS), "-o", str(tmp_path / "o.pcap")] if cmd == "decrypt" else []
    code, _, stderr = behaved([cmd, str(BASE), *extra, "--ike-port", "70000"])
    assert code == 2 and "1..65535" in stderr


@pytest.mark.parametrize("spi", ["-1", '"-1"', "0x1ffffffff", "4294967296"])
def test_toml_spi_out_of_range_is_rejected_with_file_and_line(tmp_path: Path, spi: str) -> None:
    keys = tmp_path / "k.toml"
    keys.write_bytes(toml_keys(spi))
    code, _, stderr = behaved(["analyze", str(BASE), "--keys", str(keys)])
    assert code == 2 and f"{keys}:2:" in stderr and "spi" in stderr


def test_toml_star_is_the_only_wildcard(tmp_path: Path) -> None:
    keys = tmp_path / "k.toml"
    keys.write_bytes(toml_keys('"*"'))
    code, stdout, _ = behaved(["keys", "list", str(keys)])
    assert code == 0 and "ESP" in stdout


def test_empty_key_file_is_a_warning_and_the_analysis_goes_on() -> None:
    code, stdout, stderr = behaved(["analyze", str(BASE), "--keys", os.devnull])
    assert code in (0, 1) and "Findings" in stdout
    assert "warning" in stderr and os.devnull in stderr


SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None, reason="needs root and setpriv to act as nobody")
@pytest.mark.parametrize("which", ["capture", "keys", "ca"])
def test_unreadable_input_is_one_line_not_a_usage_box(tmp_path: Path, which: str) -> None:
    tmp_path.chmod(0o755)
    victim = tmp_path / "secret"
    victim.write_bytes(b"")
    victim.chmod(0)
    cap = victim if which == "capture" else BASE
    args = [sys.executable, "-m", "ipsecdiag", "analyze", str(cap)]
    if which != "capture":
        args += [f"--{which}", str(victim)]
    res = subprocess.run(
        [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("ipsecdiag: error: ") and str(victim) in lines[0], res.stderr
    assert "ermission denied" in lines[0]


FOUND = sorted((HERE / "found").glob("*.json"))


@needs_corpus
@pytest.mark.parametrize("spec", FOUND, ids=[p.stem for p in FOUND])
def test_fuzzer_found_input(tmp_path: Path, spec: Path) -> None:
    d = json.loads(spec.read_text())
    base = (CORPUS / d["base"]).read_bytes()
    if hashlib.sha256(base).hexdigest() != d["base_sha256"]:
        pytest.skip(f"corpus file {d['base']} changed; the patch no longer applies")
    data = bytearray(base)
    for off, hexbyte in d["edits"]:
        data[off] = int(hexbyte, 16)
    cap = tmp_path / Path(d["base"]).name
    cap.write_bytes(bytes(data))
    out = tmp_path / "r.json"
    keys = [a for k in d["keys"] for a in ("--keys", str(CORPUS / k))]
    code, _, _ = behaved(["analyze", str(cap), "--json", str(out), *keys])
    assert code in (0, 1)
    assert d["expect_finding"] in findings(out)
