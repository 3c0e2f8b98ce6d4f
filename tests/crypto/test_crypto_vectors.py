"""Known-answer tests for the MACs, PRFs and transform catalogue."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecdiag.crypto.errors import InvalidKey, UnsupportedAlgorithm
from ipsecdiag.crypto.mac import aes_cmac, aes_xcbc_mac, make_mac
from ipsecdiag.crypto.prf import prf, prf_plus, rekey_skeyseed, skeyseed
from ipsecdiag.crypto.transforms import (
    AUTH_HMAC_SHA2_256_96,
    encr_spec,
    integ_spec,
    prf_spec,
    split_key,
)
from ipsecdiag.wire.registry import EncrId, IntegId, PrfId

K16 = bytes(range(16))


# RFC 3566 §4.6 test cases #1-#7 (AES-XCBC-MAC with K = 000102..0f, full 128-bit MAC).
@pytest.mark.parametrize(
    ("message", "mac"),
    [
        (b"", "75f0251d528ac01c4573dfd584d79f29"),
        (bytes(range(3)), "5b376580ae2f19afe7219ceef172756f"),
        (bytes(range(16)), "d2a246fa349b68a79998a4394ff7a263"),
        (bytes(range(20)), "47f51b4564966215b8985c63055ed308"),
        (bytes(range(32)), "f54f0ec8d2b9f3d36807734bd5283fd4"),
        (bytes(range(34)), "becbb3bccdb518a30677d5481fb6b4d8"),
        (bytes(1000), "f0dafee895db30253761103b5d84528f"),
    ],
)
def test_aes_xcbc_mac_rfc3566(message: bytes, mac: str) -> None:
    assert aes_xcbc_mac(K16, message).hex() == mac
    # AES-XCBC-MAC-96 is the first 96 bits (RFC 3566 §2.2.1).
    assert make_mac(IntegId.AUTH_AES_XCBC_96, K16).compute(message).hex() == mac[:24]


# RFC 4434 §2.1 test vectors: AES-XCBC-PRF-128 with 16-, 10- and 18-byte keys.
@pytest.mark.parametrize(
    ("key", "out"),
    [
        ("000102030405060708090a0b0c0d0e0f", "47f51b4564966215b8985c63055ed308"),
        ("00010203040506070809", "0fa087af7d866e7653434e602fdde835"),
        ("000102030405060708090a0b0c0d0e0fedcb", "8cd3c93ae598a9803006ffb67c40e9e4"),
    ],
)
def test_aes_xcbc_prf_rfc4434(key: str, out: str) -> None:
    assert prf(PrfId.PRF_AES128_XCBC, bytes.fromhex(key), bytes(range(20))).hex() == out


# RFC 4615 §4 test vectors: AES-CMAC-PRF-128 with 18-, 16- and 10-byte keys.
@pytest.mark.parametrize(
    ("key", "out"),
    [
        ("000102030405060708090a0b0c0d0e0fedcb", "84a348a4a45d235babfffc0d2b4da09a"),
        ("000102030405060708090a0b0c0d0e0f", "980ae87b5f4c9c5214f5b6a8455e4c2d"),
        ("00010203040506070809", "290d9e112edb09ee141fcf64c0b72f3d"),
    ],
)
def test_aes_cmac_prf_rfc4615(key: str, out: str) -> None:
    assert prf(PrfId.PRF_AES128_CMAC, bytes.fromhex(key), bytes(range(20))).hex() == out


def test_aes_cmac_96_truncates_rfc4493_example_2() -> None:
    # RFC 4493 §4 Example 2; AES-CMAC-96 (RFC 4494) keeps the first 96 bits.
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    msg = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
    assert aes_cmac(key, msg).hex() == "070a16b46b4d4144f79bdd9dd04a287c"
    assert make_mac(IntegId.AUTH_AES_CMAC_96, key).compute(msg).hex() == "070a16b46b4d4144f79bdd9d"


# RFC 4868 §2.7.1 PRF test cases 1-4 (PRF_HMAC_SHA2_256) and the matching AUTH256 truncations.
@pytest.mark.parametrize(
    ("key", "data", "out"),
    [
        ("0b" * 32, b"Hi There".hex(), "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"),
        (
            "4a656665" * 8,
            b"what do ya want for nothing?".hex(),
            "167f928588c5cc2eef8e3093caa0e87c9ff566a14794aa61648d81621a2a40c6",
        ),
        ("aa" * 32, "dd" * 50, "cdcb1220d1ecccea91e53aba3092f962e549fe6ce9ed7fdc43191fbde45c30b0"),
        (
            bytes(range(1, 33)).hex(),
            "cd" * 50,
            "372efcf9b40b35c2115b1346903d2ef42fced46f0846e7257bb156d3d7b30d3f",
        ),
    ],
)
def test_hmac_sha256_rfc4868(key: str, data: str, out: str) -> None:
    k, d = bytes.fromhex(key), bytes.fromhex(data)
    assert prf(PrfId.PRF_HMAC_SHA2_256, k, d).hex() == out
    assert make_mac(IntegId.AUTH_HMAC_SHA2_256_128, k).compute(d).hex() == out[:32]
    assert make_mac(AUTH_HMAC_SHA2_256_96, k).compute(d).hex() == out[:24]


# RFC 2202 §2/§3 test case 1 (HMAC-MD5, HMAC-SHA1) and their 96-bit truncations (RFC 2403/2404).
def test_hmac_md5_sha1_rfc2202() -> None:
    md5 = prf(PrfId.PRF_HMAC_MD5, b"\x0b" * 16, b"Hi There")
    sha1 = prf(PrfId.PRF_HMAC_SHA1, b"\x0b" * 20, b"Hi There")
    assert md5.hex() == "9294727a3638bb1c13f48ef8158bfc9d"
    assert sha1.hex() == "b617318655057264e28bc0b6fb378c8ef146be00"
    assert make_mac(IntegId.AUTH_HMAC_MD5_96, b"\x0b" * 16).compute(b"Hi There") == md5[:12]
    assert make_mac(IntegId.AUTH_HMAC_SHA1_96, b"\x0b" * 20).compute(b"Hi There") == sha1[:12]
    # RFC 2202 test case 2 ("Jefe"): the ESN "extra" argument is plain concatenation.
    mac = make_mac(IntegId.AUTH_HMAC_SHA1_160, b"Jefe" + bytes(16))
    assert mac.compute(b"what do ya want ", b"for nothing?") == mac.compute(b"what do ya want for nothing?")


# CAVP IKEv2 KDF vector with HMAC-SHA1 (as carried in libreswan's ike_alg_test_prf.c):
# SKEYSEED, the 132-byte prf+ output (RFC 7296 §2.13/§2.14) and the rekey SKEYSEED (§2.18).
def test_ikev2_kdf_cavp_sha1() -> None:
    ni, nr = bytes.fromhex("32b50d5f4a3763f3"), bytes.fromhex("9206a04b26564cb1")
    gir = bytes.fromhex("4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52")
    gir_new = bytes.fromhex("863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330")
    spii, spir = bytes.fromhex("34c9e7c188868785"), bytes.fromhex("3ff77d760d2b2199")
    seed = skeyseed(PrfId.PRF_HMAC_SHA1, ni, nr, gir)
    assert seed.hex() == "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7"
    dkm = prf_plus(PrfId.PRF_HMAC_SHA1, seed, ni + nr + spii + spir, 132)
    assert dkm.hex() == (
        "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002"
        "a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a"
        "5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd1119"
        "8af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435"
        "a7a56cc4"
    )
    sk_d = dkm[:20]
    assert (
        rekey_skeyseed(PrfId.PRF_HMAC_SHA1, sk_d, gir_new, ni, nr).hex()
        == "63e81194946ebd05df7df5ebf5d8750056bf1f1d"
    )


def test_prf_plus_structure() -> None:
    # RFC 7296 §2.13: T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02).
    key, seed = b"k" * 32, b"seed"
    t1 = prf(PrfId.PRF_HMAC_SHA2_256, key, seed + b"\x01")
    t2 = prf(PrfId.PRF_HMAC_SHA2_256, key, t1 + seed + b"\x02")
    assert prf_plus(PrfId.PRF_HMAC_SHA2_256, key, seed, 40) == (t1 + t2)[:40]
    with pytest.raises(ValueError, match="255"):
        prf_plus(PrfId.PRF_HMAC_SHA2_256, key, seed, 32 * 255 + 1)


def test_skeyseed_aes_prf_takes_half_of_each_nonce() -> None:
    # RFC 7296 §2.14: fixed-key PRFs use the first 64 bits of Ni and of Nr.
    ni, nr = bytes(range(32)), bytes(range(100, 132))
    assert skeyseed(PrfId.PRF_AES128_XCBC, ni, nr, b"gir") == aes_xcbc_mac(ni[:8] + nr[:8], b"gir")
    assert skeyseed(PrfId.PRF_HMAC_SHA1, ni, nr, b"gir") == prf(PrfId.PRF_HMAC_SHA1, ni + nr, b"gir")


def test_catalogue_sizes() -> None:
    gcm = encr_spec(EncrId.ENCR_AES_GCM_16)
    assert (gcm.iv_size, gcm.salt_size, gcm.icv_size, gcm.aead) == (8, 4, 16, True)
    ccm = encr_spec(EncrId.ENCR_AES_CCM_8)
    assert (ccm.salt_size, ccm.icv_size) == (3, 8)
    ctr = encr_spec(EncrId.ENCR_AES_CTR)
    assert (ctr.iv_size, ctr.salt_size, ctr.counter, ctr.pad_align) == (8, 4, True, 4)
    chacha = encr_spec(EncrId.ENCR_CHACHA20_POLY1305)
    assert (chacha.key_bits, chacha.keymat_size()) == ((256,), 36)
    assert encr_spec(EncrId.ENCR_AES_CBC).keymat_size(256) == 32
    assert encr_spec(EncrId.ENCR_BLOWFISH).default_key_bits == 128
    assert (
        integ_spec(IntegId.AUTH_HMAC_SHA2_384_192).key_size,
        integ_spec(IntegId.AUTH_HMAC_SHA2_384_192).icv_size,
    ) == (48, 24)
    assert integ_spec(AUTH_HMAC_SHA2_256_96).icv_size == 12
    assert prf_spec(PrfId.PRF_AES128_CMAC).fixed_key


def test_split_key() -> None:
    assert split_key(EncrId.ENCR_AES_GCM_16, bytes(range(36))) == (bytes(range(32)), bytes(range(32, 36)))
    assert split_key(EncrId.ENCR_AES_CCM_16, bytes(19)) == (bytes(16), bytes(3))
    assert split_key(EncrId.ENCR_AES_CBC, bytes(24)) == (bytes(24), b"")
    with pytest.raises(InvalidKey, match="ENCR_AES_CBC"):
        split_key(EncrId.ENCR_AES_CBC, bytes(15))
    with pytest.raises(InvalidKey, match="says 256"):
        split_key(EncrId.ENCR_AES_GCM_16, bytes(20), key_bits=256)


def test_unsupported_algorithms_are_named() -> None:
    with pytest.raises(UnsupportedAlgorithm, match="ENCR_IDEA"):
        encr_spec(EncrId.ENCR_IDEA)
    with pytest.raises(UnsupportedAlgorithm, match="AUTH_DES_MAC"):
        integ_spec(IntegId.AUTH_DES_MAC)
    with pytest.raises(UnsupportedAlgorithm, match="PRF_HMAC_TIGER"):
        prf(PrfId.PRF_HMAC_TIGER, b"k", b"d")
    with pytest.raises(UnsupportedAlgorithm, match="ENCR_777"):
        encr_spec(777)


def test_mac_key_checks() -> None:
    with pytest.raises(InvalidKey):
        make_mac(IntegId.AUTH_AES_XCBC_96, bytes(15))
    with pytest.raises(InvalidKey):
        make_mac(IntegId.AUTH_HMAC_SHA1_96, b"")
    # HMAC accepts other key lengths (some tools key HMAC-SHA-256 with 16 bytes).
    assert make_mac(IntegId.AUTH_HMAC_SHA2_256_128, bytes(16)).icv_size == 16


@settings(max_examples=100, deadline=None)
@given(
    blocks=st.lists(st.tuples(st.binary(min_size=16, max_size=16), st.integers(0, 6)), min_size=1, max_size=8)
)
def test_cbc_decryptor_reuse_equals_fresh_contexts(blocks: list[tuple[bytes, int]]) -> None:
    # The shared decryptor is fed IV || C and drops its first output block (crypto.ciphers):
    # packet after packet it must give what a fresh CBC context per packet gives.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from ipsecdiag.crypto.ciphers import make_cipher

    key = bytes(range(16))
    shared = make_cipher(EncrId.ENCR_AES_CBC, key)
    for iv, n in blocks:
        ct = bytes((i * 37 + n) & 0xFF for i in range(16 * n))
        fresh = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor().update(ct)
        assert shared.decrypt(iv, ct) == fresh  # type: ignore[union-attr]
        assert shared.decrypt_prefixed(iv + ct) == fresh  # type: ignore[union-attr]
