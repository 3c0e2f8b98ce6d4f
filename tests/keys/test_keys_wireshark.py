"""Wireshark UAT key tables: reading real files, writing files tshark 4.0 accepts, round trips."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus

from ipsecdiag.keys import _uat
from ipsecdiag.keys.algorithms import AUTH_ANY, ENCR_TWOFISH_CBC
from ipsecdiag.keys.errors import KeyFileError
from ipsecdiag.keys.labjson import parse_lab_json
from ipsecdiag.keys.model import ANY_SPI, ChildSaKeys, IkeSaKeys, IkeV1Keys, KeyStore, SecretBytes
from ipsecdiag.keys.wireshark import (
    format_esp_sa,
    format_ikev1_table,
    format_ikev2_table,
    parse_esp_sa,
    parse_ikev1_table,
    parse_ikev2_table,
    read_wireshark_dir,
    sniff,
    write_wireshark_dir,
)
from ipsecdiag.wire.registry import EncrId, IntegId

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(
    TSHARK is None, reason="tshark not installed (oracle for written key tables)"
)


def _nosrc(items):  # type: ignore[no-untyped-def]
    return [dataclasses.replace(k, source="") for k in items]


# --------------------------------------------------------------------------------- UAT syntax


def test_uat_split_quoting_and_escapes() -> None:
    fields = _uat.split(r'"IPv4", "a\x22b\\c" ,0a0b,"\101\x41",""', name="t", line_no=1)
    assert fields == [("IPv4", True), ('a"b\\c', True), ("0a0b", False), ("AA", True), ("", True)]
    assert _uat.split(",,", name="t", line_no=1) == [("", False)] * 3


def test_uat_quote_escapes_like_wireshark() -> None:
    assert _uat.quote('a"b\\c\x01é') == '"a\\x22b\\x5cc\\x01\\xe9"'
    assert _uat.split(_uat.quote('a"b\\c\x01'), name="t", line_no=1) == [('a"b\\c\x01', True)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"IPv4","10.0.0.1', "t:7: field 2: unterminated quoted string"),
        ('"IPv4"x,"10.0.0.1"', "t:7: field 1: text after the closing quote ('x,\"10.0.0.1\"')"),
    ],
)
def test_uat_syntax_errors_name_line_and_field(line: str, message: str) -> None:
    with pytest.raises(KeyFileError) as e:
        _uat.split(line, name="t", line_no=7)
    assert str(e.value) == message


# --------------------------------------------------------------------------------- IKEv2/IKEv1


@needs_corpus
def test_wireshark_testsuite_ikev2_table() -> None:
    text = (CORPUS / "external/wireshark-testsuite/ikev2_decryption_table").read_text()
    assert sniff(text) == "ikev2_decryption_table"
    keys = parse_ikev2_table(text, name="ikev2_decryption_table").keys
    by_spi = {k.spi_i.hex(): k for k in keys}
    assert len(keys) == 9
    null = by_spi["1234567890123456"]
    assert (null.encr, null.integ, len(null.sk_ei)) == (EncrId.ENCR_NULL, IntegId.NONE, 0)
    sha160 = by_spi["19ab98963486359f"]
    assert (sha160.encr, sha160.encr_key_bits, sha160.integ) == (
        EncrId.ENCR_3DES,
        192,
        IntegId.AUTH_HMAC_SHA1_160,
    )
    ccm = by_spi["ea684d21597afd36"]  # CCM keys carry a 3-octet salt (RFC 4309 §7.1)
    assert (ccm.encr, ccm.encr_key_bits, len(ccm.sk_ei)) == (EncrId.ENCR_AES_CCM_12, 128, 19)
    ctr = by_spi["a2926ae833c6f138"]
    assert (ctr.encr, ctr.integ, len(ctr.sk_ai)) == (EncrId.ENCR_AES_CTR, AUTH_ANY[96], 0)
    gcm8 = by_spi["5d48bfeeb7d574da"]
    assert (gcm8.encr, gcm8.encr_key_bits, len(gcm8.sk_er)) == (EncrId.ENCR_AES_GCM_8, 256, 36)
    assert gcm8.source == "ikev2_decryption_table:9"


@needs_corpus
def test_wireshark_testsuite_ikev1_table() -> None:
    keys = parse_ikev1_table(
        (CORPUS / "external/wireshark-testsuite/ikev1_decryption_table").read_text()
    ).keys
    assert [k.cookie_i.hex() for k in keys] == ["fafaeb49382a763c", "ab3e0f1f8bc3be8e", "29f6006212625def"]
    assert [len(k.encr_key) for k in keys] == [24, 32, 32]


IKEV2_ROW = (
    "0158b8fb90b7623d,13514610cea16160,"
    "647075bf167447a1c8683e8dbe4794b4cfe73799cc6bec34905441159ce13705c8dfb3a9,"
    "15c9eae6f94631d63068bf44bb69999abc07b3d15e915fd8f0ed99ad481efd75deb02a5e,"
    '"AES-GCM-256 with 16 octet ICV [RFC5282]",,,"NONE [RFC4306]"'
)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            IKEV2_ROW.replace("AES-GCM-256 with 16", "AES-FOO-256 with 16"),
            "t:2: unknown encryption algorithm 'AES-FOO-256 with 16 octet ICV [RFC5282]' (expected one of",
        ),
        (IKEV2_ROW.replace('"NONE [RFC4306]"', '"SHA9"'), "t:2: unknown integrity algorithm 'SHA9'"),
        (
            IKEV2_ROW.replace("0158b8fb90b7623d", '"0158b8fb90b7623d"'),
            "t:2: initiator's SPI must be 8 octets, got 16",
        ),
        (IKEV2_ROW.replace("deb02a5e,", "deb02a5,"), "t:2: SK_er: odd number of hex digits (71)"),
        (
            IKEV2_ROW.replace("deb02a5e,", "deb0,"),
            "t:2: SK_er is 34 octets, AES-GCM-256 with 16 octet ICV [RFC5282] needs 36",
        ),
        (IKEV2_ROW.replace("0158b8fb", "0158b8fz"), "t:2: initiator's SPI: 'z' is not a hex digit"),
        (IKEV2_ROW + ",x", "t:2: ikev2_decryption_table row has 9 fields, expected 8"),
    ],
)
def test_ikev2_table_errors(row: str, message: str) -> None:
    with pytest.raises(KeyFileError) as e:
        parse_ikev2_table("# comment\n" + row + "\n", name="t")
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------------- esp_sa


@needs_corpus
def test_wireshark_wiki_esp_sa_ascii_keys_and_decimal_spis() -> None:
    res = parse_esp_sa((CORPUS / "external/wireshark-wiki/ipsec_esp_capture_1/esp_sa").read_text())
    assert len(res.keys) == 24 and res.warnings == []
    first = res.keys[0]
    assert (first.spi, first.src, first.dst) == (10, "3ffe::1", "3ffe::2")
    assert first.encr_key.reveal() == b"aescbcencryption"  # no 0x: the characters are the key
    assert (first.encr, first.encr_key_bits, first.integ) == (
        EncrId.ENCR_AES_CBC,
        128,
        IntegId.AUTH_HMAC_SHA1_96,
    )
    des = [k for k in res.keys if k.encr == EncrId.ENCR_DES]
    assert des and all(k.encr_key_bits == 64 for k in des)
    twofish = parse_esp_sa((CORPUS / "external/wireshark-wiki/ipsec_esp_capture_3/esp_sa").read_text()).keys
    assert [(k.encr, k.encr_key_bits) for k in twofish[1:]] == [
        (ENCR_TWOFISH_CBC, 128),
        (ENCR_TWOFISH_CBC, 256),
    ]
    # No IANA number: the record keeps the UAT's own name, for a finding to say what it is.
    assert {k.encr_label for k in twofish[1:]} == {"TWOFISH-CBC"} and twofish[0].encr_label == ""


@needs_corpus
def test_wildcard_spi_rows_apply_to_every_spi_between_their_addresses() -> None:
    res = parse_esp_sa(
        (CORPUS / "external/wireshark-wiki/ipsec_esp_capture_2/esp_sa").read_text(), name="esp_sa"
    )
    assert [k.spi for k in res.keys] == [ANY_SPI, ANY_SPI]
    store = KeyStore(res.keys)
    outer = store.child(0x0000000A, "10.0.0.1", "10.0.0.2")
    inner = store.child(0x1234, "192.168.0.3", "10.0.0.2")
    assert outer is res.keys[0] and outer.encr == EncrId.ENCR_AES_CBC
    assert inner is res.keys[1] and inner.encr == EncrId.ENCR_DES
    assert store.child(0x1234, "198.51.100.1", "198.51.100.2") is None  # other addresses: no key


@needs_corpus
def test_deprecated_gcm_entry_without_icv_length() -> None:
    natt = CORPUS / "external/wireshark-wiki/ipsec_ikev2_esp_natt"
    with_icv = parse_esp_sa((natt / "esp_sa").read_text()).keys
    no_icv = parse_esp_sa((natt / "esp_sa.no_icv").read_text()).keys
    assert _nosrc(with_icv) == _nosrc(no_icv)
    assert [(k.encr, k.encr_key_bits) for k in with_icv[:3]] == [
        (EncrId.ENCR_AES_GCM_16, 128),
        (EncrId.ENCR_AES_GCM_16, 128),
        (EncrId.ENCR_AES_CTR, 128),
    ]
    assert with_icv[0].src is None and with_icv[0].dst is None


ESP_ROW = '"IPv4","10.0.0.1","10.0.0.2","0x0000c001","AES-CBC [RFC3602]","0x00112233445566778899aabbccddeeff","NULL",""'


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (ESP_ROW.replace('"IPv4"', '"IPX"'), "t:1: unknown protocol 'IPX' (expected IPv4, IPv6 or Any)"),
        (
            ESP_ROW.replace("AES-CBC [RFC3602]", "AES-FOO"),
            "t:1: unknown encryption algorithm 'AES-FOO' (expected one of NULL,",
        ),
        (ESP_ROW.replace('"NULL"', '"HMAC-SHA-999"'), "t:1: unknown authentication algorithm 'HMAC-SHA-999'"),
        (ESP_ROW.replace("0x0000c001", "0xzz"), "t:1: SPI '0xzz' is not a number (0x… hex or decimal)"),
        # 31 hex digits read as 0x0…: 16 octets (as Wireshark); 29 digits give 15 octets.
        (
            ESP_ROW.replace("ccddeeff", "cddeeff").replace("00112233", "0112233"),
            "t:1: encryption key is 15 octets, AES-CBC [RFC3602] needs 16/24/32",
        ),
        (
            ESP_ROW.replace("ccddeeff", ""),
            "t:1: encryption key is 12 octets, AES-CBC [RFC3602] needs 16/24/32",
        ),
        (
            ESP_ROW.replace("AES-CBC [RFC3602]", "AES-GCM with 16 octet ICV [RFC4106]")
            .replace('"NULL",""', '"HMAC-SHA-1-96 [RFC2404]","0x00"')
            .replace("eeff", "eeff00112233"),
            "t:1: AES-GCM with 16 octet ICV [RFC4106] carries its own ICV: authentication must be NULL",
        ),
        (ESP_ROW + ',"48-bit","0x0"', "t:1: sequence number field '48-bit' (expected 32-bit or 64-bit)"),
    ],
)
def test_esp_sa_errors(row: str, message: str) -> None:
    with pytest.raises(KeyFileError) as e:
        parse_esp_sa(row, name="t")
    assert str(e.value).startswith(message)


def test_esp_sa_newer_layout_and_strings() -> None:
    rows = (
        '"Any","*","*","0x00000001","ChaCha20 with Poly1305 [RFC7634]","0x'
        + "11" * 36
        + '","NULL","","64-bit","0x2a"\n'
        '"IPv6","2001:db8::1","*","0x00000002","AES-GCM with 12 octet ICV [RFC4106]","0x'
        + "22" * 20
        + '","NULL","","32-bit","0x0"\n'
    )
    a, b = parse_esp_sa(rows).keys
    assert (a.encr, a.encr_key_bits, a.esn, a.esn_high, a.src) == (
        EncrId.ENCR_CHACHA20_POLY1305,
        256,
        True,
        42,
        None,
    )
    assert (b.encr, b.encr_key_bits, b.esn, b.esn_high, b.src) == (
        EncrId.ENCR_AES_GCM_12,
        128,
        False,
        None,
        "2001:db8::1",
    )


# --------------------------------------------------------------------------------- writing


def _sample_store() -> KeyStore:
    k = SecretBytes
    return KeyStore(
        [
            IkeSaKeys(bytes(range(8)), bytes(range(8, 16)), EncrId.ENCR_AES_CBC, k(b"\x01" * 32), k(b"\x02" * 32),
                      IntegId.AUTH_HMAC_SHA2_512_256, k(b"\x03" * 64), k(b"\x04" * 64), encr_key_bits=256),
            IkeSaKeys(b"\xaa" * 8, b"\xbb" * 8, EncrId.ENCR_AES_CCM_16, k(b"\x05" * 19), k(b"\x06" * 19),
                      encr_key_bits=128),
            IkeV1Keys(b"\xcc" * 8, k(b"\x07" * 24)),
            ChildSaKeys(0xC0FFEE01, EncrId.ENCR_AES_GCM_16, k(b"\x08" * 36), src="10.0.0.1", dst="10.0.0.2",
                        encr_key_bits=256),
            ChildSaKeys(0xC0FFEE02, EncrId.ENCR_3DES, k(b"\x09" * 24), IntegId.AUTH_HMAC_MD5_96, k(b"\x0a" * 16),
                        src="2001:db8::2", dst="2001:db8::1", encr_key_bits=192),
            ChildSaKeys(0xC0FFEE03, EncrId.ENCR_AES_CTR, k(b"\x0b" * 20), IntegId.AUTH_HMAC_SHA2_256_96,
                        k(b"\x0c" * 32), encr_key_bits=128),
            ChildSaKeys(0xC0FFEE04, EncrId.ENCR_NULL, k(b""), IntegId.AUTH_HMAC_SHA1_96, k(b"\x0d" * 20),
                        src="192.0.2.1", dst="192.0.2.2"),
        ]
    )  # fmt: skip


def test_round_trip_all_three_tables() -> None:
    store = _sample_store()
    items = list(store)
    rows2, w2 = format_ikev2_table([k for k in items if isinstance(k, IkeSaKeys)])
    rows1, w1 = format_ikev1_table([k for k in items if isinstance(k, IkeV1Keys)])
    rows_esp, w3 = format_esp_sa([k for k in items if isinstance(k, ChildSaKeys)])
    assert w1 == w2 == w3 == []
    back2 = parse_ikev2_table("\n".join(rows2)).keys
    back1 = parse_ikev1_table("\n".join(rows1)).keys
    back_esp = parse_esp_sa("\n".join(rows_esp)).keys
    assert _nosrc(back2) == _nosrc(k for k in items if isinstance(k, IkeSaKeys))
    assert _nosrc(back1) == _nosrc(k for k in items if isinstance(k, IkeV1Keys))
    # The wildcard SA is written once per address family for Wireshark 4.0.
    want = [k for k in items if isinstance(k, ChildSaKeys)]
    assert len(back_esp) == len(want) + 1
    assert list(dict.fromkeys(_nosrc(back_esp))) == _nosrc(want)


def test_round_trip_newer_esp_layout_keeps_esn() -> None:
    k = ChildSaKeys(7, EncrId.ENCR_CHACHA20_POLY1305, SecretBytes(b"\x01" * 36), encr_key_bits=256, esn=True,
                    esn_high=3)  # fmt: skip
    rows, warnings = format_esp_sa([k], esn_layout=True)
    assert warnings == [] and len(rows) == 1 and rows[0].startswith('"Any","*","*","0x00000007"')
    assert _nosrc(parse_esp_sa(rows[0]).keys) == _nosrc([k])


def test_unsupported_records_are_skipped_with_counted_warnings() -> None:
    chacha = ChildSaKeys(1, EncrId.ENCR_CHACHA20_POLY1305, SecretBytes(b"\x01" * 36))
    ah = ChildSaKeys(2, EncrId.ENCR_NULL, SecretBytes(), IntegId.AUTH_HMAC_SHA1_96, SecretBytes(b"\x02" * 20),
                     protocol="ah")  # fmt: skip
    xcbc = ChildSaKeys(
        3, EncrId.ENCR_AES_CBC, SecretBytes(b"\x03" * 16), IntegId.AUTH_AES_XCBC_96, SecretBytes(b"\x04" * 16)
    )
    rows, warnings = format_esp_sa([chacha, ah, xcbc])
    assert warnings == [
        "ESP SA 0x00000001: Wireshark 4.0 cannot decrypt ENCR_CHACHA20_POLY1305; skipped",
        "AH SA 0x00000002: Wireshark has no key table for AH; skipped",
        "ESP SA 0x00000003: Wireshark cannot check AUTH_AES_XCBC_96; written as unchecked 96-bit ICV",
    ]
    assert len(rows) == 2 and all('"ANY 96 bit authentication [no checking]",""' in r for r in rows)
    ike = IkeSaKeys(
        b"\x01" * 8,
        b"\x02" * 8,
        EncrId.ENCR_CHACHA20_POLY1305,
        SecretBytes(b"\x01" * 36),
        SecretBytes(b"\x02" * 36),
    )
    assert format_ikev2_table([ike]) == (
        [],
        [
            "IKE SA 0101010101010101/0202020202020202: Wireshark has no IKEv2 entry for ENCR_CHACHA20_POLY1305 (256 bits); skipped"
        ],
    )


def test_write_dir_modes_and_preferences(tmp_path: Path) -> None:
    out = tmp_path / "new" / "ws"
    old = os.umask(0o022)
    try:
        summary = write_wireshark_dir(_sample_store(), out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert set(summary.files) == {"ikev2_decryption_table", "ikev1_decryption_table", "esp_sa", "preferences"}
    for p in summary.files.values():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert summary.rows == {"ikev2_decryption_table": 2, "ikev1_decryption_table": 1, "esp_sa": 5}
    assert (out / "esp_sa").read_text().startswith("# esp_sa: written by ipsecdiag")
    back = read_wireshark_dir(out)
    assert len(back.keys) == 2 + 1 + 5 and back.warnings == []
    # An existing profile keeps its preferences; tables with no rows are not written.
    (out / "preferences").write_text("gui.theme: dark\n")
    only_ike = KeyStore(k for k in _sample_store() if isinstance(k, IkeSaKeys))
    summary = write_wireshark_dir(only_ike, out)
    assert set(summary.files) == {"ikev2_decryption_table"}
    assert (out / "preferences").read_text() == "gui.theme: dark\n"


# --------------------------------------------------------------------------------- tshark oracle


def _tshark_rows(config_dir: Path, capture: Path, display_filter: str, *fields: str) -> list[list[str]]:
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=str(config_dir))
    cmd = [TSHARK, "-n", "-r", str(capture), "-Y", display_filter, "-T", "fields", "-e", "frame.number"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in out.stdout.splitlines()]


def _decrypted(config_dir: Path, capture: Path) -> tuple[int, int]:
    """(ICMP packets inside ESP, IKE messages with a visible ID payload) as tshark sees them."""
    rows = _tshark_rows(config_dir, capture, "(esp && icmp) || isakmp.id.data", "icmp.type")
    icmp = sum(1 for r in rows if len(r) > 1 and r[1])
    return icmp, len(rows) - icmp


@needs_corpus
@needs_tshark
@pytest.mark.parametrize("scenario", ["ikev2-psk-ok", "ikev1-main-psk-ok"])
def test_tshark_decrypts_with_what_we_write(tmp_path: Path, scenario: str) -> None:
    """Lab keys -> our tables -> tshark decrypts the same frames as with the lab's own tables."""
    lab = CORPUS / "lab" / scenario
    store = KeyStore(parse_lab_json((lab / "keys.json").read_text()).keys)
    summary = write_wireshark_dir(store, tmp_path / "ws")
    assert summary.warnings == []
    ours = _decrypted(tmp_path / "ws", lab / "capture.pcap")
    # 20 pings both ways inside ESP; ID payloads exist only in decrypted IKE_AUTH / Main Mode.
    assert ours[0] == 40 and ours[1] >= 2
    assert ours == _decrypted(lab / "wireshark-keys", lab / "capture.pcap")


@needs_corpus
@needs_tshark
def test_tshark_reads_rewritten_testsuite_table(tmp_path: Path) -> None:
    text = (CORPUS / "external/wireshark-testsuite/ikev2_decryption_table").read_text()
    write_wireshark_dir(KeyStore(parse_ikev2_table(text).keys), tmp_path / "ws")
    capture = CORPUS / "external/wireshark-testsuite/ikev2-decrypt-aes256ccm16.pcapng"
    assert len(_tshark_rows(tmp_path / "ws", capture, "isakmp.enc.decrypted")) >= 1


def test_odd_hex_key_reads_with_a_leading_zero_as_wireshark_does() -> None:
    # Wiki capture 5's second SA has a 31-digit key; tshark decrypts it as 0x0…
    (k,) = parse_esp_sa(ESP_ROW.replace("0x00112233", "0x0112233")).keys
    assert k.encr_key.reveal() == bytes.fromhex("00112233445566778899aabbccddeeff")
