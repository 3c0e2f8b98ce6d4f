"""The injected randomness source (ipsecdiag.crypto.rng): reproducible streams and the SPI and
integer helpers, including sources that misbehave."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from ipsecdiag.crypto.errors import CryptoError
from ipsecdiag.crypto.rng import DeterministicRandom, RandomSource, random_int_below, random_spi


class _Scripted:
    """A source that replays fixed chunks (to force the rejection paths)."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    def bytes(self, n: int) -> bytes:
        chunk = self._chunks.pop(0)
        assert len(chunk) == n
        return chunk


class _Zeros:
    def bytes(self, n: int) -> bytes:
        return bytes(n)


def test_stream_is_shake256_of_seed_and_counter() -> None:
    rng = DeterministicRandom(b"seed")
    first = rng.bytes(64)
    second = rng.bytes(64)
    assert first == hashlib.shake_256(b"seed" + (0).to_bytes(8, "big")).digest(64)
    assert second == hashlib.shake_256(b"seed" + (1).to_bytes(8, "big")).digest(64)


def test_same_seed_same_stream_regardless_of_read_sizes() -> None:
    whole = DeterministicRandom("replay-1").bytes(300)
    split = DeterministicRandom("replay-1")
    parts = b"".join(split.bytes(k) for k in (1, 0, 63, 64, 65, 7, 100))
    assert parts == whole
    assert DeterministicRandom(b"replay-1").bytes(300) == whole  # str seed is its UTF-8


def test_different_seeds_differ_and_reads_advance() -> None:
    a = DeterministicRandom("a")
    assert DeterministicRandom("b").bytes(32) != DeterministicRandom("a").bytes(32)
    assert a.bytes(32) != a.bytes(32)


def test_negative_read_rejected_and_repr_hides_seed() -> None:
    rng = DeterministicRandom("secret-seed")
    with pytest.raises(ValueError):
        rng.bytes(-1)
    assert "secret-seed" not in repr(rng)
    assert isinstance(rng, RandomSource)


def test_random_spi_sizes_and_reserved_values_skipped() -> None:
    rng = DeterministicRandom("spi")
    for size in (4, 8):
        for _ in range(200):
            spi = random_spi(rng, size)
            assert len(spi) == size and int.from_bytes(spi, "big") >= 256
    # zero and 1..255 (RFC 4303 §2.1 reserved) are drawn again
    scripted = _Scripted(bytes(4), b"\x00\x00\x00\xff", b"\x00\x00\x01\x00")
    assert random_spi(scripted, 4) == b"\x00\x00\x01\x00"


def test_random_spi_gives_up_on_a_broken_source() -> None:
    with pytest.raises(CryptoError, match="reserved"):
        random_spi(_Zeros(), 8)
    with pytest.raises(ValueError):
        random_spi(DeterministicRandom("x"), 1)


def test_random_int_below_rejects_instead_of_reducing() -> None:
    # n = 5 needs 3 bits: 7, 6, 5 are rejected (after masking 0xff -> 7), 4 is returned
    assert random_int_below(_Scripted(b"\xff", b"\x06", b"\x05", b"\x04"), 5) == 4
    assert random_int_below(_Zeros(), 1) == 0
    with pytest.raises(ValueError):
        random_int_below(DeterministicRandom("x"), 0)


def test_random_int_below_is_roughly_uniform() -> None:
    rng = DeterministicRandom("uniform")
    counts = Counter(random_int_below(rng, 6) for _ in range(6000))
    assert set(counts) == set(range(6))
    assert all(850 < c < 1150 for c in counts.values())  # ~1000 each; 5 sigma is ~ +-150


def test_random_int_below_large_modulus() -> None:
    rng = DeterministicRandom("big")
    q = (1 << 255) - 19
    values = [random_int_below(rng, q) for _ in range(50)]
    assert all(0 <= v < q for v in values)
    assert max(values).bit_length() > 250


def test_short_reads_from_a_source_are_errors() -> None:
    class Short:
        def bytes(self, n: int) -> bytes:
            return b"\x01"

    with pytest.raises(CryptoError, match="octets"):
        random_spi(Short(), 4)
    with pytest.raises(CryptoError, match="octets"):
        random_int_below(Short(), 1 << 20)


def test_key_exchange_modules_stay_sans_io() -> None:
    # The rule behind the injected source: these modules import no I/O, clock or global
    # randomness and never call os.urandom (the OS source lives in ipsecdiag.probe.rng).
    import ast
    from pathlib import Path

    import ipsecdiag.crypto

    forbidden = {"socket", "select", "asyncio", "time", "random", "secrets", "subprocess", "threading"}
    root = Path(ipsecdiag.crypto.__file__).parent
    for name in ("rng.py", "ke.py", "mlkem.py", "modp_groups.py"):
        tree = ast.parse((root / name).read_text(), name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = {node.module.split(".")[0]}
            else:
                modules = set()
            assert not modules & forbidden, (name, modules & forbidden)
            if isinstance(node, ast.Attribute):
                assert node.attr != "urandom", name
