"""tcpdump ``-E`` secrets files and Openswan/libreswan pluto debug logs."""

from __future__ import annotations

import pytest
from corpus import CORPUS, needs_corpus

from ipsecdiag.keys.algorithms import AUTH_ANY
from ipsecdiag.keys.errors import KeyFileError
from ipsecdiag.keys.libreswan import looks_like_pluto_log, parse_pluto_log
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, IkeV1Keys, KeyStore
from ipsecdiag.keys.tcpdump import looks_like_tcpdump_secrets, parse_tcpdump_secrets
from ipsecdiag.wire.registry import EncrId, IntegId


@needs_corpus
def test_tcpdump_esp_secrets() -> None:
    text = (CORPUS / "external/tcpdump/esp-secrets.txt").read_text()
    assert looks_like_tcpdump_secrets(text)
    res = parse_tcpdump_secrets(text, name="esp-secrets.txt")
    assert res.warnings == []
    a, b, c = res.keys
    assert isinstance(a, ChildSaKeys) and isinstance(c, ChildSaKeys)
    assert (a.spi, a.src, a.dst, a.encr, a.encr_key_bits) == (
        0x12345678,
        None,
        "192.1.2.45",
        EncrId.ENCR_3DES,
        192,
    )
    # "-hmac96": a 12-octet ICV tcpdump skips without a key
    assert (a.integ, len(a.integ_key)) == (AUTH_ANY[96], 0)
    assert (c.spi, c.encr, c.encr_key_bits) == (0xD1234567, EncrId.ENCR_AES_CBC, 256)
    assert a.source == "esp-secrets.txt:3"


@needs_corpus
def test_tcpdump_ikev2_secrets() -> None:
    (k,) = parse_tcpdump_secrets((CORPUS / "external/tcpdump/ikev2pI2-secrets.txt").read_text()).keys
    assert isinstance(k, IkeSaKeys)
    assert (k.spi_i.hex(), k.spi_r.hex()) == ("0001020304050607", "c02e7a3031a03188")
    assert (k.encr, k.encr_key_bits, k.integ) == (EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96)
    assert k.sk_ai.hex() == "4ea8e662b07cdd430f6944c6723e4b82d5722418"
    assert k.sk_er.hex() == "bedb67ec7dc3d00cccac42e70cd63bde"


def test_tcpdump_variants_and_errors() -> None:
    res = parse_tcpdump_secrets(
        "3des-cbc:0x" + "11" * 24 + ", 1234@10.0.0.1 blowfish-cbc:secretsecret123\n", name="s"
    )
    (k,) = res.keys
    assert isinstance(k, ChildSaKeys)
    assert (k.spi, k.encr, k.encr_key.reveal(), k.encr_key_bits) == (
        1234,
        EncrId.ENCR_BLOWFISH,
        b"secretsecret123",
        120,
    )
    assert res.warnings == ["s:1: secret without spi@address applies to any SA; skipped"]
    with pytest.raises(KeyFileError, match=r"^s:2: unknown encryption algorithm 'rc3-cbc'"):
        parse_tcpdump_secrets("# x\n0x1@10.0.0.1 rc3-cbc:0x00\n", name="s")
    with pytest.raises(KeyFileError, match=r"^s:1: unknown integrity algorithm 'whirlpool'"):
        parse_tcpdump_secrets(
            "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 whirlpool:0x00 aes128:0x00\n", name="s"
        )
    half = parse_tcpdump_secrets(
        "ikev2 I 0x0001020304050607 0xc02e7a3031a03188 sha1:0x00 aes128:0x00\n", name="s"
    )
    assert half.keys == [] and half.warnings == [
        "s:1: only the I half of IKE SA 0001020304050607/c02e7a3031a03188"
    ]


