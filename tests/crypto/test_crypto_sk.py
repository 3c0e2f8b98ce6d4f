"""IKEv2 SK/SKF payload protection (RFC 7296 §3.14, RFC 5282, RFC 7634 §4, RFC 7383 §2.5):
round trips, tampering, and every keyed capture in the corpus."""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus
from hypothesis import given, settings
from hypothesis import strategies as st
from ike_frames import IkeFrame, ike_messages, payload_chain

from ipsecdiag.crypto.ciphers import make_cipher
from ipsecdiag.crypto.errors import DecryptError, IntegrityError, InvalidKey, UnsupportedAlgorithm
from ipsecdiag.crypto.sk import SkContext, decrypt_sk, protect_sk, protect_skf
from ipsecdiag.crypto.transforms import encr_spec, integ_spec
from ipsecdiag.keys.model import IkeSaKeys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId, PayloadType

SUITES = [
    (EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96),
    (EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128),
    (EncrId.ENCR_AES_CBC, 192, IntegId.AUTH_AES_XCBC_96),
    (EncrId.ENCR_3DES, 192, IntegId.AUTH_HMAC_SHA2_512_256),
    (EncrId.ENCR_AES_CTR, 256, IntegId.AUTH_HMAC_SHA2_384_192),
    (EncrId.ENCR_CAMELLIA_CBC, 128, IntegId.AUTH_AES_CMAC_96),
    (EncrId.ENCR_AES_GCM_16, 256, 0),
    (EncrId.ENCR_AES_GCM_12, 128, 0),
    (EncrId.ENCR_AES_GCM_8, 192, 0),
    (EncrId.ENCR_AES_CCM_16, 256, 0),
    (EncrId.ENCR_AES_CCM_8, 128, 0),
    (EncrId.ENCR_CHACHA20_POLY1305, 256, 0),
]
HEADER = bytes.fromhex("010203040506070811121314151617182e2023080000000100000000")


def make_keys(encr: int, bits: int, integ: int, seed: int = 1) -> IkeSaKeys:
    spec = encr_spec(encr)
    elen = spec.keymat_size(bits)
    alen = integ_spec(integ).key_size if integ else 0

    def key(tag: int, n: int) -> SecretBytes:
        return SecretBytes(bytes((seed * 31 + tag * 7 + i) & 0xFF for i in range(n)))

    return IkeSaKeys(
        spi_i=HEADER[:8],
        spi_r=HEADER[8:16],
        encr=encr,
        sk_ei=key(1, elen),
        sk_er=key(2, elen),
        integ=integ,
        sk_ai=key(3, alen),
        sk_ar=key(4, alen),
        encr_key_bits=bits,
    )


@pytest.mark.parametrize(("encr", "bits", "integ"), SUITES)
def test_round_trip_every_suite(encr: int, bits: int, integ: int) -> None:
    keys = make_keys(encr, bits, integ)
    iv = bytes(range(encr_spec(encr).iv_size))
    inner = bytes.fromhex("29000008000040000000000c0100000101020304")  # N(INITIAL_CONTACT)-ish chain
    msg = protect_sk(
        keys, from_initiator=True, ike_header=HEADER, first_inner_type=41, plaintext=inner, iv=iv
    )
    assert struct.unpack_from("!I", msg, 24)[0] == len(msg)
    assert msg[16] == PayloadType.SK and msg[28] == 41
    assert decrypt_sk(keys, msg, 28, from_initiator=True) == inner
    # The other direction's keys do not verify it.
    with pytest.raises(IntegrityError):
        decrypt_sk(keys, msg, 28, from_initiator=False)


