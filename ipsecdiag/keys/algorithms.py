"""Algorithm ids and key-length facts shared by the key readers and writers.

Records carry IANA transform ids (:mod:`ipsecdiag.wire.registry`). A few algorithms that key
sources name have no IANA id; they get private-use ids here, above 0x10000 so they never collide
with IANA or strongSwan private numbers (strongSwan's AUTH_HMAC_SHA2_256_96 = 1026 lives in the
registry already):

* ``AUTH_HMAC_RIPEMD160_96``: Wireshark's "MAC-RIPEMD-160-96 [RFC2857]", Linux ``hmac(rmd160)``;
* ``AUTH_ANY_<bits>``: an ICV of that many bits that nobody can check (Wireshark's
  "ANY 96-bits of Authentication [No Checking]", tcpdump's ``-hmac96``): the decryptor strips it;
* ``ENCR_TWOFISH_CBC``: Wireshark's "TWOFISH-CBC", Linux ``cbc(twofish)``.
"""

from __future__ import annotations

from ipsecdiag.wire.registry import EncrId, IntegId, PrfId, V1EncrAlg, V1HashAlg, name_of

PRIVATE_BASE = 0x10000
AUTH_HMAC_SHA2_256_96 = int(IntegId.AUTH_HMAC_SHA2_256_96)
AUTH_HMAC_RIPEMD160_96 = PRIVATE_BASE + 8  # 8 = IKEv1 HMAC_RIPEMD (RFC 2407 §4.5)
ENCR_TWOFISH_CBC = PRIVATE_BASE + 253  # 253 = KAME's private ESP transform id for Twofish

