"""IKEv2 key exchange: Transform Type 4 methods as KE payload data and shared secrets.

One object per exchange, made by :func:`new_key_exchange` with an injected
:class:`~ipsecdiag.crypto.rng.RandomSource`. The initiator sends :meth:`KeyExchange.public_value`
and later calls :meth:`KeyExchange.shared_secret` on the responder's KE data; the responder calls
:meth:`KeyExchange.respond` once with the initiator's data and gets its own KE data and the secret.
For Diffie-Hellman both sides' data are public values; for a KEM the initiator's is the
encapsulation key and the responder's the ciphertext (draft-ietf-ipsecme-ikev2-mlkem §2).

Encodings on the wire and of the secret:

* MODP (RFC 2409, RFC 3526, RFC 5114): y = g^x mod p and g^xy, both big-endian and left-padded
  with zeros to the length of p (RFC 7296 §3.4 and §2.14).
* ECP (RFC 5903 §7, RFC 5114, brainpool RFC 6954 §3): the public value is x || y, each coordinate
  padded to the field size, without the 0x04 point-format octet; the secret is x only.
* Curve25519 / Curve448 (RFC 8031 §2): the raw 32 / 56 octets of RFC 7748; an all-zero secret is
  rejected.
* ML-KEM-512/768/1024 (FIPS 203; Transform Type 4 ids 35/36/37, IANA registry entries for
  draft-ietf-ipsecme-ikev2-mlkem, which uses them alone or as RFC 9370 additional key exchanges):
  encapsulation key, ciphertext and the 32-octet shared secret as FIPS 203 defines them.

Every peer value is validated before use and a failure is an :class:`InvalidKeyExchange` naming
the group and the reason (RFC 6989: public value range, subgroup membership, point on curve).

Randomness: DH exponents, EC scalars, X25519/X448 private keys, the 64-octet ML-KEM key
generation seed and the responder's 32-octet ML-KEM message all come from the injected source,
so a seeded source reproduces every exchange exactly, in both roles. (``cryptography``'s
``encapsulate()`` draws its own randomness from OpenSSL; that is why encapsulation is done by
:mod:`ipsecdiag.crypto.mlkem`.) Python's ``pow`` and the pure-Python ML-KEM are not
constant-time; these are ephemeral keys of a diagnostic prober, which is why that is accepted.
(MODP is plain ``pow`` on purpose: ``cryptography`` deprecates finite-field DH and will drop it.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..wire.registry import KeGroup, name_of
from . import mlkem
from .errors import CryptoError, UnsupportedAlgorithm
from .mlkem import MlKemParams
from .modp_groups import MODP_GROUPS, ModpGroup
from .rng import RandomSource, random_int_below
from .weak_groups import group_weakness  # re-exported: the one table is crypto/weak_groups.py

try:  # cryptography >= 46
    from cryptography.hazmat.primitives.asymmetric import mlkem as _mlkem
except ImportError:  # pragma: no cover - depends on the installed cryptography
    _mlkem = None  # type: ignore[assignment]

__all__ = [
    "InvalidKeyExchange",
    "KeyExchange",
    "group_weakness",
    "new_key_exchange",
    "public_value_size",
    "supported_groups",
]


class InvalidKeyExchange(CryptoError):
    """The peer's KE data fails validation; ``group`` and ``reason`` say which and why."""

    def __init__(self, group: int, reason: str) -> None:
        self.group = int(group)
        self.reason = reason
        super().__init__(f"invalid {name_of(KeGroup, group)} key exchange data: {reason}")


class KeyExchange(ABC):
    """One key exchange of one group, for either role."""

    group: int
    is_kem: bool = False

    @abstractmethod
    def public_value(self) -> bytes:
        """Initiator: the data of our KE payload."""

    @abstractmethod
    def respond(self, peer_value: bytes) -> tuple[bytes, bytes]:
        """Responder: ``(our KE payload data, shared secret)`` for the initiator's data."""

    @abstractmethod
    def shared_secret(self, peer_value: bytes) -> bytes:
        """Initiator: the shared secret from the responder's KE payload data."""

    def _check_length(self, peer_value: bytes, expected: int, what: str = "public value") -> None:
        if len(peer_value) != expected:
            raise InvalidKeyExchange(self.group, f"{what} is {len(peer_value)} octets, expected {expected}")

    def __repr__(self) -> str:  # never the private key
        return f"{type(self).__name__}({name_of(KeGroup, self.group)})"