@settings(max_examples=150, deadline=None)
@given(
    suite=st.sampled_from(SUITES),
    inner=st.binary(max_size=300),
    prior=st.binary(max_size=40),
    iv_seed=st.integers(0, 255),
    extra_pad=st.integers(0, 3),
    frag=st.none() | st.tuples(st.integers(1, 5), st.integers(0, 4)),
)
def test_round_trip_property(
    suite: tuple[int, int, int],
    inner: bytes,
    prior: bytes,
    iv_seed: int,
    extra_pad: int,
    frag: tuple[int, int] | None,
) -> None:
    encr, bits, integ = suite
    ctx_i = SkContext(make_keys(encr, bits, integ), from_initiator=True)
    iv = bytes((iv_seed + i) & 0xFF for i in range(ctx_i.iv_size))
    bs = encr_spec(encr).block_size
    pad = (-(len(inner) + 1)) % bs + extra_pad * bs
    if frag is None:
        msg = ctx_i.protect(
            ike_header=HEADER, first_inner_type=33, plaintext=inner, iv=iv, pad_len=pad, prior_payloads=prior
        )
        plen = ctx_i.payload_length(len(inner), pad_len=pad)
    else:
        number, more = frag
        msg = ctx_i.protect_fragment(
            ike_header=HEADER,
            first_inner_type=33 if number == 1 else 0,
            fragment_number=number,
            total_fragments=number + more,
            plaintext=inner,
            iv=iv,
            pad_len=pad,
            prior_payloads=prior,
        )
        plen = ctx_i.payload_length(len(inner), fragment=True, pad_len=pad)
        assert struct.unpack_from("!HH", msg, 28 + len(prior) + 4) == (number, number + more)
    assert len(msg) == 28 + len(prior) + plen
    sk_off = 28 + len(prior)
    assert ctx_i.decrypt(msg, sk_off, fragment=frag is not None) == inner
    # Any single changed octet is caught (header, prior payloads, IV, ciphertext, ICV).
    pos = (iv_seed * 7919) % len(msg)
    bad = bytearray(msg)
    bad[pos] ^= 0x01
    with pytest.raises((IntegrityError, DecryptError)):
        ctx_i.decrypt(bytes(bad), sk_off, fragment=frag is not None)


def test_fragment_inferred_from_header() -> None:
    keys = make_keys(EncrId.ENCR_AES_GCM_16, 128, 0)
    msg = protect_skf(
        keys,
        from_initiator=False,
        ike_header=HEADER,
        first_inner_type=35,
        fragment_number=1,
        total_fragments=2,
        plaintext=b"abc",
        iv=bytes(8),
    )
    assert msg[16] == PayloadType.SKF
    assert decrypt_sk(keys, msg, 28, from_initiator=False) == b"abc"
    # Read as a plain SK payload, the fragment fields become part of the IV: it fails.
    with pytest.raises(IntegrityError):
        decrypt_sk(keys, msg, 28, from_initiator=False, fragment=False)


def _raw_sk(keys: IkeSaKeys, body: bytes, *, fix_length: int | None = None) -> bytes:
    """An SK message around an arbitrary decrypted body (to forge bad padding)."""
    cipher = make_cipher(keys.encr, keys.sk_ei.reveal(), keys.encr_key_bits)
    plen = 4 + 16 + len(body) + 12
    hdr = bytearray(HEADER)
    struct.pack_into("!I", hdr, 24, 28 + plen)
    hdr[16] = PayloadType.SK
    msg = bytes(hdr) + bytes((41, 0)) + struct.pack("!H", fix_length or plen) + bytes(16)
    msg += cipher.encrypt(bytes(16), body)  # type: ignore[union-attr]
    ctx = SkContext(keys, from_initiator=True)
    return msg + ctx._mac.compute(msg)  # type: ignore[union-attr]


def test_bad_padding_and_lengths() -> None:
    keys = make_keys(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96)
    with pytest.raises(DecryptError, match="Pad Length 200"):
        decrypt_sk(keys, _raw_sk(keys, bytes(15) + b"\xc8"), 28, from_initiator=True)
    assert decrypt_sk(keys, _raw_sk(keys, b"x" + bytes(14) + b"\x0e"), 28, from_initiator=True) == b"x"
    msg = _raw_sk(keys, bytes(16))
    with pytest.raises(DecryptError, match="runs past"):
        decrypt_sk(keys, msg[:-1], 28, from_initiator=True)
    with pytest.raises(DecryptError, match="cannot hold"):
        decrypt_sk(keys, _raw_sk(keys, bytes(16), fix_length=20), 28, from_initiator=True)
    with pytest.raises(DecryptError, match="past the message end"):
        decrypt_sk(keys, msg[:30], 28, from_initiator=True)