#: ICV length in bits -> private "unchecked ICV" integrity id.
AUTH_ANY: dict[int, int] = {bits: PRIVATE_BASE + 0x100 + bits // 8 for bits in (64, 96, 128, 160, 192, 256)}

PRIVATE_ENCR: dict[str, int] = {"ENCR_TWOFISH_CBC": ENCR_TWOFISH_CBC}
PRIVATE_INTEG: dict[str, int] = {
    "AUTH_HMAC_RIPEMD160_96": AUTH_HMAC_RIPEMD160_96,
    **{f"AUTH_ANY_{bits}": v for bits, v in AUTH_ANY.items()},
}
_PRIVATE_NAMES = {v: k for k, v in (PRIVATE_ENCR | PRIVATE_INTEG).items()}

# Salt (implicit nonce) octets at the end of the key material: RFC 3686 §5.1 / RFC 5930 (CTR),
# RFC 4106 §8.1 and RFC 4543 §3.2 (GCM, GMAC), RFC 4309 §7.1 (CCM), RFC 7634 §2 (ChaCha20),
# RFC 5529 (Camellia CTR/CCM), RFC 8750 (IIV variants keep the salt).
_SALT: dict[int, int] = {
    EncrId.ENCR_AES_CTR: 4,
    EncrId.ENCR_CAMELLIA_CTR: 4,
    EncrId.ENCR_AES_GCM_8: 4,
    EncrId.ENCR_AES_GCM_12: 4,
    EncrId.ENCR_AES_GCM_16: 4,
    EncrId.ENCR_AES_GCM_16_IIV: 4,
    EncrId.ENCR_NULL_AUTH_AES_GMAC: 4,
    EncrId.ENCR_CHACHA20_POLY1305: 4,
    EncrId.ENCR_CHACHA20_POLY1305_IIV: 4,
    EncrId.ENCR_AES_CCM_8: 3,
    EncrId.ENCR_AES_CCM_12: 3,
    EncrId.ENCR_AES_CCM_16: 3,
    EncrId.ENCR_AES_CCM_8_IIV: 3,
    EncrId.ENCR_CAMELLIA_CCM_8: 3,
    EncrId.ENCR_CAMELLIA_CCM_12: 3,
    EncrId.ENCR_CAMELLIA_CCM_16: 3,
}

# Ciphers whose key length is fixed by the algorithm (RFC 2405, RFC 2451, RFC 7634).
_FIXED_BITS: dict[int, int] = {
    EncrId.ENCR_DES: 64,
    EncrId.ENCR_3DES: 192,
    EncrId.ENCR_CHACHA20_POLY1305: 256,
    EncrId.ENCR_CHACHA20_POLY1305_IIV: 256,
}

# Integrity key lengths (RFC 2403/2404/3566/4494/4595/4868): the HMAC key is the hash output.
INTEG_KEY_BYTES: dict[int, int] = {
    IntegId.NONE: 0,
    IntegId.AUTH_HMAC_MD5_96: 16,
    IntegId.AUTH_HMAC_MD5_128: 16,
    IntegId.AUTH_HMAC_SHA1_96: 20,
    IntegId.AUTH_HMAC_SHA1_160: 20,
    IntegId.AUTH_AES_XCBC_96: 16,
    IntegId.AUTH_AES_CMAC_96: 16,
    IntegId.AUTH_HMAC_SHA2_256_128: 32,
    AUTH_HMAC_SHA2_256_96: 32,
    IntegId.AUTH_HMAC_SHA2_384_192: 48,
    IntegId.AUTH_HMAC_SHA2_512_256: 64,
    AUTH_HMAC_RIPEMD160_96: 20,
}

AEAD_ENCR = frozenset(
    {
        EncrId.ENCR_AES_GCM_8,
        EncrId.ENCR_AES_GCM_12,
        EncrId.ENCR_AES_GCM_16,
        EncrId.ENCR_AES_GCM_16_IIV,
        EncrId.ENCR_AES_CCM_8,
        EncrId.ENCR_AES_CCM_12,
        EncrId.ENCR_AES_CCM_16,
        EncrId.ENCR_AES_CCM_8_IIV,
        EncrId.ENCR_CAMELLIA_CCM_8,
        EncrId.ENCR_CAMELLIA_CCM_12,
        EncrId.ENCR_CAMELLIA_CCM_16,
        EncrId.ENCR_CHACHA20_POLY1305,
        EncrId.ENCR_CHACHA20_POLY1305_IIV,
        EncrId.ENCR_NULL_AUTH_AES_GMAC,
    }
)


def salt_len(encr: int) -> int:
    return _SALT.get(encr, 0)


def key_bits_for(encr: int, key_len: int) -> int | None:
    """Cipher key bits implied by ``key_len`` octets of key material (salt removed)."""
    if encr == EncrId.ENCR_NULL or key_len == 0:
        return None
    if encr in _FIXED_BITS:
        return _FIXED_BITS[encr]
    return max(key_len - salt_len(encr), 0) * 8


def key_len_for(encr: int, key_bits: int | None) -> int | None:
    """Octets of key material (salt included) for ``key_bits``; None when unknown."""
    if encr == EncrId.ENCR_NULL:
        return 0
    bits = _FIXED_BITS.get(encr, key_bits)
    return None if bits is None else bits // 8 + salt_len(encr)


def encr_name(encr: int) -> str:
    return _PRIVATE_NAMES.get(encr) or name_of(EncrId, encr)


def integ_name(integ: int) -> str:
    return _PRIVATE_NAMES.get(integ) or name_of(IntegId, integ)


def prf_name(prf: int) -> str:
    return name_of(PrfId, prf)


def unchecked_icv_bits(integ: int) -> int | None:
    """ICV bits of a private ``AUTH_ANY_<bits>`` id, else None."""
    for bits, v in AUTH_ANY.items():
        if v == integ:
            return bits
    return None


def _lookup(enum_cls: type, private: dict[str, int], prefix: str, text: str) -> int | None:
    t = text.strip().upper().replace("-", "_")
    for cand in (t, prefix + t):
        if cand in private:
            return private[cand]
        if cand in enum_cls.__members__:
            return int(enum_cls.__members__[cand])
    return None


def parse_encr_name(text: str) -> int | None:
    """IANA/private encryption name (``ENCR_AES_GCM_16`` or ``AES_GCM_16``) -> id."""
    return _lookup(EncrId, PRIVATE_ENCR, "ENCR_", text)


def parse_integ_name(text: str) -> int | None:
    """IANA/private integrity name (``AUTH_HMAC_SHA2_256_128``, ``HMAC_SHA2_256_128``, ``NONE``)."""
    return _lookup(IntegId, PRIVATE_INTEG, "AUTH_", text)


def parse_prf_name(text: str) -> int | None:
    return _lookup(PrfId, {}, "PRF_", text)


def parse_v1_encr_name(text: str) -> int | None:
    t = text.strip().upper().replace("-", "_")
    aliases = {"3DES_CBC": "TRIPLE_DES_CBC", "3DES": "TRIPLE_DES_CBC", "AES": "AES_CBC", "DES": "DES_CBC"}
    t = aliases.get(t, t)
    return int(V1EncrAlg[t]) if t in V1EncrAlg.__members__ else None


def parse_v1_hash_name(text: str) -> int | None:
    t = text.strip().upper().replace("-", "_")
    aliases = {"SHA1": "SHA", "SHA256": "SHA2_256", "SHA384": "SHA2_384", "SHA512": "SHA2_512"}
    t = aliases.get(t, t)
    return int(V1HashAlg[t]) if t in V1HashAlg.__members__ else None


def known_encr_names() -> list[str]:
    return [m.name for m in EncrId] + list(PRIVATE_ENCR)


def known_integ_names() -> list[str]:
    return [m.name for m in IntegId] + list(PRIVATE_INTEG)


def expected(names: list[str], limit: int = 8) -> str:
    """``a, b, c, … (N more)`` for error messages."""
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")
