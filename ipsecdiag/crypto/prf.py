"""Key derivation: IKEv2 prf / prf+ / SKEYSEED / SK_* / KEYMAT and IKEv1 SKEYID* / Ka / KEYMAT.

IKEv2: RFC 7296 §2.13 (prf+), §2.14 (SKEYSEED and the SK_* split), §2.17 (CHILD_SA KEYMAT),
§2.18 (rekeyed IKE SA). AES-based PRFs: RFC 4434 (AES-XCBC-PRF-128) and RFC 4615
(AES-CMAC-PRF-128), both with their rules for keys that are not 16 bytes.
IKEv1: RFC 2409 §5 (SKEYID for signatures, public-key encryption and pre-shared keys;
SKEYID_d/a/e), §5.5 (phase-2 KEYMAT) and Appendix B (Ka expansion).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..keys.model import IkeSaKeys, SecretBytes
from ..wire.registry import V1HashAlg, name_of
from .errors import UnsupportedAlgorithm
from .mac import aes_cmac, aes_cmac_prf_key, aes_xcbc_mac, aes_xcbc_prf_key, digest, hmac_digest
from .transforms import encr_spec, integ_spec, prf_spec

# -- IKEv2 ---------------------------------------------------------------------------------------


def prf(prf_id: int, key: bytes, data: bytes) -> bytes:
    """prf(K, S) for an IKEv2 PRF transform id."""
    spec = prf_spec(prf_id)
    if spec.kind == "hmac":
        return hmac_digest(spec.hash, key, data)
    if spec.kind == "xcbc":
        return aes_xcbc_mac(aes_xcbc_prf_key(key), data)
    return aes_cmac(aes_cmac_prf_key(key), data)


def prf_plus(prf_id: int, key: bytes, seed: bytes, length: int) -> bytes:
    """prf+ (K, S) = T1 | T2 | ..., Tn = prf(K, T(n-1) | S | n) (RFC 7296 §2.13), ``length`` octets.

    The counter is one octet, so at most 255 blocks can be produced."""
    out = bytearray()
    t = b""
    n = 1
    while len(out) < length:
        if n > 255:
            raise ValueError(f"prf+ cannot produce {length} octets: more than 255 iterations")
        t = prf(prf_id, key, t + seed + bytes((n,)))
        out += t
        n += 1
    return bytes(out[:length])


def _nonce_key(prf_id: int, ni: bytes, nr: bytes) -> bytes:
    # RFC 7296 §2.14: a PRF with a fixed key size takes half its key from the first bytes of Ni
    # and half from the first bytes of Nr (AES-XCBC / AES-CMAC: 8 + 8 octets).
    spec = prf_spec(prf_id)
    if spec.fixed_key:
        half = spec.key_size // 2
        return ni[:half] + nr[:half]
    return ni + nr


def skeyseed(prf_id: int, ni: bytes, nr: bytes, shared_secret: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 §2.14)."""
    return prf(prf_id, _nonce_key(prf_id, ni, nr), shared_secret)


