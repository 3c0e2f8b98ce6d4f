"""Property tests: writers and readers agree; damaged input only ever raises KeyFileError."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecdiag.keys import _uat
from ipsecdiag.keys.algorithms import AUTH_ANY, INTEG_KEY_BYTES, key_len_for
from ipsecdiag.keys.errors import KeyFileError
from ipsecdiag.keys.keyfile import format_keyfile, parse_keyfile
from ipsecdiag.keys.load import parse_text
from ipsecdiag.keys.model import ChildSaKeys, IkeSaKeys, SecretBytes
from ipsecdiag.keys.wireshark import format_esp_sa, format_ikev2_table, parse_esp_sa, parse_ikev2_table
from ipsecdiag.wire.registry import EncrId, IntegId

FAST = settings(max_examples=200, deadline=None)

# (cipher, allowed key bits) Wireshark 4.0's esp_sa and ikev2 tables can both carry.
ESP_CIPHERS = [
    (EncrId.ENCR_AES_CBC, (128, 192, 256)),
    (EncrId.ENCR_AES_CTR, (128, 192, 256)),
    (EncrId.ENCR_AES_GCM_8, (128, 192, 256)),
    (EncrId.ENCR_AES_GCM_16, (128, 192, 256)),
    (EncrId.ENCR_3DES, (192,)),
    (EncrId.ENCR_DES, (64,)),
]
ESP_INTEG = [
    IntegId.NONE,
    IntegId.AUTH_HMAC_SHA1_96,
    IntegId.AUTH_HMAC_SHA2_256_128,
    IntegId.AUTH_HMAC_SHA2_512_256,
]
ADDRS = st.sampled_from([None, "10.0.0.1", "192.0.2.254", "2001:db8::1", "fe80::1"])


@st.composite
def esp_sas(draw: st.DrawFn) -> ChildSaKeys:
    encr, bits_choices = draw(st.sampled_from(ESP_CIPHERS))
    bits = draw(st.sampled_from(bits_choices))
    aead = encr in (EncrId.ENCR_AES_GCM_8, EncrId.ENCR_AES_GCM_16)
    integ = IntegId.NONE if aead else draw(st.sampled_from(ESP_INTEG))
    key = draw(st.binary(min_size=key_len_for(encr, bits) or 0, max_size=key_len_for(encr, bits) or 0))
    ikey = draw(st.binary(min_size=INTEG_KEY_BYTES[integ], max_size=INTEG_KEY_BYTES[integ]))
    src = draw(ADDRS)
    dst = None if src is None else ("2001:db8::2" if ":" in src else "198.51.100.7")
    return ChildSaKeys(
        spi=draw(st.integers(0, 0xFFFFFFFF)), encr=int(encr), encr_key=SecretBytes(key), integ=int(integ),
        integ_key=SecretBytes(ikey), src=src, dst=dst, encr_key_bits=bits,
    )  # fmt: skip


@FAST
@given(st.binary(max_size=64))
def test_uat_quote_split_round_trip(data: bytes) -> None:
    (field,) = _uat.split(_uat.quote(data), name="t", line_no=1)
    assert field[1] and _uat.raw_bytes(field[0]) == data


@FAST
@given(esp_sas())
def test_esp_sa_and_keyfile_round_trip(k: ChildSaKeys) -> None:
    rows, warnings = format_esp_sa([k])
    assert warnings == []
    for back in parse_esp_sa("\n".join(rows)).keys:
        assert dataclasses.replace(back, source="") == k
    (again,) = parse_keyfile(format_keyfile([k])).keys
    assert dataclasses.replace(again, source="") == k


@FAST
@given(
    st.sampled_from(
        [(EncrId.ENCR_AES_CBC, 256), (EncrId.ENCR_AES_CCM_12, 192), (EncrId.ENCR_AES_GCM_16, 128)]
    ),
    st.sampled_from([IntegId.NONE, IntegId.AUTH_HMAC_SHA2_384_192, AUTH_ANY[128]]),
    st.binary(min_size=8, max_size=8),
    st.binary(min_size=8, max_size=8),
    st.randoms(use_true_random=False),
)
def test_ikev2_table_round_trip(alg: tuple[int, int], integ: int, spi_i: bytes, spi_r: bytes, rnd) -> None:  # type: ignore[no-untyped-def]
    encr, bits = alg
    n, m = key_len_for(encr, bits) or 0, INTEG_KEY_BYTES.get(integ, 0)
    k = IkeSaKeys(
        spi_i, spi_r, int(encr), SecretBytes(rnd.randbytes(n)), SecretBytes(rnd.randbytes(n)), int(integ),
        SecretBytes(rnd.randbytes(m)), SecretBytes(rnd.randbytes(m)), encr_key_bits=bits,
    )  # fmt: skip
    rows, _ = format_ikev2_table([k])
    (back,) = parse_ikev2_table(rows[0]).keys
    assert dataclasses.replace(back, source="") == k


SAMPLES = [
    '"IPv4","10.0.0.1","*","0x0000c001","AES-CBC [RFC3602]","0x00112233445566778899aabbccddeeff","NULL",""',
    "0158b8fb90b7623d,13514610cea16160,00112233445566778899aabbccddeeff,00112233445566778899aabbccddeeff,"
    '"AES-CBC-128 [RFC3602]",,,"NONE [RFC4306]"',
    "src 192.0.2.1 dst 192.0.2.2\n\tproto esp spi 0x00001000 reqid 1 mode tunnel\n\tenc cbc(aes) 0x"
    + "00" * 16,
    '[[esp]]\nspi = "0x1"\nencr = "ENCR_AES_CBC"\nkey = "' + "00" * 16 + '"\n',
    "0x12345678@192.1.2.45 3des-cbc-hmac96:0x" + "43" * 24,
    "11[IKE] <c|1> Sk_d secret => 2 bytes @ 0x7f\n11[IKE] <c|1>    0: 01 02                 ..",
    '{"ike_sas": [], "child_sas": [{"spi": "0x1", "protocol": "ESP", "encryption": {"alg": "AES_CBC"}}]}',
]


@FAST
@given(st.sampled_from(SAMPLES), st.data())
def test_damaged_input_raises_only_keyfileerror(sample: str, data: st.DataObject) -> None:
    """Cut, splice and garble real-format input: the result is keys or a KeyFileError."""
    cut = data.draw(st.integers(0, len(sample)))
    junk = data.draw(st.text(alphabet='0x1fz"\\,:*@ \n\t[]={}#.', max_size=12))
    text = sample[:cut] + junk + sample[cut + data.draw(st.integers(0, 8)) :]
    try:
        parse_text(text, name="fuzz")
    except KeyFileError as e:
        assert str(e).startswith("fuzz") and "\n" not in str(e)
