"""ML-KEM (FIPS 203) in pure Python, for the parts ``cryptography`` cannot do for us.

Two gaps make this necessary: ``cryptography``'s ``encapsulate()`` accepts no randomness (it
draws the 32-octet message m from OpenSSL), so a responder built on it cannot be replayed from
a seeded :class:`~ipsecdiag.crypto.rng.RandomSource`; and it has no ML-KEM-512 at all.
:func:`encaps` here is FIPS 203's ML-KEM.Encaps_internal with m passed in, and :func:`keygen` /
:func:`decaps` complete the set for ML-KEM-512. The tests hold this code against the library in
both directions for ML-KEM-768 and -1024 (same key from the same seed; each side decapsulates
what the other encapsulated), so the shared arithmetic is checked where an oracle exists.

This is not constant-time code. It serves a diagnostic prober's ephemeral keys; where the
library can do the secret-key work (key generation, decapsulation for 768/1024) the caller
uses the library.

References are to FIPS 203 (August 2024): Algorithms 3-22, §7.2-7.3 input checks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["PARAMS", "MlKemParams", "decaps", "encaps", "encaps_key_is_valid", "keygen"]

Q = 3329
N = 256


@dataclass(frozen=True)
class MlKemParams:
    """One FIPS 203 parameter set (Table 2)."""

    name: str
    k: int
    eta1: int
    eta2: int
    du: int
    dv: int

    @property
    def ek_size(self) -> int:
        return 384 * self.k + 32

    @property
    def dk_size(self) -> int:
        return 768 * self.k + 96

    @property
    def ct_size(self) -> int:
        return 32 * (self.du * self.k + self.dv)


PARAMS = {
    512: MlKemParams("ML-KEM-512", 2, 3, 2, 10, 4),
    768: MlKemParams("ML-KEM-768", 3, 2, 2, 10, 4),
    1024: MlKemParams("ML-KEM-1024", 4, 2, 2, 11, 5),
}


def _bitrev7(i: int) -> int:
    return int(f"{i:07b}"[::-1], 2)


_ZETAS = [pow(17, _bitrev7(i), Q) for i in range(128)]  # Appendix A
_GAMMAS = [pow(17, 2 * _bitrev7(i) + 1, Q) for i in range(128)]
_N_INV = 3303  # 128^-1 mod q, the NTT^-1 scaling


# -- hash functions (§4.1) -----------------------------------------------------------------------


def _h(s: bytes) -> bytes:
    return hashlib.sha3_256(s).digest()


def _g(s: bytes) -> tuple[bytes, bytes]:
    d = hashlib.sha3_512(s).digest()
    return d[:32], d[32:]


def _j(s: bytes) -> bytes:
    return hashlib.shake_256(s).digest(32)


def _prf(eta: int, s: bytes, b: int) -> bytes:
    return hashlib.shake_256(s + bytes((b,))).digest(64 * eta)


# -- encodings (Algorithms 5-6, §4.2.1) ----------------------------------------------------------

Poly = list[int]


def _byte_encode(f: Poly, d: int) -> bytes:
    # d bits per coefficient, least significant bit first: one little-endian integer.
    value = 0
    for i in reversed(range(N)):
        value = (value << d) | f[i]
    return value.to_bytes(32 * d, "little")


def _byte_decode(b: bytes, d: int) -> Poly:
    value, mask = int.from_bytes(b, "little"), (1 << d) - 1
    f = [(value >> (d * i)) & mask for i in range(N)]
    return [x % Q for x in f] if d == 12 else f


def _compress(f: Poly, d: int) -> Poly:
    # round(2^d / q * x) mod 2^d, rounding halves up, in integers
    return [(((x << (d + 1)) + Q) // (2 * Q)) & ((1 << d) - 1) for x in f]


def _decompress(f: Poly, d: int) -> Poly:
    return [(y * Q + (1 << (d - 1))) >> d for y in f]


# -- sampling (Algorithms 7-8) -------------------------------------------------------------------


def _sample_ntt(seed: bytes) -> Poly:
    out: Poly = []
    length = 840  # five SHAKE128 blocks: enough for 256 coefficients almost always
    stream = hashlib.shake_128(seed).digest(length)
    pos = 0
    while len(out) < N:
        if pos + 3 > len(stream):
            if length >= 1 << 16:  # 2^-hundreds likely; a bound, not a case
                raise RuntimeError("SampleNTT: XOF output exhausted")
            length *= 2
            stream = hashlib.shake_128(seed).digest(length)
        c0, c1, c2 = stream[pos], stream[pos + 1], stream[pos + 2]
        pos += 3
        for d in (c0 + 256 * (c1 & 15), (c1 >> 4) + 16 * c2):
            if d < Q and len(out) < N:
                out.append(d)
    return out


def _sample_cbd(b: bytes, eta: int) -> Poly:
    bits = int.from_bytes(b, "little")
    out = []
    for i in range(N):
        chunk = bits >> (2 * i * eta)
        x = bin(chunk & ((1 << eta) - 1)).count("1")
        y = bin((chunk >> eta) & ((1 << eta) - 1)).count("1")
        out.append((x - y) % Q)
    return out


# -- NTT arithmetic (Algorithms 9-12) ------------------------------------------------------------


def _ntt(f: Poly) -> Poly:
    f = list(f)
    i, length = 1, 128
    while length >= 2:
        for start in range(0, N, 2 * length):
            zeta = _ZETAS[i]
            i += 1
            for j in range(start, start + length):
                t = zeta * f[j + length] % Q
                f[j + length] = (f[j] - t) % Q
                f[j] = (f[j] + t) % Q
        length //= 2
    return f


def _ntt_inv(f: Poly) -> Poly:
    f = list(f)
    i, length = 127, 2
    while length <= 128:
        for start in range(0, N, 2 * length):
            zeta = _ZETAS[i]
            i -= 1
            for j in range(start, start + length):
                t = f[j]
                f[j] = (t + f[j + length]) % Q
                f[j + length] = zeta * (f[j + length] - t) % Q
        length *= 2
    return [x * _N_INV % Q for x in f]


def _multiply_ntts(f: Poly, g: Poly) -> Poly:
    h = [0] * N
    for i in range(128):
        a0, a1, b0, b1, gamma = f[2 * i], f[2 * i + 1], g[2 * i], g[2 * i + 1], _GAMMAS[i]
        h[2 * i] = (a0 * b0 + a1 * b1 * gamma) % Q
        h[2 * i + 1] = (a0 * b1 + a1 * b0) % Q
    return h


def _add(f: Poly, g: Poly) -> Poly:
    return [(a + b) % Q for a, b in zip(f, g, strict=True)]


def _dot(fs: list[Poly], gs: list[Poly]) -> Poly:
    acc = [0] * N
    for f, g in zip(fs, gs, strict=True):
        acc = _add(acc, _multiply_ntts(f, g))
    return acc


def _matrix(rho: bytes, k: int) -> list[list[Poly]]:
    # Â[i][j] = SampleNTT(rho || j || i)
    return [[_sample_ntt(rho + bytes((j, i))) for j in range(k)] for i in range(k)]


# -- K-PKE (Algorithms 13-15) --------------------------------------------------------------------


def _pke_keygen(p: MlKemParams, d: bytes) -> tuple[bytes, bytes]:
    rho, sigma = _g(d + bytes((p.k,)))
    a = _matrix(rho, p.k)
    s = [_ntt(_sample_cbd(_prf(p.eta1, sigma, n), p.eta1)) for n in range(p.k)]
    e = [_ntt(_sample_cbd(_prf(p.eta1, sigma, p.k + n), p.eta1)) for n in range(p.k)]
    t = [_add(_dot(a[i], s), e[i]) for i in range(p.k)]
    ek = b"".join(_byte_encode(x, 12) for x in t) + rho
    return ek, b"".join(_byte_encode(x, 12) for x in s)


def _pke_encrypt(p: MlKemParams, ek: bytes, m: bytes, r: bytes) -> bytes:
    t = [_byte_decode(ek[384 * i : 384 * (i + 1)], 12) for i in range(p.k)]
    a = _matrix(ek[384 * p.k :], p.k)
    y = [_ntt(_sample_cbd(_prf(p.eta1, r, n), p.eta1)) for n in range(p.k)]
    e1 = [_sample_cbd(_prf(p.eta2, r, p.k + n), p.eta2) for n in range(p.k)]
    e2 = _sample_cbd(_prf(p.eta2, r, 2 * p.k), p.eta2)
    u = [_add(_ntt_inv(_dot([a[j][i] for j in range(p.k)], y)), e1[i]) for i in range(p.k)]
    mu = _decompress(_byte_decode(m, 1), 1)
    v = _add(_add(_ntt_inv(_dot(t, y)), e2), mu)
    c1 = b"".join(_byte_encode(_compress(x, p.du), p.du) for x in u)
    return c1 + _byte_encode(_compress(v, p.dv), p.dv)


def _pke_decrypt(p: MlKemParams, dk_pke: bytes, c: bytes) -> bytes:
    step = 32 * p.du
    u = [_ntt(_decompress(_byte_decode(c[step * i : step * (i + 1)], p.du), p.du)) for i in range(p.k)]
    v = _decompress(_byte_decode(c[step * p.k :], p.dv), p.dv)
    s = [_byte_decode(dk_pke[384 * i : 384 * (i + 1)], 12) for i in range(p.k)]
    w = [(a - b) % Q for a, b in zip(v, _ntt_inv(_dot(s, u)), strict=True)]
    return _byte_encode(_compress(w, 1), 1)


# -- ML-KEM (Algorithms 16-18, §7.2-7.3 checks) --------------------------------------------------


def encaps_key_is_valid(p: MlKemParams, ek: bytes) -> bool:
    """FIPS 203 §7.2: right length, and every 12-bit coefficient already reduced mod q."""
    if len(ek) != p.ek_size:
        return False
    t = ek[: 384 * p.k]
    return all(_byte_encode(_byte_decode(t[384 * i : 384 * (i + 1)], 12), 12) == t[384 * i : 384 * (i + 1)]
               for i in range(p.k))


def keygen(p: MlKemParams, d: bytes, z: bytes) -> tuple[bytes, bytes]:
    """ML-KEM.KeyGen_internal(d, z): ``(encapsulation key, decapsulation key)``."""
    ek, dk_pke = _pke_keygen(p, d)
    return ek, dk_pke + ek + _h(ek) + z


def encaps(p: MlKemParams, ek: bytes, m: bytes) -> tuple[bytes, bytes]:
    """ML-KEM.Encaps_internal(ek, m): ``(shared secret K, ciphertext)``; ``ek`` must be valid."""
    if not encaps_key_is_valid(p, ek) or len(m) != 32:
        raise ValueError(f"{p.name}: encapsulation key or message fails the FIPS 203 §7.2 check")
    key, r = _g(m + _h(ek))
    return key, _pke_encrypt(p, ek, m, r)


def decaps(p: MlKemParams, dk: bytes, c: bytes) -> bytes:
    """ML-KEM.Decaps_internal(dk, c), with implicit rejection (a forged c gives J(z || c))."""
    if len(c) != p.ct_size or len(dk) != p.dk_size:
        raise ValueError(f"{p.name}: ciphertext or decapsulation key has the wrong length")
    k = p.k
    dk_pke, ek, h, z = dk[: 384 * k], dk[384 * k : 768 * k + 32], dk[768 * k + 32 : 768 * k + 64], dk[768 * k + 64 :]
    if _h(ek) != h:  # §7.3 hash check
        raise ValueError(f"{p.name}: decapsulation key fails the FIPS 203 §7.3 hash check")
    m = _pke_decrypt(p, dk_pke, c)
    key, r = _g(m + h)
    rejected = _j(z + c)
    return key if _pke_encrypt(p, ek, m, r) == c else rejected
