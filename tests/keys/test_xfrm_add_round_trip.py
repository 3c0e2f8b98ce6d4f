"""`keys convert --to xfrm` output reads back with `--keys` (review 3, item 14): the reader takes
`ip xfrm state add` commands as well as `ip xfrm state` listings."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ipsecdiag.cli import app
from ipsecdiag.keys.convert import convert
from ipsecdiag.keys.errors import KeyFileError
from ipsecdiag.keys.keyfile import write_keyfile
from ipsecdiag.keys.load import load_key_file
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.keys.xfrm import parse_xfrm_state
from ipsecdiag.wire.registry import EncrId, IntegId

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
K = SecretBytes
SAS = [
    ChildSaKeys(0x1001, EncrId.ENCR_AES_GCM_12, K(b"\x01" * 20), src="192.0.2.1", dst="192.0.2.2",
                encr_key_bits=128, esn=True, mode="tunnel"),
    ChildSaKeys(0x1002, EncrId.ENCR_AES_CBC, K(b"\x02" * 16), IntegId.AUTH_HMAC_SHA2_256_128, K(b"\x03" * 32),
                src="192.0.2.2", dst="192.0.2.1", encr_key_bits=128, esn=False, mode="transport"),
    ChildSaKeys(0x1003, EncrId.ENCR_NULL, K(b""), IntegId.AUTH_HMAC_SHA1_96, K(b"\x04" * 20),
                src="2001:db8::1", dst="2001:db8::2", esn=False, mode="tunnel", encap=(31337, 4500)),
    ChildSaKeys(0x1004, EncrId.ENCR_NULL, K(b""), IntegId.AUTH_HMAC_SHA2_256_128, K(b"\x05" * 32),
                protocol="ah", src="192.0.2.1", dst="192.0.2.2", esn=False, mode="transport"),
]  # fmt: skip


def _fields(k: object) -> tuple[object, ...]:
    assert isinstance(k, ChildSaKeys)
    return (k.protocol, k.spi, k.src, k.dst, k.encr, k.encr_key, k.integ, k.integ_key, k.esn, k.mode, k.encap)


def test_the_xfrm_export_reads_back_as_the_same_sas(tmp_path: Path) -> None:
    src = tmp_path / "keys.toml"
    write_keyfile(SAS, src)
    out = tmp_path / "sas.sh"
    summary = convert([src], "xfrm", out)
    assert summary.records_out == len(SAS)
    back = load_key_file(out)
    assert back.format == "xfrm" and not back.warnings
    assert [_fields(k) for k in back.keys] == [_fields(k) for k in SAS]
    assert [k.source for k in back.keys] == [f"{out}:{n}" for n in (4, 5, 6, 7)]  # type: ignore[union-attr]


def test_keys_list_reads_the_export(tmp_path: Path) -> None:
    src = tmp_path / "keys.toml"
    write_keyfile(SAS[:2], src)
    out = tmp_path / "sas.sh"
    assert runner.invoke(app, ["keys", "convert", str(src), "--to", "xfrm", "-o", str(out)]).exit_code == 0
    res = runner.invoke(app, ["keys", "list", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.stderr
    assert "00001001" in res.stdout and "00001002" in res.stdout


def test_hand_written_commands_with_other_arguments() -> None:
    text = (
        "sudo ip -4 xfrm state add src 10.0.0.1 dst 10.0.0.2 proto esp spi 4096 reqid 7 mode tunnel"
        " enc cbc\\(aes\\) 0x" + "0b" * 16 + " auth-trunc 'hmac(sha1)' 0x" + "0c" * 20 + " 96\n"
        "ip xfrm state update src 10.0.0.1 dst 10.0.0.2 proto esp spi 0x2000 reqid 7 mode tunnel"
        " replay-window 32 flag af-unspec esn mark 0x1 mask 0xff sel src 10.1.0.0/16 dst 10.2.0.0/16"
        " aead \"rfc4106(gcm(aes))\" 0x" + "0a" * 20 + " 128 if_id 3  # comment\n"
    )
    first, second = parse_xfrm_state(text).keys
    assert isinstance(second, ChildSaKeys)
    assert (second.spi, second.src, second.dst, second.esn, second.encr) == (
        0x2000, "10.0.0.1", "10.0.0.2", True, EncrId.ENCR_AES_GCM_16,
    )  # fmt: skip
    assert isinstance(first, ChildSaKeys)
    assert (first.spi, first.encr, first.integ) == (4096, EncrId.ENCR_AES_CBC, IntegId.AUTH_HMAC_SHA1_96)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ip xfrm state add src 10.0.0.1 dst 10.0.0.2 proto esp spi 1 frobnicate 3", "unexpected 'frobnicate'"),
        ("ip xfrm state add proto esp spi 1 enc 'cbc(aes)' 0x00", "without src and dst"),
        ("ip xfrm state add src 10.0.0.1 dst 10.0.0.2 proto esp spi 1 enc 'cbc(aes) 0x00", "No closing quotation"),
    ],
)
def test_bad_commands_name_the_line(line: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=message) as e:
        parse_xfrm_state("#!/bin/sh\n" + line + "\n", name="x")
    assert str(e.value).startswith("x:2: ")
