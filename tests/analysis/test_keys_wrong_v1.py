"""IKEv1 with wrong keys (issue 11): the cookies match, the bytes do not. IKEv1 has no ICV, so
the decrypted payload chain is the test: when no encrypted message of the ISAKMP SA parses, the
first phase 1 message (whose IV the KE payloads give) included, keys-wrong names the key line.
A message missing from the capture, with the right keys, is no wrong key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.keys.load import load_key_sources
from ipsecdiag.pipeline import analyze_capture

ROOT = Path(__file__).resolve().parents[2]
PCAP = ROOT / "sample_pcaps" / "ikev1-main-psk.pcap"
LOG = ROOT / "sample_pcaps" / "ikev1-main-psk.charon.log"


def _wrong_log(tmp_path: Path) -> tuple[Path, int]:
    """The charon log with the first byte of the ISAKMP encryption key Ka flipped; and the line
    of that key."""
    lines = LOG.read_text().splitlines(True)
    at = next(i for i, ln in enumerate(lines) if "encryption key Ka" in ln)
    head, rest = lines[at + 1].split("    0: ", 1)
    lines[at + 1] = f"{head}    0: {int(rest[:2], 16) ^ 0xFF:02X}{rest[2:]}"
    out = tmp_path / "wrong.log"
    out.write_text("".join(lines))
    return out, at + 1


def test_wrong_ikev1_keys_are_an_error_naming_the_key_line(tmp_path: Path) -> None:
    log, line = _wrong_log(tmp_path)
    r = analyze_capture(PCAP, keys=load_key_sources([log]).store)
    [f] = [f for f in r.findings if f.id == "keys-wrong"]
    assert f.severity.label == "error" and r.findings[0] is f
    assert f.evidence[0].endswith(f"keys from {log}:{line}")
    assert f.data == {"key_source": f"{log}:{line}", "failed": 7, "encrypted": 7}
    assert "no integrity check value" in f.explanation
    [sa] = r.ike_sas
    msgs = [m for e in sa.exchanges for m in e.messages if m.encrypted]
    assert all(m.decrypted is False and "(wrong key?)" in (m.decrypt_error or "") for m in msgs)
    proc = subprocess.run(
        [sys.executable, "-m", "ipsecdiag", "analyze", str(PCAP), "--keys", str(log)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "[keys-wrong] The keys for ISAKMP SA" in proc.stdout


def test_right_keys_raise_nothing() -> None:
    r = analyze_capture(PCAP, keys=load_key_sources([LOG]).store)
    assert not [f for f in r.findings if f.id == "keys-wrong"]


def test_a_message_missing_from_the_capture_is_no_wrong_key(tmp_path: Path) -> None:
    with open_capture(PCAP) as cap:
        frames = [(ts, lt, data) for _fr, ts, lt, data, _o in cap.frames()]
    p = tmp_path / "gap.pcap"
    with PcapWriter(p, frames[0][1]) as w:
        for i, (ts, _lt, data) in enumerate(frames):
            if i != 5:  # Main Mode message 6 (the responder's encrypted ID/HASH) not captured
                w.write(ts, data)
    r = analyze_capture(p, keys=load_key_sources([LOG]).store)
    assert not [f for f in r.findings if f.id == "keys-wrong"]
    [sa] = r.ike_sas
    assert any(m.decrypted for e in sa.exchanges for m in e.messages if m.encrypted)
