"""IKEv1 key records name their algorithms from the IKEv1 registry (RFC 2409 Appendix A), in
`keys list` and in the report's `keys.records[].algorithm` (review 3, item 4)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ipsecdiag.cli import app
from ipsecdiag.keys.load import load_key_sources
from ipsecdiag.reconstruction.keyinfo import key_refs

runner = CliRunner()

# The [[ikev1]] table of docs/keys.md, and one that names no algorithm.
KEYFILE = """format = "ipsecdiag-keys-1"

[[ikev1]]
cookie_i = "b898572915eab8ba"
cookie_r = "a3aa0cd1573a3b88"
encr = "AES_CBC"
key_bits = 256
hash = "SHA2_256"
key = "e4b9f1bf07215e081b870c59086cb4ee97ca3ba6f7606849b0c94238a0111435"

[[ikev1]]
cookie_i = "0102030405060708"
key = "00112233445566778899aabbccddeeff"
"""


def _keyfile(tmp_path: Path) -> Path:
    p = tmp_path / "v1.toml"
    p.write_text(KEYFILE)
    return p


def test_keys_list_names_ikev1_algorithms(tmp_path: Path) -> None:
    res = runner.invoke(app, ["keys", "list", str(_keyfile(tmp_path))], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.stderr
    (named,) = [ln for ln in res.stdout.splitlines() if "b898572915eab8ba" in ln]
    assert named.split()[:4] == ["IKEv1", "b898572915eab8ba", "AES_CBC", "SHA2_256"]
    (unnamed,) = [ln for ln in res.stdout.splitlines() if "0102030405060708" in ln]
    assert unnamed.split()[:4] == ["IKEv1", "0102030405060708", "-", "-"]


def test_report_key_records_carry_the_ikev1_cipher(tmp_path: Path) -> None:
    refs = key_refs(load_key_sources([_keyfile(tmp_path)]).store)
    assert [(r.kind, r.spi, r.algorithm) for r in refs] == [
        ("ikev1", "b898572915eab8ba", "AES_CBC"),
        ("ikev1", "0102030405060708", ""),
    ]
