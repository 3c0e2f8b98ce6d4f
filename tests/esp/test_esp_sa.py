"""EspDecryptor / EspEncryptor behaviour: every suite, ESN inference, statuses, padding."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ipsecdiag.crypto.transforms import AUTH_HMAC_SHA2_256_96, encr_spec, integ_spec
from ipsecdiag.esp.sa import NEXT_HEADER_DUMMY, EsnTracker, EspDecryptor, EspEncryptor, EspStatus
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId

SUITES = [
    (EncrId.ENCR_NULL, 0, IntegId.AUTH_HMAC_SHA1_96),
    (EncrId.ENCR_NULL, 0, IntegId.AUTH_AES_XCBC_96),
    (EncrId.ENCR_DES, 64, IntegId.AUTH_HMAC_MD5_96),
    (EncrId.ENCR_3DES, 192, IntegId.AUTH_HMAC_SHA1_96),
    (EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128),
    (EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_512_256),
    (EncrId.ENCR_AES_CBC, 192, IntegId.AUTH_HMAC_SHA2_384_192),
    (EncrId.ENCR_AES_CBC, 128, AUTH_HMAC_SHA2_256_96),
    (EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_AES_CMAC_96),
    (EncrId.ENCR_AES_CBC, 128, 0),
    (EncrId.ENCR_CAMELLIA_CBC, 256, IntegId.AUTH_HMAC_SHA1_96),
    (EncrId.ENCR_BLOWFISH, 128, IntegId.AUTH_HMAC_SHA1_96),
    (EncrId.ENCR_CAST, 128, IntegId.AUTH_HMAC_MD5_96),
    (EncrId.ENCR_AES_CTR, 128, IntegId.AUTH_HMAC_SHA2_256_128),
    (EncrId.ENCR_AES_CTR, 256, IntegId.AUTH_AES_XCBC_96),
    (EncrId.ENCR_AES_GCM_8, 128, 0),
    (EncrId.ENCR_AES_GCM_12, 192, 0),
    (EncrId.ENCR_AES_GCM_16, 256, 0),
    (EncrId.ENCR_AES_CCM_8, 128, 0),
    (EncrId.ENCR_AES_CCM_12, 192, 0),
    (EncrId.ENCR_AES_CCM_16, 256, 0),
    (EncrId.ENCR_NULL_AUTH_AES_GMAC, 128, 0),
    (EncrId.ENCR_CHACHA20_POLY1305, 256, 0),
]


def make_keys(
    encr: int, bits: int, integ: int, *, esn: bool | None = False, spi: int = 0xC0FFEE01, **kw: object
) -> ChildSaKeys:
    ek = bytes((i * 13 + 7) & 0xFF for i in range(encr_spec(encr).keymat_size(bits) if bits else 0))
    ik = bytes((i * 29 + 3) & 0xFF for i in range(integ_spec(integ).key_size)) if integ else b""
    return ChildSaKeys(
        spi=spi,
        encr=encr,
        encr_key=SecretBytes(ek),
        integ=integ,
        integ_key=SecretBytes(ik),
        esn=esn,
        **kw,  # type: ignore[arg-type]
    )


def counter_ivs() -> object:
    c = itertools.count(1)
    return lambda n: (next(c) % 256**n).to_bytes(n, "big")


@pytest.mark.parametrize(("encr", "bits", "integ"), SUITES)
@pytest.mark.parametrize("esn", [False, True])
def test_round_trip(encr: int, bits: int, integ: int, esn: bool) -> None:
    keys = make_keys(encr, bits, integ, esn=esn)
    enc = EspEncryptor(keys, counter_ivs())  # type: ignore[arg-type]
    dec = EspDecryptor(keys)
    for seq, inner in ((1, b"\x45" + bytes(59)), (2, b""), (3, bytes(range(256)) * 3)):
        pkt = enc.encrypt(inner, 4, seq=seq)
        assert (len(pkt) - 8 - enc.transform.iv_size - enc.transform.icv_size) % enc.transform.align == 0
        assert dec.decrypt(pkt, 0, len(pkt)) == (EspStatus.OK, 4, inner, 0)
        bad = bytearray(pkt)
        bad[len(pkt) // 2] ^= 0x80
        expect = EspStatus.OK if not integ and not encr_spec(encr).aead else EspStatus.INTEGRITY_FAILED
        assert EspDecryptor(keys).decrypt(bytes(bad), 0, len(pkt))[0] in (expect, EspStatus.MALFORMED)
    assert dec.irregular_padding == 0 and dec.problem is None


@settings(max_examples=200, deadline=None)
@given(
    suite=st.sampled_from(SUITES),
    inner=st.binary(max_size=200),
    nh=st.integers(0, 255),
    tfc=st.integers(0, 40),
    extra=st.integers(0, 3),
    seq=st.integers(1, 2**40),
    esn=st.booleans(),
)
def test_round_trip_property(
    suite: tuple[int, int, int], inner: bytes, nh: int, tfc: int, extra: int, seq: int, esn: bool
) -> None:
    encr, bits, integ = suite
    keys = make_keys(encr, bits, integ, esn=esn, esn_high=seq >> 32)
    enc = EspEncryptor(keys, counter_ivs())  # type: ignore[arg-type]
    # RFC 4303 Appendix A: a low half 2^31 or more above the receiver's top (here the start of
    # the keys' epoch) is taken for the previous epoch, and without an ICV nothing says otherwise.
    assume(not (esn and enc.transform.icv_size == 0 and seq & 0xFFFFFFFF >= 1 << 31))
    align = enc.transform.align
    pad = -(len(inner) + tfc + 2) % align + extra * align
    if pad > 255:
        pad -= align * ((pad - 255 + align - 1) // align)
    pkt = enc.encrypt(inner, nh, seq=seq if esn else seq & 0xFFFFFFFF, tfc_padding=tfc, pad_len=pad)
    status, got_nh, payload, hi = EspDecryptor(keys).decrypt(pkt, 0, len(pkt))
    assert (status, got_nh, hi) == (EspStatus.OK, nh, (seq >> 32) if esn else 0)
    # TFC padding stays in the payload: the caller trims by the inner IP header.
    assert payload == inner + bytes(tfc)


def test_esn_inferred_across_a_wrap_and_unknown_mode_locks() -> None:
    keys = make_keys(EncrId.ENCR_AES_GCM_16, 128, 0, esn=True)
    enc = EspEncryptor(keys, counter_ivs())  # type: ignore[arg-type]
    seqs = [0xFFFFFFF0, 0xFFFFFFFE, 0x1_00000002, 0xFFFFFFFF, 0x1_00000010, 0x2_00000001]
    pkts = [enc.encrypt(b"x", 4, seq=s) for s in seqs]
    # RFC 4303 Appendix A: the receiver tracks the high half from what it has verified.
    unknown = EspDecryptor(make_keys(EncrId.ENCR_AES_GCM_16, 128, 0, esn=None))
    got = [unknown.decrypt(p, 0, len(p)) for p in pkts]
    assert [g[0] for g in got] == [EspStatus.OK] * len(seqs)
    assert [g[3] for g in got] == [s >> 32 for s in seqs]
    assert unknown.esn is True
    # Without ESN the same packets fail, so "unknown" had to find the ESN mode.
    plain = make_keys(EncrId.ENCR_AES_GCM_16, 128, 0, esn=False)
    assert EspDecryptor(plain).decrypt(pkts[0], 0, len(pkts[0]))[0] == EspStatus.INTEGRITY_FAILED
    # A non-ESN SA with esn unknown locks to False on its first packet.
    enc2 = EspEncryptor(plain, counter_ivs())  # type: ignore[arg-type]
    dec2 = EspDecryptor(make_keys(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96, esn=None))
    enc3 = EspEncryptor(make_keys(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96), counter_ivs())  # type: ignore[arg-type]
    p = enc3.encrypt(b"y", 41, seq=7)
    assert dec2.decrypt(p, 0, len(p)) == (EspStatus.OK, 41, b"y", 0) and dec2.esn is False
    assert enc2.encrypt(b"z", 4, seq=1)


def test_esn_tracker_appendix_a() -> None:
    t = EsnTracker(0x5_00000010)
    assert t.guess(0x20) == 5  # just ahead
    assert t.guess(0xFFFFFFF0) == 4  # late packet from before the wrap
    t.top = 0x5_FFFFFFF0
    assert t.guess(0x00000005) == 6  # wrapped
    assert t.alternatives(5, 6) == [5, 4]
    assert EsnTracker(0).guess(0xFFFFFFFF) == 0  # never below zero


def test_statuses() -> None:
    keys = make_keys(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96)
    enc = EspEncryptor(keys, counter_ivs())  # type: ignore[arg-type]
    dec = EspDecryptor(keys)
    pkt = enc.encrypt(b"abc", 4, seq=1)
    assert dec.decrypt(pkt[:20], 0, 20)[0] == EspStatus.TRUNCATED
    assert dec.decrypt(pkt, 0, len(pkt) + 1)[0] == EspStatus.TRUNCATED  # end past the data
    # Ciphertext not a whole number of blocks (after a good ICV over the odd length).
    bad = pkt[:-12] + b"\x00\x00\x00\x00"
    odd = bad + dec.transform._mac.compute(bad)  # type: ignore[union-attr]
    assert dec.decrypt(odd, 0, len(odd))[0] == EspStatus.MALFORMED
    # Pad Length larger than the data.
    hostile = EspEncryptor(keys, counter_ivs())  # type: ignore[arg-type]
    body = bytes(14) + b"\xf0\x04"
    p = b"\xc0\xff\xee\x01\x00\x00\x00\x02" + hostile.transform.seal(
        b"\xc0\xff\xee\x01\x00\x00\x00\x02", bytes(16), body, b""
    )
    assert dec.decrypt(p, 0, len(p))[0] == EspStatus.MALFORMED
    # Unsupported algorithm / unusable key: status, and a reason.
    for bad_keys in (
        ChildSaKeys(spi=1, encr=EncrId.ENCR_IDEA, encr_key=SecretBytes(bytes(16))),
        ChildSaKeys(spi=1, encr=EncrId.ENCR_AES_CBC, encr_key=SecretBytes(bytes(15))),
    ):
        d = EspDecryptor(bad_keys)
        assert d.decrypt(pkt, 0, len(pkt)) == (EspStatus.UNSUPPORTED, -1, None, 0)
        assert d.problem


def test_padding_dummy_and_unchecked_icv() -> None:
    keys = make_keys(EncrId.ENCR_AES_GCM_16, 128, 0)
    enc = EspEncryptor(keys, counter_ivs())  # type: ignore[arg-type]
    dec = EspDecryptor(keys)
    # RFC 4303 §2.6 dummy packet: next header 59, reported as such.
    p = enc.encrypt(b"garbage", NEXT_HEADER_DUMMY, seq=1)
    assert dec.decrypt(p, 0, len(p))[:2] == (EspStatus.OK, 59)
    # Padding other than 1, 2, 3, ... is accepted and counted.
    body = b"payload" + b"\xff\xff\xff" + b"\x03\x04"
    hdr = (keys.spi).to_bytes(4, "big") + (2).to_bytes(4, "big")
    p = hdr + enc.transform.seal(hdr, bytes(8), body, b"")
    assert dec.decrypt(p, 0, len(p)) == (EspStatus.OK, 4, b"payload", 0)
    assert dec.irregular_padding == 1
    # An integrity algorithm without its key: decrypt, strip the ICV, do not check it.
    full = make_keys(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96)
    p = EspEncryptor(full, counter_ivs()).encrypt(b"data", 17, seq=3)  # type: ignore[arg-type]
    blind = EspDecryptor(ChildSaKeys(spi=full.spi, encr=full.encr, encr_key=full.encr_key, integ=full.integ))
    assert not blind.verifies_icv and EspDecryptor(full).verifies_icv
    assert blind.decrypt(p, 0, len(p)) == (EspStatus.OK, 17, b"data", 0)
    with pytest.raises(ValueError, match="integrity key"):
        EspEncryptor(
            ChildSaKeys(spi=1, encr=full.encr, encr_key=full.encr_key, integ=full.integ), counter_ivs()
        ).encrypt(b"", 4, seq=1)  # type: ignore[arg-type]


def test_encrypt_checks_padding() -> None:
    enc = EspEncryptor(make_keys(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96), counter_ivs())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="align"):
        enc.encrypt(b"abc", 4, seq=1, pad_len=3)
    assert len(enc.encrypt(b"abc", 4, seq=1, pad_len=11 + 16)) == 8 + 16 + 32 + 12


def test_truncated_gcm_icv_is_the_tag_prefix() -> None:
    # RFC 4106 §6: the 8- and 12-octet ICVs are the leading octets of the 16-octet GCM tag.
    header = bytes.fromhex("c0ffee0100000001")
    body = b"inner packet" + bytes.fromhex("01020204")
    material = bytes(range(20))
    sealed16 = EspEncryptor(
        ChildSaKeys(spi=1, encr=EncrId.ENCR_AES_GCM_16, encr_key=SecretBytes(material)), counter_ivs()
    )  # type: ignore[arg-type]
    ref = sealed16.transform.seal(header, bytes(8), body, b"")
    for encr, n in ((EncrId.ENCR_AES_GCM_8, 8), (EncrId.ENCR_AES_GCM_12, 12)):
        enc = EspEncryptor(ChildSaKeys(spi=1, encr=encr, encr_key=SecretBytes(material)), counter_ivs())  # type: ignore[arg-type]
        short = enc.transform.seal(header, bytes(8), body, b"")
        assert short == ref[: len(ref) - 16 + n]