def rekey_skeyseed(prf_id: int, old_sk_d: bytes, shared_secret: bytes, ni: bytes, nr: bytes) -> bytes:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) for a rekeyed IKE SA (RFC 7296 §2.18)."""
    return prf(prf_id, old_sk_d, shared_secret + ni + nr)


def derive_ike_sa_keys(
    *,
    prf_id: int,
    encr_id: int,
    integ_id: int,
    skeyseed_value: bytes,
    ni: bytes,
    nr: bytes,
    spi_i: bytes,
    spi_r: bytes,
    encr_key_bits: int | None = None,
) -> IkeSaKeys:
    """{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
    (RFC 7296 §2.14). SK_e* include the salt for counter and AEAD ciphers; with an AEAD cipher
    there are no SK_a* (``integ_id`` 0)."""
    p = prf_spec(prf_id)
    e = encr_spec(encr_id)
    e_len = e.keymat_size(encr_key_bits)
    a_len = integ_spec(integ_id).key_size if integ_id else 0
    sizes = (p.key_size, a_len, a_len, e_len, e_len, p.key_size, p.key_size)
    stream = prf_plus(prf_id, skeyseed_value, ni + nr + spi_i + spi_r, sum(sizes))
    parts: list[SecretBytes] = []
    pos = 0
    for size in sizes:
        parts.append(SecretBytes(stream[pos : pos + size]))
        pos += size
    sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr = parts
    return IkeSaKeys(
        spi_i=spi_i,
        spi_r=spi_r,
        encr=encr_id,
        sk_ei=sk_ei,
        sk_er=sk_er,
        integ=integ_id,
        sk_ai=sk_ai,
        sk_ar=sk_ar,
        encr_key_bits=encr_key_bits,
        prf=prf_id,
        sk_d=sk_d,
        sk_pi=sk_pi,
        sk_pr=sk_pr,
        source="derived (RFC 7296 §2.14)",
    )


@dataclass(frozen=True)
class ChildKeymat:
    """CHILD_SA keys in KEYMAT order (RFC 7296 §2.17): the initiator-to-responder SA's encryption
    and integrity keys, then the responder-to-initiator ones."""

    encr_i: SecretBytes
    integ_i: SecretBytes
    encr_r: SecretBytes
    integ_r: SecretBytes


def child_keymat(
    *,
    prf_id: int,
    sk_d: bytes,
    ni: bytes,
    nr: bytes,
    encr_id: int,
    integ_id: int = 0,
    encr_key_bits: int | None = None,
    shared_secret: bytes = b"",
) -> ChildKeymat:
    """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (RFC 7296 §2.17); ``shared_secret`` only when
    the CREATE_CHILD_SA exchange carried a KE (PFS)."""
    e_len = encr_spec(encr_id).keymat_size(encr_key_bits)
    a_len = integ_spec(integ_id).key_size if integ_id else 0
    km = prf_plus(prf_id, sk_d, shared_secret + ni + nr, 2 * (e_len + a_len))
    one = e_len + a_len
    return ChildKeymat(
        encr_i=SecretBytes(km[:e_len]),
        integ_i=SecretBytes(km[e_len:one]),
        encr_r=SecretBytes(km[one : one + e_len]),
        integ_r=SecretBytes(km[one + e_len :]),
    )


# -- IKEv1 ---------------------------------------------------------------------------------------

_V1_HASHES = {
    V1HashAlg.MD5: "md5",
    V1HashAlg.SHA: "sha1",
    V1HashAlg.SHA2_256: "sha256",
    V1HashAlg.SHA2_384: "sha384",
    V1HashAlg.SHA2_512: "sha512",
}


def v1_hash_name(hash_alg: int) -> str:
    """hashlib-style name of an IKEv1 Hash Algorithm attribute value."""
    try:
        return _V1_HASHES[V1HashAlg(hash_alg)]
    except (ValueError, KeyError):
        raise UnsupportedAlgorithm(name_of(V1HashAlg, hash_alg)) from None


def v1_prf(hash_alg: int, key: bytes, data: bytes) -> bytes:
    """The IKEv1 prf: HMAC with the negotiated hash (RFC 2409 §4, no PRF attribute)."""
    return hmac_digest(v1_hash_name(hash_alg), key, data)


def v1_hash(hash_alg: int, data: bytes) -> bytes:
    """The negotiated hash itself (used for the phase-1/phase-2 IVs, RFC 2409 Appendix B)."""
    return digest(v1_hash_name(hash_alg), data)


def v1_skeyid_psk(hash_alg: int, psk: bytes, ni_b: bytes, nr_b: bytes) -> bytes:
    """Pre-shared keys: SKEYID = prf(pre-shared-key, Ni_b | Nr_b) (RFC 2409 §5)."""
    return v1_prf(hash_alg, psk, ni_b + nr_b)


def v1_skeyid_sig(hash_alg: int, ni_b: bytes, nr_b: bytes, gxy: bytes) -> bytes:
    """Signatures: SKEYID = prf(Ni_b | Nr_b, g^xy) (RFC 2409 §5)."""
    return v1_prf(hash_alg, ni_b + nr_b, gxy)


def v1_skeyid_pke(hash_alg: int, ni_b: bytes, nr_b: bytes, cky_i: bytes, cky_r: bytes) -> bytes:
    """Public key encryption: SKEYID = prf(hash(Ni_b | Nr_b), CKY-I | CKY-R) (RFC 2409 §5)."""
    return v1_prf(hash_alg, v1_hash(hash_alg, ni_b + nr_b), cky_i + cky_r)


@dataclass(frozen=True)
class V1KeyMaterial:
    """SKEYID_d, SKEYID_a, SKEYID_e and the expanded encryption key Ka."""

    skeyid_d: SecretBytes
    skeyid_a: SecretBytes
    skeyid_e: SecretBytes
    ka: SecretBytes


def v1_ka(hash_alg: int, skeyid_e: bytes, key_len: int) -> bytes:
    """Ka from SKEYID_e (RFC 2409 Appendix B): SKEYID_e truncated when long enough, otherwise
    K1 | K2 | ... with K1 = prf(SKEYID_e, 0), Kn = prf(SKEYID_e, K(n-1))."""
    if len(skeyid_e) >= key_len:
        return skeyid_e[:key_len]
    out = b""
    k = b"\x00"
    while len(out) < key_len:
        k = v1_prf(hash_alg, skeyid_e, k)
        out += k
    return out[:key_len]


def v1_derive(
    hash_alg: int, skeyid: bytes, gxy: bytes, cky_i: bytes, cky_r: bytes, key_len: int
) -> V1KeyMaterial:
    """SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0), SKEYID_a = prf(SKEYID, SKEYID_d | g^xy |
    CKY-I | CKY-R | 1), SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2) (RFC 2409 §5),
    and Ka of ``key_len`` octets (Appendix B)."""
    tail = gxy + cky_i + cky_r
    d = v1_prf(hash_alg, skeyid, tail + b"\x00")
    a = v1_prf(hash_alg, skeyid, d + tail + b"\x01")
    e = v1_prf(hash_alg, skeyid, a + tail + b"\x02")
    return V1KeyMaterial(
        SecretBytes(d), SecretBytes(a), SecretBytes(e), SecretBytes(v1_ka(hash_alg, e, key_len))
    )


def v1_keymat(
    hash_alg: int,
    skeyid_d: bytes,
    protocol: int,
    spi: bytes,
    ni_b: bytes,
    nr_b: bytes,
    length: int,
    gxy: bytes = b"",
) -> bytes:
    """Quick Mode KEYMAT = K1 | K2 | ..., K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b),
    Kn = prf(SKEYID_d, K(n-1) | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b) (RFC 2409 §5.5).
    One call per SA direction: ``spi`` is the SPI of the receiving side of that SA."""
    seed = gxy + bytes((protocol,)) + spi + ni_b + nr_b
    out = b""
    k = b""
    while len(out) < length:
        k = v1_prf(hash_alg, skeyid_d, k + seed)
        out += k
    return out[:length]