class _DiffieHellman(KeyExchange):
    """DH-style: both sides send a public value and compute the same secret."""

    def respond(self, peer_value: bytes) -> tuple[bytes, bytes]:
        secret = self.shared_secret(peer_value)
        return self.public_value(), secret


# -- MODP ----------------------------------------------------------------------------------------


class _ModpKeyExchange(_DiffieHellman):
    def __init__(self, params: ModpGroup, rng: RandomSource) -> None:
        self.group = int(params.group)
        self._params = params
        if params.q is not None:
            # RFC 5114 groups: exponent uniform in [1, q-1] (NIST SP 800-56A §5.6.1.1).
            self._x = random_int_below(rng, params.q - 1) + 1
        else:
            # RFC 3526 §8: an exponent of twice the group's symmetric strength; [2, 2^bits).
            assert params.exponent_bits is not None
            self._x = random_int_below(rng, (1 << params.exponent_bits) - 2) + 2
        self._y = pow(params.g, self._x, params.p)

    def public_value(self) -> bytes:
        return self._y.to_bytes(self._params.size, "big")

    def shared_secret(self, peer_value: bytes) -> bytes:
        p, q = self._params.p, self._params.q
        # RFC 7296 §3.4: the value is zero-padded to the prime's length, so any other length is
        # an encoding error, not a short number.
        self._check_length(peer_value, self._params.size)
        y = int.from_bytes(peer_value, "big")
        if not 1 < y < p - 1:
            # RFC 6989 §2.1: 0, 1 and p-1 force the secret into {0, 1, p-1}; y >= p is no element.
            shown = {0: "0", 1: "1", p - 1: "p-1"}.get(y, ">= p")
            raise InvalidKeyExchange(self.group, f"public value is {shown}, not in 1 < y < p-1")
        if q is not None and pow(y, q, p) != 1:
            # RFC 6989 §2.2: with a small subgroup order the peer could confine us to a small
            # subgroup of Z_p* and learn our exponent modulo its order.
            raise InvalidKeyExchange(self.group, "public value is not in the order-q subgroup (y^q != 1 mod p)")
        return pow(y, self._x, p).to_bytes(self._params.size, "big")


# -- ECP (NIST and brainpool curves) -------------------------------------------------------------


@dataclass(frozen=True)
class _Curve:
    curve: type[ec.EllipticCurve]
    order: int  # n, the prime order of the base point
    field_size: int  # octets of one coordinate