def test_protect_argument_checks() -> None:
    ctx = SkContext(make_keys(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96), from_initiator=True)
    with pytest.raises(ValueError, match="IV"):
        ctx.protect(ike_header=HEADER, first_inner_type=41, plaintext=b"", iv=bytes(8))
    with pytest.raises(ValueError, match="multiple of 16"):
        ctx.protect(ike_header=HEADER, first_inner_type=41, plaintext=b"", iv=bytes(16), pad_len=3)
    with pytest.raises(ValueError, match="28 bytes"):
        ctx.protect(ike_header=HEADER[:20], first_inner_type=41, plaintext=b"", iv=bytes(16))
    with pytest.raises(ValueError, match="fragment"):
        ctx.protect_fragment(
            ike_header=HEADER,
            first_inner_type=0,
            fragment_number=3,
            total_fragments=2,
            plaintext=b"",
            iv=bytes(16),
        )


def test_unusable_keys() -> None:
    with pytest.raises(UnsupportedAlgorithm, match="ENCR_RC5"):
        SkContext(replace(make_keys(EncrId.ENCR_AES_CBC, 128, 2), encr=EncrId.ENCR_RC5), from_initiator=True)
    short = IkeSaKeys(
        HEADER[:8], HEADER[8:16], EncrId.ENCR_AES_GCM_16, SecretBytes(bytes(19)), SecretBytes(bytes(36))
    )
    with pytest.raises(InvalidKey):
        SkContext(short, from_initiator=True)
    assert SkContext(short, from_initiator=False).icv_size == 16


# ---------------------------------------------------------------------------------- corpus

_LAB_ENCR = {
    "AES_GCM_16": EncrId.ENCR_AES_GCM_16,
    "AES_CBC": EncrId.ENCR_AES_CBC,
    "AES_CTR": EncrId.ENCR_AES_CTR,
}
_LAB_INTEG = {
    None: 0,
    "HMAC_SHA2_256_128": IntegId.AUTH_HMAC_SHA2_256_128,
    "HMAC_SHA1_96": IntegId.AUTH_HMAC_SHA1_96,
}
# Wireshark ikev2_decryption_table names (the rows used by the captures we hold).
_WS_ENCR = {
    "AES-CBC-256 [RFC3602]": (EncrId.ENCR_AES_CBC, 256),
    "AES-CCM-256 with 16 octet ICV [RFC5282]": (EncrId.ENCR_AES_CCM_16, 256),
    "AES-GCM-256 with 16 octet ICV [RFC5282]": (EncrId.ENCR_AES_GCM_16, 256),
    "AES-GCM-256 with 8 octet ICV [RFC5282]": (EncrId.ENCR_AES_GCM_8, 256),
    "AES-CTR-256 [RFC5930]": (EncrId.ENCR_AES_CTR, 256),
    "AES-CTR-192 [RFC5930]": (EncrId.ENCR_AES_CTR, 192),
}
_WS_INTEG = {
    "NONE [RFC4306]": 0,
    "HMAC_SHA2_256_128 [RFC4868]": IntegId.AUTH_HMAC_SHA2_256_128,
    "HMAC_SHA2_512_256 [RFC4868]": IntegId.AUTH_HMAC_SHA2_512_256,
}


def _ws_table(path: Path) -> dict[bytes, IkeSaKeys]:
    keys = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        f = [x.strip('"') for x in line.split(",")]
        if f[4] not in _WS_ENCR or f[7] not in _WS_INTEG:
            continue
        encr, bits = _WS_ENCR[f[4]]
        k = IkeSaKeys(
            spi_i=bytes.fromhex(f[0]),
            spi_r=bytes.fromhex(f[1]),
            encr=encr,
            sk_ei=SecretBytes.fromhex(f[2]),
            sk_er=SecretBytes.fromhex(f[3]),
            integ=_WS_INTEG[f[7]],
            sk_ai=SecretBytes.fromhex(f[5]),
            sk_ar=SecretBytes.fromhex(f[6]),
            encr_key_bits=bits,
        )
        keys[k.spi_i] = k
    return keys


def _lab_keys(d: Path) -> dict[bytes, IkeSaKeys]:
    keys = {}
    for s in json.loads((d / "keys.json").read_text())["ike_sas"]:
        if s["ike_version"] != 2:
            continue
        k = IkeSaKeys(
            spi_i=bytes.fromhex(s["spi_i"]),
            spi_r=bytes.fromhex(s["spi_r"]),
            encr=_LAB_ENCR[s["encryption"]["alg"]],
            sk_ei=SecretBytes.fromhex(s["sk_ei"]),
            sk_er=SecretBytes.fromhex(s["sk_er"]),
            integ=_LAB_INTEG[s["integrity"]["alg"]],
            sk_ai=SecretBytes.fromhex(s["sk_ai"]),
            sk_ar=SecretBytes.fromhex(s["sk_ar"]),
            encr_key_bits=s["encryption"]["key_bits"],
        )
        keys[k.spi_i] = k
    return keys