@needs_corpus
@pytest.mark.parametrize(
    "case", ["lp12-parentR2", "lp57-rekeyv2nopfs-R1", "lp65-nattI3", "lp81-h2h-rekeyikev2-I3-msgid0"]
)
def test_openswan_ikev2_key_lines(case: str) -> None:
    text = (CORPUS / "external/openswan-unit" / case / "output1.txt").read_text(errors="replace")
    assert looks_like_pluto_log(text)
    res = parse_pluto_log(text, name="output1.txt")
    (k,) = res.keys
    assert isinstance(k, IkeSaKeys)
    assert k.spi_i.hex() == "8001020304050607"
    # "sha256" is HMAC-SHA2-256-128 (tshark verifies the ICV of lp12's parentI2.pcap with it).
    assert (k.encr, k.encr_key_bits, k.integ) == (EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128)
    assert (
        k.sk_ei.hex() == "3f44bf47cafd8150591deb088199fcbf"
        and k.sk_er.hex() == "bedb67ec7dc3d00cccac42e70cd63bde"
    )
    assert len(k.sk_ai) == len(k.sk_ar) == 32
    assert k.sk_d.reveal() == b""  # pluto does not print SK_d/SK_pi/SK_pr


@needs_corpus
def test_openswan_ikev1_log_without_keys() -> None:
    """The IKEv1 unit test logs have no DBG_CRYPT output: nothing to take, nothing invented."""
    text = (CORPUS / "external/openswan-unit/lp109-v1rwnatQR1/output1.txt").read_text(errors="replace")
    res = parse_pluto_log(text)
    assert res.keys == [] and res.warnings == []


# calc_skeyids_iv()'s DBG_dump output (16 bytes per line, groups of four, continuation lines).
V1_DUMPS = """\
| ICOOKIE:  80 01 02 03  04 05 06 07
| RCOOKIE:  de bc 58 3a  8f 40 d0 cf
| Skeyid:    11 11 11 11  11 11 11 11  11 11 11 11  11 11 11 11
|   11 11 11 11
| Skeyid_d:  22 22 22 22  22 22 22 22  22 22 22 22  22 22 22 22
|   22 22 22 22
| Skeyid_a:  33 33 33 33  33 33 33 33  33 33 33 33  33 33 33 33
|   33 33 33 33
| Skeyid_e:  44 44 44 44  44 44 44 44  44 44 44 44  44 44 44 44
|   44 44 44 44
| enc key:  55 55 55 55  55 55 55 55  55 55 55 55  55 55 55 55
|   55 55 55 55  55 55 55 55
| IV:  66 66 66 66  66 66 66 66
"""


def test_pluto_ikev1_dumps() -> None:
    res = parse_pluto_log(V1_DUMPS, name="pluto.log")
    (k,) = res.keys
    assert isinstance(k, IkeV1Keys)
    assert (k.cookie_i.hex(), k.cookie_r.hex() if k.cookie_r else None) == (
        "8001020304050607",
        "debc583a8f40d0cf",
    )
    assert k.encr_key.reveal() == b"\x55" * 24 and k.skeyid_a.reveal() == b"\x33" * 20
    assert k.source == "pluto.log:11"


def test_pluto_aead_and_cut_keys_are_marked_incomplete() -> None:
    # "crypt private" without "all": no extraction dumps, so the printed keys are all there is.
    text = (
        "| ikev2 I 0x8001020304050607 0xdebc583a8f40d0cf none: aes_gcm_16256:0x" + "11" * 32 + "\n"
        "| ikev2 R 0x8001020304050607 0xdebc583a8f40d0cf none: aes_gcm_16256:0x" + "12" * 32 + "\n"
        "| ikev2 I 0x0101010101010101 0x0202020202020202 sha512:0x"
        + "11" * 32
        + " aes256:0x"
        + "22" * 32
        + "\n"
        "| ikev2 R 0x0101010101010101 0x0202020202020202 sha512:0x"
        + "33" * 32
        + " aes256:0x"
        + "44" * 32
        + "\n"
    )
    res = parse_pluto_log(text, name="p")
    gcm, sha = res.keys
    assert isinstance(gcm, IkeSaKeys) and isinstance(sha, IkeSaKeys)
    assert gcm.incomplete == "SK_ei is printed without its 4-octet salt (pluto omits AEAD/CTR salts)"
    assert sha.incomplete == "SK_ai has 32 of its 64 octets (pluto prints at most 32 octets of a key)"
    assert KeyStore(res.keys).incomplete() == [gcm, sha] and not KeyStore(res.keys)
