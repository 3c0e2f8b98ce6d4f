"""load_keys / convert: format detection from content, one-line errors, redacted records."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus

from ipsecdiag.keys.convert import convert
from ipsecdiag.keys.errors import KeyFileError
from ipsecdiag.keys.keyfile import parse_keyfile
from ipsecdiag.keys.load import load_key_file, load_key_sources, load_keys, parse_text
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, IkeV1Keys, KeyStore, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId

NOT_RECOGNISED = (
    "not a recognised key file (expected a Wireshark UAT table, `ip xfrm state` output, "
    "a strongSwan charon log, a libreswan pluto log, a tcpdump -E secrets file, "
    "or an ipsecdiag TOML key file)"
)

# Corpus file (relative to the corpus) -> format the loader must see in it. Copies get
# neutral names so only the content can decide.
CORPUS_FORMATS = {
    "lab/ikev2-psk-ok/charon-initiator.log": "strongswan",
    "lab/ikev1-main-psk-ok/charon-responder.log": "strongswan",
    "lab/ikev2-natt/keys.json": "lab-keys-json",
    "lab/ikev2-psk-ok/wireshark-keys/esp_sa": "esp_sa",
    "lab/ikev1-main-psk-ok/wireshark-keys/ikev1_decryption_table": "ikev1_decryption_table",
    "external/wireshark-testsuite/ikev2_decryption_table": "ikev2_decryption_table",
    "external/wireshark-wiki/ipsec_esp_capture_1/esp_sa": "esp_sa",
    "external/wireshark-wiki/ipsec_ikev2_esp_natt/esp_sa.no_icv": "esp_sa",
    "external/tcpdump/esp-secrets.txt": "tcpdump-esp-secrets",
    "external/tcpdump/ikev2pI2-secrets.txt": "tcpdump-esp-secrets",
    "external/openswan-unit/lp12-parentR2/output1.txt": "pluto",
}


@needs_corpus
@pytest.mark.parametrize(("rel", "fmt"), sorted(CORPUS_FORMATS.items()))
def test_detects_format_from_content(tmp_path: Path, rel: str, fmt: str) -> None:
    copy = tmp_path / "keys.txt"
    shutil.copy(CORPUS / rel, copy)
    res = load_key_file(copy)
    assert res.format == fmt
    assert res.keys, rel
    assert load_keys(copy) == res.keys


@needs_corpus
def test_wireshark_config_directory() -> None:
    res = load_key_file(CORPUS / "lab/ikev1-main-psk-ok/wireshark-keys")
    assert res.format == "wireshark-dir"
    assert [type(k) for k in res.keys] == [IkeV1Keys, ChildSaKeys, ChildSaKeys]


@needs_corpus
def test_every_lab_source_gives_the_same_esp_keys() -> None:
    """charon log, keys.json and the lab's Wireshark tables agree on SPI -> keys."""
    for scenario in ("ikev2-psk-ok", "ikev2-cbc-sha256-ok", "ikev1-main-psk-ok"):
        lab = CORPUS / "lab" / scenario
        views = [
            {
                k.spi: (k.encr, k.encr_key, k.integ, k.integ_key)
                for k in load_keys(p)
                if isinstance(k, ChildSaKeys)
            }
            for p in (lab / "charon-initiator.log", lab / "keys.json", lab / "wireshark-keys")
        ]
        assert views[0] and views[0] == views[1] == views[2]


XFRM = (
    "src 192.0.2.1 dst 192.0.2.2\n\tproto esp spi 0x00001000 reqid 1 mode tunnel\n\tenc cbc(aes) 0x"
    + "00" * 16
    + "\n"
)


def test_xfrm_text_and_empty_files(tmp_path: Path) -> None:
    assert parse_text(XFRM).format == "xfrm"
    empty = tmp_path / "empty"
    empty.write_text("# only a comment\n\n")
    res = load_key_file(empty)
    assert (res.format, res.keys) == ("empty", [])
    assert res.warnings == []
    assert [str(n) for n in res.notes] == [f"{empty}: no usable keys: the file is empty (or holds only comments)"]
    assert load_key_file("/dev/null").notes[0].kind == "no-keys"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello world\nthis is not a key file\n", f"keys.txt: {NOT_RECOGNISED}"),
        (b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00", f"keys.txt: {NOT_RECOGNISED}; this looks like a binary file (a capture?)"),
        (b'{"ike_sas": [{"spi_i": "00", "spi_r": "01", "encryption": {"alg": "AES_FOO"}}]}',
         "keys.txt: ike_sas[0].encryption: unknown encryption algorithm 'AES_FOO'"),
        (b'{"ike_sas": [', "keys.txt:1: not valid JSON: Expecting value"),
        (b"1234567890123456,0987654321098765,,,\"AES-FOO\",,,\"NONE [RFC4306]\"\n",
         "keys.txt:1: unknown encryption algorithm 'AES-FOO' (expected one of"),
    ],
)  # fmt: skip
def test_bad_files_give_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("keys.txt").write_bytes(content)
    with pytest.raises(KeyFileError) as e:
        load_keys("keys.txt")
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_missing_file_and_directory_without_tables(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"nope\.txt: cannot read: No such file or directory$"):
        load_keys(tmp_path / "nope.txt")
    with pytest.raises(KeyFileError, match="directory holds no ikev2_decryption_table"):
        load_keys(tmp_path)