def _encrypted(frames: list[IkeFrame]) -> list[IkeFrame]:
    return [f for f in frames if f.message[16] in (PayloadType.SK, PayloadType.SKF)]


def _decrypt_all(frames: list[IkeFrame], keys: dict[bytes, IkeSaKeys]) -> list[tuple[IkeFrame, list[int]]]:
    """Decrypt every SK payload; reassemble SKF fragments (RFC 7383 §2.6) before parsing."""
    out = []
    frags: dict[tuple[bytes, int, bool], dict[int, bytes]] = {}
    for f in _encrypted(frames):
        m = f.message
        k = keys[m[:8]]
        from_i = bool(m[19] & 0x08)
        inner = decrypt_sk(k, m, 28, from_initiator=from_i)
        if m[16] == PayloadType.SKF:
            number, total = struct.unpack_from("!HH", m, 32)
            key = (m[:8], struct.unpack_from("!I", m, 20)[0], from_i)
            frags.setdefault(key, {})[number] = inner if number > 1 else bytes((m[28],)) + inner
            if len(frags[key]) < total:
                continue
            parts = frags.pop(key)
            whole = b"".join(parts[i] for i in range(1, total + 1))
            first, inner = whole[0], whole[1:]
        else:
            first = m[28]
        out.append((f, [t for t, _, _ in payload_chain(inner, first, 0, len(inner))]))
    return out


@needs_corpus
@pytest.mark.parametrize(
    "scenario", sorted(p.name for p in (CORPUS / "lab").glob("ikev2-*")) if CORPUS.is_dir() else []
)
def test_lab_sk_payloads_decrypt(scenario: str) -> None:
    d = CORPUS / "lab" / scenario
    frames = ike_messages(d / "capture.pcap")
    results = _decrypt_all(frames, _lab_keys(d))
    assert len(results) > 0 or not _encrypted(frames)
    for f, chain in results:
        if f.message[18] == 35 and f.message[19] & 0x08:  # IKE_AUTH request: IDi and AUTH inside
            assert PayloadType.IDi in chain and PayloadType.AUTH in chain


@needs_corpus
@pytest.mark.parametrize(
    ("capture", "auth_data"),
    [
        # Wireshark test/suite_decryption.py: isakmp.auth.data after decryption.
        (
            "ikev2-decrypt-aes256cbc.pcapng",
            "e1a8d550064201a7ec024a85758d0673c61c5c510ac13bcd225d6327f50da3d3",
        ),
        (
            "ikev2-decrypt-aes256ccm16.pcapng",
            "fa2e74bdc01e30fb0b3ddc9723c9449095969da51f69e560209d2c2b7940210a",
        ),
    ],
)
def test_wireshark_testsuite_captures(capture: str, auth_data: str) -> None:
    d = CORPUS / "external" / "wireshark-testsuite"
    frames = ike_messages(d / capture)
    keys = _ws_table(d / "ikev2_decryption_table")
    found = []
    for f in _encrypted(frames):
        m = f.message
        inner = decrypt_sk(keys[m[:8]], m, 28, from_initiator=bool(m[19] & 0x08))
        for t, off, ln in payload_chain(inner, m[28], 0, len(inner)):
            if t == PayloadType.AUTH:
                found.append(inner[off + 8 : off + ln].hex())
    assert auth_data in found


@needs_corpus
def test_wireshark_wiki_natt_capture() -> None:
    d = CORPUS / "external" / "wireshark-wiki" / "ipsec_ikev2_esp_natt"
    frames = ike_messages(d / "capture.pcapng")
    results = _decrypt_all(frames, _ws_table(d / "ikev2_decryption_table"))
    assert len(results) == len(_encrypted(frames)) == 24
    assert sum(1 for _, chain in results if PayloadType.AUTH in chain) == 6


