"""The pure-Python FIPS 203 ML-KEM (ipsecdiag.crypto.mlkem): known answers for ML-KEM-512 and
the library as an oracle for ML-KEM-768/1024, in both directions."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem as lib
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ipsecdiag.crypto import mlkem
from ipsecdiag.crypto.rng import DeterministicRandom

LIBRARY = {768: lib.MLKEM768PrivateKey, 1024: lib.MLKEM1024PrivateKey}


class NistKatDrbg:
    """The AES-256 CTR_DRBG of the NIST PQC KAT generator (no derivation function, no
    personalization): how the KAT files turn their 48-octet seed into d, z and m."""

    def __init__(self, entropy: bytes) -> None:
        self._key, self._v = bytes(32), bytes(16)
        self._update(entropy)

    def _block(self) -> bytes:
        self._v = ((int.from_bytes(self._v, "big") + 1) % (1 << 128)).to_bytes(16, "big")
        enc = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()
        return enc.update(self._v) + enc.finalize()

    def _update(self, data: bytes | None) -> None:
        temp = b"".join(self._block() for _ in range(3))
        if data is not None:
            temp = bytes(a ^ b for a, b in zip(temp, data, strict=True))
        self._key, self._v = temp[:32], temp[32:]

    def bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += self._block()
        self._update(None)
        return out[:n]


# liboqs 0.11.0 ML-KEM KAT entries (NIST PQC KAT format), as carried in strongSwan's
# test_vectors/ml_kem.c: (parameter set, DRBG seed, ek prefix, ciphertext prefix, shared secret)
KATS = [
    pytest.param(
        512,
        "061550234D158C5EC95595FE04EF7A25767F2E24CC2BC479D09D86DC9ABCFDE7056A8C266F9EF97ED08541DBD2E1FFA1",
        "400865ED10B619AA5811",
        "521C88486C35F6C24583",
        "B4C8E3C4115F9511F2FDDB288C4B78C5CD7C89D2D4D321F46B4EDC54DDF0EB36",
        id="mlkem512-count0",
    ),
    pytest.param(
        512,
        "225D5CE2CEAC61930A07503FB59F7C2F936A3E075481DA3CA299A80F8C5DF9223A073E7B90E02EBF98CA2227EBA38C1A",
        "BFF484451C173F414121",
        "CB6B5E387B7B8F7B13FE",
        "72E4223D6D110611022A0FDB2CBD333D11A0F381293CF45DD0C8971ECCE830FB",
        id="mlkem512-count3",
    ),
]


@pytest.mark.parametrize(("bits", "seed", "ek_prefix", "ct_prefix", "shared"), KATS)
def test_known_answer(bits: int, seed: str, ek_prefix: str, ct_prefix: str, shared: str) -> None:
    p = mlkem.PARAMS[bits]
    drbg = NistKatDrbg(bytes.fromhex(seed))
    coins = drbg.bytes(64)  # keypair: d || z in one draw; then m for the encapsulation
    ek, dk = mlkem.keygen(p, coins[:32], coins[32:])
    key, ct = mlkem.encaps(p, ek, drbg.bytes(32))
    assert ek.hex().upper().startswith(ek_prefix) and len(ek) == p.ek_size
    assert ct.hex().upper().startswith(ct_prefix) and len(ct) == p.ct_size
    assert key.hex().upper() == shared
    assert mlkem.decaps(p, dk, ct) == key


@pytest.mark.parametrize("bits", [768, 1024])
@pytest.mark.parametrize("seed", ["a", "b", "c"])
def test_agrees_with_the_library(bits: int, seed: str) -> None:
    p, rng = mlkem.PARAMS[bits], DeterministicRandom(f"{bits}-{seed}")
    coins, m = rng.bytes(64), rng.bytes(32)
    ek, dk = mlkem.keygen(p, coins[:32], coins[32:])
    theirs = LIBRARY[bits].from_seed_bytes(coins)
    assert ek == theirs.public_key().public_bytes_raw()  # key generation (seed = d || z)
    key, ct = mlkem.encaps(p, ek, m)
    assert theirs.decapsulate(ct) == key  # our encapsulation, their decapsulation
    their_key, their_ct = theirs.public_key().encapsulate()
    assert mlkem.decaps(p, dk, their_ct) == their_key  # theirs, ours
    forged = their_ct[:-1] + bytes([their_ct[-1] ^ 0x80])
    assert mlkem.decaps(p, dk, forged) == theirs.decapsulate(forged)  # implicit rejection


def test_input_checks() -> None:
    p = mlkem.PARAMS[512]
    ek, dk = mlkem.keygen(p, bytes(32), bytes(32))
    assert mlkem.encaps_key_is_valid(p, ek)
    assert not mlkem.encaps_key_is_valid(p, ek[:-1])
    unreduced = b"\xff\x0f" + ek[2:]  # first coefficient 4095 >= q (FIPS 203 §7.2)
    assert not mlkem.encaps_key_is_valid(p, unreduced)
    with pytest.raises(ValueError, match="7.2"):
        mlkem.encaps(p, unreduced, bytes(32))
    with pytest.raises(ValueError, match="7.2"):
        mlkem.encaps(p, ek, bytes(31))
    _, ct = mlkem.encaps(p, ek, bytes(32))
    with pytest.raises(ValueError, match="wrong length"):
        mlkem.decaps(p, dk, ct[:-1])
    broken = dk[: 768 * p.k + 32] + bytes(32) + dk[768 * p.k + 64 :]  # H(ek) replaced
    with pytest.raises(ValueError, match="7.3"):
        mlkem.decaps(p, broken, ct)


def test_parameter_sizes_are_fips203_table3() -> None:
    sizes = {bits: (p.ek_size, p.dk_size, p.ct_size) for bits, p in mlkem.PARAMS.items()}
    assert sizes == {512: (800, 1632, 768), 768: (1184, 2400, 1088), 1024: (1568, 3168, 1568)}