# Orders as in SEC 2 / FIPS 186 (NIST curves) and RFC 5639 §3 (brainpool); the tests check each
# one against the library: (n-1)*G = -G.
_CURVES: dict[int, _Curve] = {
    KeGroup.ECP_256: _Curve(ec.SECP256R1, 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551, 32),
    KeGroup.ECP_384: _Curve(
        ec.SECP384R1,
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
        48,
    ),
    KeGroup.ECP_521: _Curve(
        ec.SECP521R1,
        int(
            "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA"
            "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
        66,
    ),
    KeGroup.ECP_192: _Curve(ec.SECP192R1, 0xFFFFFFFFFFFFFFFFFFFFFFFF99DEF836146BC9B1B4D22831, 24),
    KeGroup.ECP_224: _Curve(ec.SECP224R1, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D, 28),
    KeGroup.ECP_256_BP: _Curve(
        ec.BrainpoolP256R1, 0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7, 32
    ),
    KeGroup.ECP_384_BP: _Curve(
        ec.BrainpoolP384R1,
        int(
            "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7"
            "CF3AB6AF6B7FC3103B883202E9046565",
            16,
        ),
        48,
    ),
    KeGroup.ECP_512_BP: _Curve(
        ec.BrainpoolP512R1,
        int(
            "AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330870"
            "553E5C414CA92619418661197FAC10471DB1D381085DDADDB58796829CA90069",
            16,
        ),
        64,
    ),
}


class _EcpKeyExchange(_DiffieHellman):
    def __init__(self, group: int, rng: RandomSource) -> None:
        self.group = int(group)
        self._curve = _CURVES[group]
        # Scalar uniform in [1, n-1] by rejection sampling (no modulo bias).
        d = random_int_below(rng, self._curve.order - 1) + 1
        self._key = ec.derive_private_key(d, self._curve.curve())

    def public_value(self) -> bytes:
        point = self._key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return point[1:]  # RFC 5903 §7: x || y, no 0x04 format octet

    def shared_secret(self, peer_value: bytes) -> bytes:
        self._check_length(peer_value, 2 * self._curve.field_size)
        try:
            # OpenSSL rejects coordinates >= p and points that do not satisfy the curve
            # equation; x || y cannot encode the point at infinity.
            peer = ec.EllipticCurvePublicKey.from_encoded_point(self._curve.curve(), b"\x04" + peer_value)
        except ValueError:
            raise InvalidKeyExchange(self.group, "the point (x, y) is not on the curve (RFC 6989 §2.3)") from None
        return self._key.exchange(ec.ECDH(), peer)  # the x coordinate, field-size octets


# -- Curve25519 / Curve448 -----------------------------------------------------------------------

_MONTGOMERY: dict[
    int,
    tuple[
        type[x25519.X25519PrivateKey] | type[x448.X448PrivateKey],
        type[x25519.X25519PublicKey] | type[x448.X448PublicKey],
        int,
    ],
] = {
    KeGroup.CURVE25519: (x25519.X25519PrivateKey, x25519.X25519PublicKey, 32),
    KeGroup.CURVE448: (x448.X448PrivateKey, x448.X448PublicKey, 56),
}


class _MontgomeryKeyExchange(_DiffieHellman):
    def __init__(self, group: int, rng: RandomSource) -> None:
        self.group = int(group)
        private_cls, self._public_cls, self._size = _MONTGOMERY[group]
        # RFC 7748 §5: any 32/56 random octets; the clamping happens inside the function.
        self._key = private_cls.from_private_bytes(rng.bytes(self._size))

    def public_value(self) -> bytes:
        return bytes(self._key.public_key().public_bytes_raw())

    def shared_secret(self, peer_value: bytes) -> bytes:
        self._check_length(peer_value, self._size)
        small_order = "shared secret is all zero: the peer sent a small-order point (RFC 8031 §2.3)"
        try:
            secret = bytes(self._key.exchange(self._public_cls.from_public_bytes(peer_value)))
        except ValueError:  # OpenSSL refuses the all-zero result itself
            raise InvalidKeyExchange(self.group, small_order) from None
        if not any(secret):
            raise InvalidKeyExchange(self.group, small_order)
        return secret


# -- ML-KEM --------------------------------------------------------------------------------------

_MLKEM_PARAMS: dict[int, MlKemParams] = {
    KeGroup.ML_KEM_512: mlkem.PARAMS[512],
    KeGroup.ML_KEM_768: mlkem.PARAMS[768],
    KeGroup.ML_KEM_1024: mlkem.PARAMS[1024],
}


@cache
def _library_mlkem(group: int) -> Any:
    """``cryptography``'s private-key class for ``group``, or None (no ML-KEM-512 there)."""
    name = {KeGroup.ML_KEM_768: "MLKEM768PrivateKey", KeGroup.ML_KEM_1024: "MLKEM1024PrivateKey"}.get(
        KeGroup(group)
    )
    cls = getattr(_mlkem, name, None) if _mlkem is not None and name else None
    if cls is None:
        return None
    try:  # the Python API can exist over an OpenSSL without ML-KEM
        cls.from_seed_bytes(bytes(64))
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return None
    return cls


class _MlKemKeyExchange(KeyExchange):
    """ML-KEM as a key exchange: initiator = key pair owner, responder = encapsulator.

    The key pair comes from a 64-octet seed (d || z, FIPS 203 §6.1) drawn from the injected
    source the first time :meth:`public_value` is called; the responder's 32-octet message m is
    drawn from it too, so both roles replay exactly from a seeded source. Key generation and
    decapsulation use ``cryptography`` where it has the parameter set; encapsulation always uses
    :func:`ipsecdiag.crypto.mlkem.encaps`, because the library's ``encapsulate()`` takes its
    randomness from OpenSSL and would break replays (tests hold the two against each other).
    """

    is_kem = True

    def __init__(self, group: int, rng: RandomSource) -> None:
        self.group = int(group)
        self._params = _MLKEM_PARAMS[group]
        self._library = _library_mlkem(group)
        self._rng = rng
        self._ek: bytes | None = None
        self._dk: Any = None  # library private key or FIPS 203 decapsulation key octets

    def public_value(self) -> bytes:
        if self._ek is None:
            seed = self._rng.bytes(64)
            if self._library is not None:
                self._dk = self._library.from_seed_bytes(seed)
                self._ek = bytes(self._dk.public_key().public_bytes_raw())
            else:
                self._ek, self._dk = mlkem.keygen(self._params, seed[:32], seed[32:])
        return self._ek

    def respond(self, peer_value: bytes) -> tuple[bytes, bytes]:
        self._check_length(peer_value, self._params.ek_size, "encapsulation key")
        if not mlkem.encaps_key_is_valid(self._params, peer_value):
            raise InvalidKeyExchange(self.group, "encapsulation key fails the FIPS 203 §7.2 modulus check")
        secret, ciphertext = mlkem.encaps(self._params, peer_value, self._rng.bytes(32))
        return ciphertext, secret

    def shared_secret(self, peer_value: bytes) -> bytes:
        if self._ek is None:
            raise CryptoError(f"{name_of(KeGroup, self.group)}: shared_secret() before public_value()")
        self._check_length(peer_value, self._params.ct_size, "ciphertext")
        # Decapsulation never fails on a well-sized ciphertext: a forged one yields the implicit
        # rejection secret (FIPS 203 §6.3), which then fails the AUTH check, as designed.
        if self._library is not None:
            return bytes(self._dk.decapsulate(peer_value))
        return mlkem.decaps(self._params, self._dk, peer_value)


# -- the registry --------------------------------------------------------------------------------


def supported_groups() -> tuple[int, ...]:
    """Transform Type 4 ids we can compute here, ascending."""
    groups = set(MODP_GROUPS) | set(_CURVES) | set(_MONTGOMERY) | set(_MLKEM_PARAMS)
    return tuple(sorted(int(g) for g in groups))


def new_key_exchange(group: int, rng: RandomSource) -> KeyExchange:
    """A fresh key exchange of ``group``; raises :class:`UnsupportedAlgorithm` for others."""
    if group in MODP_GROUPS:
        return _ModpKeyExchange(MODP_GROUPS[group], rng)
    if group in _CURVES:
        return _EcpKeyExchange(group, rng)
    if group in _MONTGOMERY:
        return _MontgomeryKeyExchange(group, rng)
    if group in _MLKEM_PARAMS:
        return _MlKemKeyExchange(group, rng)
    raise UnsupportedAlgorithm(name_of(KeGroup, group), "no key exchange implementation here")


def public_value_size(group: int, *, responder: bool) -> int | None:
    """Octets of the KE payload data for ``group`` (``responder``: the responder's), or None.

    A wire fact, known also for a group we cannot compute (brainpool-224)."""
    if group in MODP_GROUPS:
        return MODP_GROUPS[group].size
    if group in _CURVES:
        return 2 * _CURVES[group].field_size
    if group == KeGroup.ECP_224_BP:
        return 56
    if group in _MONTGOMERY:
        return _MONTGOMERY[group][2]
    if group in _MLKEM_PARAMS:
        params = _MLKEM_PARAMS[group]
        return params.ct_size if responder else params.ek_size
    return None