@needs_corpus
def test_tcpdump_ikev2_secrets() -> None:
    d = CORPUS / "external" / "tcpdump"
    rows = {}
    for line in (d / "ikev2pI2-secrets.txt").read_text().splitlines():
        f = line.split()
        if len(f) == 6 and f[0] == "ikev2":
            rows[f[1]] = (
                bytes.fromhex(f[2][2:]),
                bytes.fromhex(f[3][2:]),
                f[4].split(":0x")[1],
                f[5].split(":0x")[1],
            )
    spi_i, spi_r, ai, ei = rows["I"]
    _, _, ar, er = rows["R"]
    keys = IkeSaKeys(
        spi_i, spi_r, EncrId.ENCR_AES_CBC, SecretBytes.fromhex(ei), SecretBytes.fromhex(er),
        IntegId.AUTH_HMAC_SHA1_96, SecretBytes.fromhex(ai), SecretBytes.fromhex(ar),
    )  # fmt: skip
    (f,) = _encrypted(ike_messages(d / "ikev2pI2.pcap"))
    m = f.message
    # The capture was edited after Openswan wrote it (Message ID forced to 0), so its ICV no
    # longer verifies; tshark says the same ("Integrity Checksum Data ... incorrect").
    with pytest.raises(IntegrityError):
        decrypt_sk(keys, m, 28, from_initiator=True)
    # The ciphertext itself is intact: SK_ei alone yields the IDi, AUTH, ... chain.
    plen = struct.unpack_from("!H", m, 30)[0]
    body = make_cipher(EncrId.ENCR_AES_CBC, keys.sk_ei.reveal()).decrypt(m[32:48], m[48 : 28 + plen - 12])  # type: ignore[union-attr]
    inner = body[: len(body) - 1 - body[-1]]
    chain = [t for t, _, _ in payload_chain(inner, m[28], 0, len(inner))]
    assert chain[:2] == [PayloadType.IDi, PayloadType.AUTH]


@needs_corpus
def test_packetgen_partial_keys_and_byte_exact_reencryption() -> None:
    # Keys from packetgen spec/ike/sk_spec.rb: only the initiator side is published.
    d = CORPUS / "external" / "packetgen-plugin-ipsec"
    unknown = SecretBytes(bytes(36))
    gcm = ike_messages(d / "ikev2.pcapng")[2].message
    gcm_keys = IkeSaKeys(
        gcm[:8], gcm[8:16], EncrId.ENCR_AES_GCM_16,
        SecretBytes.fromhex("B37E73D129FFE681D2E3AA3728C2401ED50160E39FD55EF1A1EAE0D3F4AA6126D8B8A626"), unknown,
    )  # fmt: skip
    inner = decrypt_sk(gcm_keys, gcm, 28, from_initiator=True)
    # Upstream expects 12 payloads in the message (SK itself and 11 inside).
    assert len(payload_chain(inner, gcm[28], 0, len(inner))) == 11
    # Re-protecting with the IV the spec uses gives the captured bytes back.
    plen = struct.unpack_from("!H", gcm, 30)[0]
    iv = gcm[32:40]
    assert iv == bytes.fromhex("61c37f461d9fce57")
    ctx = SkContext(gcm_keys, from_initiator=True)
    pad = plen - ctx.payload_length(len(inner))
    again = ctx.protect(ike_header=gcm[:28], first_inner_type=gcm[28], plaintext=inner, iv=iv, pad_len=pad)
    assert again == gcm[: 28 + plen]

    cbc = ike_messages(d / "ikev2_cbc_hmac.pcapng")[2].message
    cbc_keys = IkeSaKeys(
        cbc[:8], cbc[8:16], EncrId.ENCR_AES_CBC, SecretBytes.fromhex("27A29D9516D8B657E4501D499CA35484"),
        SecretBytes(bytes(16)), IntegId.AUTH_HMAC_SHA2_256_128,
        SecretBytes.fromhex("8DAD540E7B992063CE893021DBF48051BA669F79B608FAB021742129AF192AD5"), SecretBytes(bytes(32)),
    )  # fmt: skip
    inner = decrypt_sk(cbc_keys, cbc, 28, from_initiator=True)
    assert len(payload_chain(inner, cbc[28], 0, len(inner))) == 10  # upstream: 11 with SK
    with pytest.raises(IntegrityError):  # the zero-filled responder keys are wrong keys
        decrypt_sk(cbc_keys, ike_messages(d / "ikev2_cbc_hmac.pcapng")[3].message, 28, from_initiator=False)
