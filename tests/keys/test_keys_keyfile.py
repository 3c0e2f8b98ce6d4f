"""The ipsecdiag TOML key file: the docs/keys.md example, round trips, errors."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus

from ipsecdiag.keys.algorithms import AUTH_ANY
from ipsecdiag.keys.errors import KeyFileError
from ipsecdiag.keys.keyfile import format_keyfile, looks_like_keyfile, parse_keyfile, write_keyfile
from ipsecdiag.keys.labjson import parse_lab_json
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, IkeV1Keys, KeyStore, SecretBytes
from ipsecdiag.keys.strongswan import parse_charon_log
from ipsecdiag.wire.registry import EncrId, IntegId, PrfId, V1EncrAlg, V1HashAlg

DOC = Path(__file__).resolve().parents[2] / "docs" / "keys.md"


def _doc_example() -> str:
    m = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert m, "docs/keys.md has a ```toml example"
    return m.group(1)


def test_documented_example_parses() -> None:
    text = _doc_example()
    assert looks_like_keyfile(text)
    keys = parse_keyfile(text, name="keys.toml").keys
    ike = [k for k in keys if isinstance(k, IkeSaKeys)]
    v1 = [k for k in keys if isinstance(k, IkeV1Keys)]
    child = [k for k in keys if isinstance(k, ChildSaKeys)]
    assert len(ike) >= 1 and len(v1) >= 1 and len(child) >= 2
    assert {k.protocol for k in child} == {"esp", "ah"}
    assert all(k.source.startswith("keys.toml:") for k in keys)


def test_round_trip_every_record_kind(tmp_path: Path) -> None:
    k = SecretBytes
    items = [
        IkeSaKeys(bytes(range(8)), bytes(range(8, 16)), EncrId.ENCR_AES_GCM_16, k(b"\x01" * 36), k(b"\x02" * 36),
                  encr_key_bits=256, prf=PrfId.PRF_HMAC_SHA2_256, sk_d=k(b"\x03" * 32), sk_pi=k(b"\x04" * 32),
                  sk_pr=k(b"\x05" * 32), source="charon.log:193"),
        IkeSaKeys(b"\x11" * 8, b"\x22" * 8, EncrId.ENCR_3DES, k(b"\x01" * 24), k(b"\x02" * 24),
                  IntegId.AUTH_HMAC_SHA1_96, k(b"\x03" * 20), k(b"\x04" * 20), encr_key_bits=192),
        IkeV1Keys(b"\x33" * 8, k(b"\x06" * 32), b"\x44" * 8, V1EncrAlg.AES_CBC, 256, V1HashAlg.SHA2_256,
                  k(b"\x07" * 32), k(b"\x08" * 32)),
        ChildSaKeys(0x01AE6579, EncrId.ENCR_AES_CTR, k(b"\x09" * 20), AUTH_ANY[96], k(b""), src="10.0.0.1",
                    dst="10.0.0.2", encr_key_bits=128, esn=True, esn_high=7, mode="tunnel"),
        ChildSaKeys(0xFFFFFFFF, EncrId.ENCR_NULL, k(b""), IntegId.AUTH_HMAC_SHA2_384_192, k(b"\x0a" * 48),
                    protocol="ah", src="2001:db8::1", mode="transport"),
    ]  # fmt: skip
    path = tmp_path / "keys.toml"
    old = os.umask(0)
    try:
        assert write_keyfile(KeyStore(items), path) == len(items)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = parse_keyfile(path.read_text(), name="keys.toml").keys
    # A record's source survives; one without gets "file:line" of its table.
    assert back[0] == items[0]
    headers = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line.startswith("[[")]
    assert [b.source for b in back[1:]] == [f"keys.toml:{n}" for n in headers[1:]]
    assert [dataclasses.replace(b, source="") for b in back[1:]] == items[1:]


@needs_corpus
def test_round_trip_lab_and_charon_keys() -> None:
    for src in ("ikev1-main-psk-ok", "ikev2-cbc-sha256-ok"):
        lab = CORPUS / "lab" / src
        for keys in (
            parse_lab_json((lab / "keys.json").read_text()).keys,
            parse_charon_log((lab / "charon-initiator.log").read_text()).keys,
        ):
            assert parse_keyfile(format_keyfile(keys)).keys == keys


def test_strongswan_keywords_and_short_names() -> None:
    text = """
[[ike]]
spi_i = "0x0001020304050607"
spi_r = "08090a0b0c0d0e0f"
encr = "aes256gcm16"
sk_ei = "11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66"
sk_er = "0x112233445566778899001122334455667788990011223344556677889900112233445566"
prf = "prfsha384"

