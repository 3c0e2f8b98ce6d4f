"""Catalogue of the IKEv2/ESP transforms we can compute: key, IV, salt, ICV and block sizes.

Sizes come from the defining RFCs: RFC 2451 (DES, 3DES, Blowfish, CAST), RFC 3602 (AES-CBC),
RFC 3686/5930 (AES-CTR), RFC 4106/5282 (AES-GCM), RFC 4309/5282 (AES-CCM), RFC 4543 (GMAC),
RFC 4312/5529 (Camellia), RFC 7634 (ChaCha20-Poly1305), RFC 2403/2404/3566/4494/4868 (integrity),
RFC 7296 §3.3.2 and RFC 4434/4615/4868 (PRFs).

Key material for counter-mode and AEAD ciphers carries the salt after the cipher key (RFC 4106
§8.1, RFC 4309 §7.1, RFC 5930 §3, RFC 7634 §2/§4); :func:`split_key` separates the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..keys.algorithms import AUTH_ANY
from ..wire.registry import EncrId, IntegId, PrfId, name_of
from .errors import InvalidKey, UnsupportedAlgorithm

#: Private-use integrity id (strongSwan's 1026) for HMAC-SHA-256 truncated to 96 bits, the Linux
#: ``auth-trunc hmac(sha256) … 96`` of older kernels and Wireshark's
#: "HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]". Not an IANA value.
AUTH_HMAC_SHA2_256_96 = int(IntegId.AUTH_HMAC_SHA2_256_96)


@dataclass(frozen=True)
class EncrSpec:
    """An encryption transform. ``key_bits`` lists the allowed cipher key lengths (salt excluded);
    ``block_size`` is the cipher block (1 for stream/counter modes), ``iv_size`` the explicit IV
    carried in each packet, ``salt_size`` the implicit nonce part taken from the key material."""

    id: int
    name: str
    key_bits: tuple[int, ...]
    block_size: int
    iv_size: int
    salt_size: int = 0
    icv_size: int = 0
    aead: bool = False
    counter: bool = False
    default_key_bits: int = 0

    @property
    def pad_align(self) -> int:
        """Alignment the ciphertext must reach: the block size, and at least 4 for ESP (RFC 4303 §2.4)."""
        return max(self.block_size, 4)

    def keymat_size(self, key_bits: int | None = None) -> int:
        """Octets of key material this transform consumes (cipher key + salt), for prf+ splits."""
        bits = key_bits if key_bits else (self.default_key_bits or self.key_bits[0])
        return bits // 8 + self.salt_size


@dataclass(frozen=True)
class IntegSpec:
    """An integrity transform: ``key_size`` octets of key, ``icv_size`` octets of ICV.
    ``kind`` is ``hmac``, ``xcbc`` or ``cmac``; ``hash`` the hash name for HMAC."""

    id: int
    name: str
    key_size: int
    icv_size: int
    kind: str = "hmac"
    hash: str = ""


@dataclass(frozen=True)
class PrfSpec:
    """A PRF. ``key_size`` is the preferred key length (RFC 7296 §2.13: SK_d/SK_pi/SK_pr length),
    ``output_size`` the block produced; ``fixed_key`` marks the AES-based PRFs whose SKEYSEED key
    is built from the first halves of Ni and Nr (RFC 7296 §2.14)."""

    id: int
    name: str
    key_size: int
    output_size: int
    kind: str = "hmac"
    hash: str = ""
    fixed_key: bool = False


_AES = (128, 192, 256)


def _e(
    encr: EncrId,
    key_bits: tuple[int, ...],
    block: int,
    iv: int,
    *,
    salt: int = 0,
    icv: int = 0,
    aead: bool = False,
    counter: bool = False,
) -> EncrSpec:
    # 128 bits is the default where allowed (AES; Blowfish and CAST per RFC 2451 §2.2).
    default = 128 if 128 in key_bits else key_bits[0]
    return EncrSpec(int(encr), encr.name, key_bits, block, iv, salt, icv, aead, counter, default)


ENCR_SPECS: dict[int, EncrSpec] = {
    s.id: s
    for s in (
        _e(EncrId.ENCR_NULL, (0,), 1, 0),
        _e(EncrId.ENCR_DES, (64,), 8, 8),
        _e(EncrId.ENCR_3DES, (192,), 8, 8),
        _e(EncrId.ENCR_CAST, tuple(range(40, 129, 8)), 8, 8),
        _e(EncrId.ENCR_BLOWFISH, tuple(range(40, 449, 8)), 8, 8),
        _e(EncrId.ENCR_AES_CBC, _AES, 16, 16),
        _e(EncrId.ENCR_CAMELLIA_CBC, _AES, 16, 16),
        _e(EncrId.ENCR_AES_CTR, _AES, 1, 8, salt=4, counter=True),
        _e(EncrId.ENCR_AES_CCM_8, _AES, 1, 8, salt=3, icv=8, aead=True),
        _e(EncrId.ENCR_AES_CCM_12, _AES, 1, 8, salt=3, icv=12, aead=True),
        _e(EncrId.ENCR_AES_CCM_16, _AES, 1, 8, salt=3, icv=16, aead=True),
        _e(EncrId.ENCR_AES_GCM_8, _AES, 1, 8, salt=4, icv=8, aead=True),
        _e(EncrId.ENCR_AES_GCM_12, _AES, 1, 8, salt=4, icv=12, aead=True),
        _e(EncrId.ENCR_AES_GCM_16, _AES, 1, 8, salt=4, icv=16, aead=True),
        _e(EncrId.ENCR_NULL_AUTH_AES_GMAC, _AES, 1, 8, salt=4, icv=16, aead=True),
        _e(EncrId.ENCR_CHACHA20_POLY1305, (256,), 1, 8, salt=4, icv=16, aead=True),
    )
}

_HMAC = (
    (IntegId.AUTH_HMAC_MD5_96, "md5", 16, 12),
    (IntegId.AUTH_HMAC_SHA1_96, "sha1", 20, 12),
    (IntegId.AUTH_HMAC_MD5_128, "md5", 16, 16),
    (IntegId.AUTH_HMAC_SHA1_160, "sha1", 20, 20),
    (IntegId.AUTH_HMAC_SHA2_256_128, "sha256", 32, 16),
    (IntegId.AUTH_HMAC_SHA2_384_192, "sha384", 48, 24),
    (IntegId.AUTH_HMAC_SHA2_512_256, "sha512", 64, 32),
    (IntegId.AUTH_HMAC_SHA2_256_96, "sha256", 32, 12),
)

INTEG_SPECS: dict[int, IntegSpec] = {
    int(i): IntegSpec(int(i), i.name, key, icv, "hmac", h) for i, h, key, icv in _HMAC
}
INTEG_SPECS[IntegId.AUTH_AES_XCBC_96] = IntegSpec(
    int(IntegId.AUTH_AES_XCBC_96), "AUTH_AES_XCBC_96", 16, 12, "xcbc"
)
INTEG_SPECS[IntegId.AUTH_AES_CMAC_96] = IntegSpec(
    int(IntegId.AUTH_AES_CMAC_96), "AUTH_AES_CMAC_96", 16, 12, "cmac"
)
# "An ICV of n bits that nobody can check" (Wireshark's "ANY n-bits [No Checking]", tcpdump's
# -hmac96): no key, so the ESP layer strips the ICV without verifying it.
INTEG_SPECS.update(
    {v: IntegSpec(v, f"AUTH_ANY_{bits}", 0, bits // 8, "unchecked") for bits, v in AUTH_ANY.items()}
)

PRF_SPECS: dict[int, PrfSpec] = {
    s.id: s
    for s in (
        PrfSpec(int(PrfId.PRF_HMAC_MD5), "PRF_HMAC_MD5", 16, 16, "hmac", "md5"),
        PrfSpec(int(PrfId.PRF_HMAC_SHA1), "PRF_HMAC_SHA1", 20, 20, "hmac", "sha1"),
        PrfSpec(int(PrfId.PRF_HMAC_SHA2_256), "PRF_HMAC_SHA2_256", 32, 32, "hmac", "sha256"),
        PrfSpec(int(PrfId.PRF_HMAC_SHA2_384), "PRF_HMAC_SHA2_384", 48, 48, "hmac", "sha384"),
        PrfSpec(int(PrfId.PRF_HMAC_SHA2_512), "PRF_HMAC_SHA2_512", 64, 64, "hmac", "sha512"),
        PrfSpec(int(PrfId.PRF_AES128_XCBC), "PRF_AES128_XCBC", 16, 16, "xcbc", fixed_key=True),
        PrfSpec(int(PrfId.PRF_AES128_CMAC), "PRF_AES128_CMAC", 16, 16, "cmac", fixed_key=True),
    )
}


def encr_spec(encr_id: int) -> EncrSpec:
    """The spec of an IKEv2/ESP encryption transform id, or :class:`UnsupportedAlgorithm`."""
    spec = ENCR_SPECS.get(encr_id)
    if spec is None:
        raise UnsupportedAlgorithm(name_of(EncrId, encr_id))
    return spec


def integ_spec(integ_id: int) -> IntegSpec:
    """The spec of an integrity transform id (``AUTH_*``), or :class:`UnsupportedAlgorithm`."""
    spec = INTEG_SPECS.get(integ_id)
    if spec is None:
        raise UnsupportedAlgorithm(name_of(IntegId, integ_id))
    return spec


def prf_spec(prf_id: int) -> PrfSpec:
    """The spec of a PRF transform id, or :class:`UnsupportedAlgorithm`."""
    spec = PRF_SPECS.get(prf_id)
    if spec is None:
        raise UnsupportedAlgorithm(name_of(PrfId, prf_id))
    return spec


def split_key(encr_id: int, key: bytes, key_bits: int | None = None) -> tuple[bytes, bytes]:
    """Split key material into ``(cipher_key, salt)`` and check the cipher key length.

    ``key_bits`` (the negotiated Key Length attribute) is optional: without it the length is
    implied by ``len(key) - salt``. Raises :class:`InvalidKey` when the key cannot be right.
    """
    spec = encr_spec(encr_id)
    salt_len = spec.salt_size
    if len(key) < salt_len:
        raise InvalidKey(
            f"{spec.name}: key material of {len(key)} bytes is shorter than its {salt_len}-byte salt"
        )
    cipher_key, salt = (key[:-salt_len], key[-salt_len:]) if salt_len else (key, b"")
    bits = len(cipher_key) * 8
    if key_bits is not None and key_bits != bits and spec.id != EncrId.ENCR_NULL:
        raise InvalidKey(
            f"{spec.name}: {len(key)} bytes of key material give a {bits}-bit key, "
            f"the SA says {key_bits} bits" + (f" (+{salt_len} bytes salt)" if salt_len else "")
        )
    if bits not in spec.key_bits:
        allowed = "/".join(str(b // 8) for b in spec.key_bits[:6]) + ("/…" if len(spec.key_bits) > 6 else "")
        extra = f" plus {salt_len} bytes of salt" if salt_len else ""
        raise InvalidKey(f"{spec.name}: key of {len(cipher_key)} bytes, expected {allowed} bytes{extra}")
    return cipher_key, salt
