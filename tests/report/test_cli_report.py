"""The analyze command's presentation options, end to end (a subprocess each)."""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path

from corpus import CORPUS, REPO_ROOT, needs_corpus

SAMPLES = REPO_ROOT / "sample_pcaps"
BUSY = CORPUS / "external" / "ndpi" / "ipsec_isakmp_esp.pcap"  # 834 frames, 74 ESP flows


def run(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "80", "LINES": "24", **(env or {})}
    io: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kw}
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "ipsecdiag", "analyze", *args], text=True, timeout=120, env=e, **io
    )


def test_verdict_is_the_first_line_and_brief_is_short() -> None:
    p = run(str(SAMPLES / "ikev2-no-proposal.pcap"))
    assert p.stdout.startswith("IKE SA 192.0.2.2 -> 198.51.100.2 failed: NO_PROPOSAL_CHOSEN\n(ike-no-proposal-chosen)")
    b = run(str(SAMPLES / "ikev2-no-proposal.pcap"), "--brief")
    assert b.returncode == 1 and "CHILD SAs" not in b.stdout and "[ike-no-proposal-chosen]" in b.stdout
    assert b.stdout.splitlines()[0].endswith("ikev2-no-proposal.pcap") and len(b.stdout.splitlines()) <= 10


@needs_corpus
def test_busy_capture_brief_fits_one_screen() -> None:
    p = run(str(BUSY), "--brief")
    lines = p.stdout.splitlines()
    assert len(lines) <= 24 and all(len(ln) <= 80 for ln in lines), p.stdout
    # weak-crypto on 66 IKE SAs: merged per peer pair (diagnosis.repeats), the pairs share one line
    assert "[weak-crypto] x9 Weak cryptography negotiated" in p.stdout


def test_severity_hides_lower_findings() -> None:
    p = run(str(SAMPLES / "ikev2-frag-blackhole.pcap"), "--severity", "warning")
    assert "2 below warning not shown" in p.stdout and "[nat-detected]" not in p.stdout
    bad = run(str(SAMPLES / "ikev2-frag-blackhole.pcap"), "--severity", "loud")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--severity" in bad.stderr


def test_filters_reach_the_json(tmp_path: Path) -> None:
    p = run(str(SAMPLES / "synth" / "esp-replay.pcap"), "--spi", "0xc0de0002", "--json", "-")
    doc = json.loads(p.stdout)
    assert [f["spi"] for f in doc["esp_flows"]] == ["c0de0002"]
    assert "esp-replay" not in {f["id"] for f in doc["findings"]}  # it is about c0de0001
    p = run(str(SAMPLES / "ikev2-psk-ok.pcap"), "--peer", "203.0.113.9", "--json", "-")
    assert json.loads(p.stdout)["ike_sas"] == []
    bad = run(str(SAMPLES / "ikev2-psk-ok.pcap"), "--time-from", "yesterday")
    assert bad.returncode == 2 and "--time-from 'yesterday'" in bad.stderr


def test_html_file(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    p = run(str(SAMPLES / "ikev2-psk-ok.pcap"), "--html", str(out), "--brief")
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'class="ladder"' in text and 'class="esp-plot"' in text
    assert stat.S_IMODE(out.stat().st_mode) & 0o077 == 0  # reports are private
    same = run(str(SAMPLES / "ikev2-psk-ok.pcap"), "--html", str(SAMPLES / "ikev2-psk-ok.pcap"))
    assert same.returncode == 2 and "--html" in same.stderr


def test_no_trailing_spaces_when_redirected() -> None:
    p = run(str(SAMPLES / "ikev2-psk-ok.pcap"), "--ladder")
    assert p.stdout and all(ln == ln.rstrip() for ln in p.stdout.splitlines())


def _on_a_terminal(tmp_path: Path, *args: str, pager_env: dict[str, str]) -> str:
    """Run analyze with stdout on a pseudo-terminal; the 'pager' copies its input to a file."""
    master, slave = pty.openpty()
    try:
        p = run(*args, env=pager_env, stdout=slave)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.returncode in (0, 1), p.stderr
    return b"".join(chunks).decode(errors="replace")


def test_pager_only_when_longer_than_the_screen(tmp_path: Path) -> None:
    paged = tmp_path / "paged.txt"
    pager = f"{sys.executable} -c \"import sys; open('{paged}', 'w').write(sys.stdin.read())\""
    long = _on_a_terminal(tmp_path, str(SAMPLES / "ikev2-psk-ok.pcap"), pager_env={"PAGER": pager})
    assert paged.exists() and "CHILD SAs" in paged.read_text() and "CHILD SAs" not in long
    paged.unlink()
    _on_a_terminal(tmp_path, str(SAMPLES / "ikev2-psk-ok.pcap"), "--no-pager", pager_env={"PAGER": pager})
    assert not paged.exists()
    short = _on_a_terminal(tmp_path, str(SAMPLES / "ikev2-psk-ok.pcap"), "--brief", pager_env={"PAGER": pager})
    assert not paged.exists() and "tunnel up" in short
