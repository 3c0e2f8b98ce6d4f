"""keys convert and decrypt (review 3, items 2 and 3): Wireshark tables that decrypt on both
sides of a NAT, and key sources without usable keys as a warning plus exit 1, never an empty
output that looks like success (docs/keys.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from corpus import CORPUS
from typer.testing import CliRunner

from ipsecdiag.cli import app
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.keys.wireshark import format_esp_sa
from ipsecdiag.wire.registry import EncrId, IntegId

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_pcaps"
NO_KEYS = SAMPLES / "ikev2-no-proposal.charon.log"  # a charon log that stops before any SA was keyed
NATT = CORPUS / "lab" / "ikev2-natt"
runner = CliRunner()


def _esp(**kw: object) -> ChildSaKeys:
    base: dict[str, object] = dict(
        spi=0x7CB51475,
        encr=int(EncrId.ENCR_AES_CBC),
        encr_key=SecretBytes(bytes(16)),
        integ=int(IntegId.AUTH_HMAC_SHA2_256_128),
        integ_key=SecretBytes(bytes(32)),
        src="10.99.1.2",
        dst="10.99.2.2",
    )
    base.update(kw)
    return ChildSaKeys(**base)  # type: ignore[arg-type]


def test_udp_encapsulated_sa_rows_match_any_address() -> None:
    (plain,), _ = format_esp_sa([_esp()])
    (natted,), _ = format_esp_sa([_esp(encap=(4500, 4500))])
    (forced,), _ = format_esp_sa([_esp()], any_address=True)
    assert plain.startswith('"IPv4","10.99.1.2","10.99.2.2","0x7cb51475"')
    assert natted.startswith('"IPv4","*","*","0x7cb51475"')
    assert forced.startswith('"IPv4","*","*","0x7cb51475"')


def _tshark_esp_decrypted(cap: Path, wsdir: Path) -> int:
    """ESP frames whose inner IP tshark dissected (an ip.src inside the ESP layer)."""
    out = subprocess.run(
        ["tshark", "-r", str(cap), "-n", "-Y", "esp && icmp", "-T", "fields", "-e", "frame.number"],
        env=dict(os.environ, WIRESHARK_CONFIG_DIR=str(wsdir)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return len(out.stdout.split())


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed (Debian package tshark)")
@pytest.mark.skipif(not (NATT / "capture-gwside.pcap").is_file(), reason=f"lab capture {NATT} not present")
def test_wireshark_tables_decrypt_on_both_sides_of_the_nat(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    res = runner.invoke(
        app, ["keys", "convert", str(NATT / "charon-initiator.log"), "--to", "wireshark", "-o", str(ws)]
    )
    assert res.exit_code == 0, res.stderr
    # The log has the client's own address (10.99.1.2); the gateway side sees it masqueraded.
    client_side = _tshark_esp_decrypted(NATT / "capture.pcap", ws)
    gateway_side = _tshark_esp_decrypted(NATT / "capture-gwside.pcap", ws)
    assert client_side == 40 and gateway_side == 40


def test_decrypt_with_a_key_source_without_keys_warns_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "x.pcap"
    res = runner.invoke(
        app, ["decrypt", str(SAMPLES / "ikev2-psk-ok.pcap"), "--keys", str(NO_KEYS), "-o", str(out)]
    )
    assert res.exit_code == 1
    warning, reason = res.stderr.strip().splitlines()
    assert warning.startswith(f"ipsecdiag: warning: {NO_KEYS}: no usable keys")
    assert reason == f"ipsecdiag: nothing decrypted: the key files hold no usable keys; {out} not written"
    assert not out.exists()


def test_decrypt_without_keys_still_names_an_unreadable_capture(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["decrypt", str(tmp_path / "missing.pcap"), "--keys", str(NO_KEYS), "-o", str(tmp_path / "x.pcap")]
    )
    assert res.exit_code == 2 and "missing.pcap: no such file" in res.stderr


@pytest.mark.parametrize("to", ["wireshark", "toml", "xfrm"])
def test_keys_convert_of_a_source_without_keys_writes_nothing_and_exits_1(tmp_path: Path, to: str) -> None:
    out = tmp_path / "out"
    res = runner.invoke(app, ["keys", "convert", str(NO_KEYS), "--to", to, "-o", str(out)])
    assert res.exit_code == 1
    assert f"{NO_KEYS}: no usable keys" in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        f"ipsecdiag: nothing converted: the key sources hold no usable keys; {out} not written"
    )
    assert not out.exists()


def test_keys_convert_that_can_express_no_record_writes_nothing_and_exits_1(tmp_path: Path) -> None:
    src = tmp_path / "ah.toml"
    src.write_text(
        'format = "ipsecdiag-keys-1"\n[[ah]]\nspi = "0x00001f40"\nsrc = "192.0.2.1"\ndst = "192.0.2.2"\n'
        'integ = "AUTH_HMAC_SHA1_96"\ninteg_key = "8c59f680c8ea1e667b665d8424e2ab749cec12dc"\n'
    )
    out = tmp_path / "ws"
    res = runner.invoke(app, ["keys", "convert", str(src), "--to", "wireshark", "-o", str(out)])
    assert res.exit_code == 1
    assert "Wireshark has no key table for AH" in res.stderr
    assert res.stderr.strip().endswith(f"nothing converted: no record could be written; {out} not written")
    assert not out.exists()