[[esp]]
spi = 3735928559
encr = "AES_CBC_128"
key = "00112233445566778899aabbccddeeff"
integ = "sha256"
integ_key = "0000000000000000000000000000000000000000000000000000000000000000"

[[esp]]
spi = "0x10"
encr = "AES_GCM_16"
key = "001122334455667788990011"
"""
    ike, esp, gcm = parse_keyfile(text).keys
    assert isinstance(ike, IkeSaKeys) and isinstance(esp, ChildSaKeys) and isinstance(gcm, ChildSaKeys)
    assert (ike.encr, ike.encr_key_bits, ike.integ, ike.prf) == (
        EncrId.ENCR_AES_GCM_16,
        256,
        IntegId.NONE,
        PrfId.PRF_HMAC_SHA2_384,
    )
    assert (esp.spi, esp.encr, esp.encr_key_bits, esp.integ) == (
        0xDEADBEEF,
        EncrId.ENCR_AES_CBC,
        128,
        IntegId.AUTH_HMAC_SHA2_256_128,
    )
    assert (gcm.encr, gcm.encr_key_bits) == (
        EncrId.ENCR_AES_GCM_16,
        64,
    )  # 12 octets - 4 salt, for crypto to reject


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[esp]]\nspi = 1\nencr = \"ENCR_AES_FOO\"\nkey = \"00\"\n",
         "keys.toml:3: unknown encryption algorithm 'ENCR_AES_FOO' (expected one of ENCR_DES_IV64,"),
        ("[[esp]]\nspi = 1\nencr = \"ENCR_AES_CBC\"\nkey_bits = 128\nkey = \"0011\"\n",
         "keys.toml:5: key is 2 octets, ENCR_AES_CBC with 128-bit keys needs 16"),
        ("[[esp]]\nspi = 1\nencr = \"ENCR_AES_GCM_16\"\nkey_bits = 256\nkey = \"" + "00" * 32 + "\"\n",
         "keys.toml:5: key is 32 octets, ENCR_AES_GCM_16 with 256-bit keys needs 36 (32 + 4-octet salt)"),
        ("[[esp]]\nspi = 1\nencr = \"ENCR_AES_CBC\"\nkey = \"0011223\"\n",
         "keys.toml:4: key: odd number of hex digits (7), the value looks truncated"),
        ("[[esp]]\nspi = 1\nencr = \"ENCR_AES_CBC\"\n", "keys.toml:1: [[esp]] entry needs 'key'"),
        ("[[esp]]\nspi = 1\nencr = \"ENCR_NULL\"\nintge = \"NONE\"\n", "keys.toml:4: unknown key 'intge' in [[esp]]"),
        ("[[ike]]\nspi_i = \"0011\"\n", "keys.toml:1: [[ike]] entry needs 'encr'"),
        ("[[ike]]\nspi_i = \"0011\"\nspi_r = \"00\"\nencr = \"NULL\"\nsk_ei = \"\"\nsk_er = \"\"\n",
         "keys.toml:2: spi_i must be 8 octets, got 2"),
        ("[[ah]]\nspi = 1\n", "keys.toml:1: an AH SA needs an integrity algorithm"),
        ("[[esp]]\nspi = \"0xzz\"\nencr = \"NULL\"\n", "keys.toml:2: spi '0xzz' is not a number"),
        ("[[esp]]\nspi = 1\nencr = \"NULL\"\nesn = \"yes\"\n", "keys.toml:4: esn must be true or false, got 'yes'"),
        ("[[esp]]\nspi = 1\nencr = \"NULL\"\nmode = \"tunel\"\n", "keys.toml:4: mode 'tunel' (expected tunnel, transport or beet)"),
        ("[[esp]\nspi = 1\n", "keys.toml:1: not valid TOML"),
        ("[[esp]]\nspi = \n", "keys.toml:2: not valid TOML"),
        ("[[tunnel]]\nx = 1\n", "keys.toml: unknown table 'tunnel'"),
        ("[[ikev1]]\ncookie_i = \"0011223344556677\"\nkey = \"00\"\nencr = \"AES_GCM\"\n",
         "keys.toml:4: unknown IKEv1 encryption algorithm 'AES_GCM'"),
    ],
)  # fmt: skip
def test_errors_are_one_line_with_line_numbers(text: str, message: str) -> None:
    with pytest.raises(KeyFileError) as e:
        parse_keyfile(text, name="keys.toml")
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)