@needs_corpus
def test_convert_to_each_target(tmp_path: Path) -> None:
    src = CORPUS / "lab/ikev2-cbc-sha256-ok/charon-initiator.log"
    ws = convert([src], "wireshark", tmp_path / "ws")
    assert ws.formats == {str(src): "strongswan"} and ws.records_in == 3 and ws.records_out == 3
    assert {p.name for p in ws.files} == {"ikev2_decryption_table", "esp_sa", "preferences"}
    toml = convert([tmp_path / "ws"], "toml", tmp_path / "keys.toml")
    assert stat.S_IMODE((tmp_path / "keys.toml").stat().st_mode) == 0o600
    assert toml.records_out == 3
    back = parse_keyfile((tmp_path / "keys.toml").read_text()).keys
    assert {k.spi for k in back if isinstance(k, ChildSaKeys)} == {0x07134801, 0x5CC82C17}
    script = convert([src], "xfrm", tmp_path / "sas.sh")
    assert script.records_out == 2
    assert script.warnings == ["1 IKE SA(s) not written: ip xfrm only holds ESP/AH SAs"]
    assert "auth-trunc 'hmac(sha256)' 0x" in (tmp_path / "sas.sh").read_text()
    with pytest.raises(ValueError, match="unknown target 'pcap'"):
        convert([src], "pcap", tmp_path / "x")


def test_records_never_show_key_material() -> None:
    secret = bytes.fromhex("755eae3e96e34c137b5ea5c80a0b0925ffaa9a3cbcf0867b2a7e626778aab051")
    s = SecretBytes(secret)
    records = [
        IkeSaKeys(b"\x01" * 8, b"\x02" * 8, EncrId.ENCR_AES_CBC, s, s, IntegId.AUTH_HMAC_SHA2_256_128, s, s,
                  sk_d=s, sk_pi=s, sk_pr=s),
        IkeV1Keys(b"\x01" * 8, s, skeyid_a=s, skeyid_d=s),
        ChildSaKeys(1, EncrId.ENCR_AES_CBC, s, IntegId.AUTH_HMAC_SHA2_256_128, s),
    ]  # fmt: skip
    for k in records:
        for text in (repr(k), str(k), f"{k}", f"{k!r}"):
            assert secret.hex() not in text.lower() and secret.hex()[:16] not in text.lower()
            assert "redacted 32 bytes" in text


@pytest.mark.parametrize(
    ("pattern", "addr", "match"),
    [
        ("10.0.0.1", "10.0.0.1", True),
        ("10.0.0.1", "10.0.0.2", False),
        ("3ffe::1", "3ffe:0:0::1", True),  # IPv6 spellings
        ("190.*.*.1", "190.7.8.1", True),  # Wireshark per-octet wildcards
        ("190.*.*.1", "190.7.8.2", False),
        ("10.99.0.0/16", "10.99.2.2", True),
        ("10.99.0.0/16", "10.98.2.2", False),
        ("*", "2001:db8::1", True),
        ("not-an-address", "10.0.0.1", False),
    ],
)
def test_keystore_matches_wireshark_address_patterns(pattern: str, addr: str, match: bool) -> None:
    k = ChildSaKeys(0x1234, EncrId.ENCR_NULL, SecretBytes(), src=pattern)
    assert (KeyStore([k]).child(0x1234, src=addr, dst="192.0.2.9") is k) is match


def test_load_key_sources_keeps_the_notes_with_the_store(tmp_path: Path) -> None:
    good = tmp_path / "xfrm.txt"
    good.write_text(XFRM)
    loaded = load_key_sources(["/dev/null", good])
    assert len(loaded.store) == 1 and loaded.formats == {"/dev/null": "empty", str(good): "xfrm"}
    assert [(n.source, n.kind) for n in loaded.store.notes] == [("/dev/null", "no-keys")]
    assert loaded.store.notes == loaded.notes
