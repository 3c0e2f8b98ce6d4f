"""RFC 7427 signature schemes: the AlgorithmIdentifier that AUTH method 14 carries, both ways.

The AUTH data of the Digital Signature method (RFC 7427 §3) is::

    ASN.1 Length (1 octet) | AlgorithmIdentifier (DER) | Signature Value

:func:`encode_algorithm_identifier` builds the DER for a :class:`SigScheme` (tests hold it to the
bytes of RFC 7427 Appendix A and RFC 8420 §2); :func:`decode_algorithm_identifier` reads what a
peer sent, including RSASSA-PSS parameters other than ours (RFC 4055 §3.1 defaults apply to
absent fields). Only the DER these few structures need is handled here, by hand: an OID, NULL,
SEQUENCE, context tags [0]..[3] and a small INTEGER.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.registry import HashAlgorithm, name_of
from .errors import CryptoError

# -- object identifiers (RFC 8017 Appendix A/B, RFC 5758 §3.2, RFC 8410 §3) ---------------------

OID_RSA_PSS = "1.2.840.113549.1.1.10"
OID_MGF1 = "1.2.840.113549.1.1.8"
_OID_PKCS1 = {
    HashAlgorithm.SHA1: "1.2.840.113549.1.1.5",
    HashAlgorithm.SHA2_256: "1.2.840.113549.1.1.11",
    HashAlgorithm.SHA2_384: "1.2.840.113549.1.1.12",
    HashAlgorithm.SHA2_512: "1.2.840.113549.1.1.13",
}
_OID_ECDSA = {
    HashAlgorithm.SHA1: "1.2.840.10045.4.1",
    HashAlgorithm.SHA2_256: "1.2.840.10045.4.3.2",
    HashAlgorithm.SHA2_384: "1.2.840.10045.4.3.3",
    HashAlgorithm.SHA2_512: "1.2.840.10045.4.3.4",
}
_OID_HASH = {
    HashAlgorithm.SHA1: "1.3.14.3.2.26",
    HashAlgorithm.SHA2_256: "2.16.840.1.101.3.4.2.1",
    HashAlgorithm.SHA2_384: "2.16.840.1.101.3.4.2.2",
    HashAlgorithm.SHA2_512: "2.16.840.1.101.3.4.2.3",
}
_OID_EDDSA = {"ed25519": "1.3.101.112", "ed448": "1.3.101.113"}

HASH_SIZES = {
    HashAlgorithm.SHA1: 20,
    HashAlgorithm.SHA2_256: 32,
    HashAlgorithm.SHA2_384: 48,
    HashAlgorithm.SHA2_512: 64,
}
HASH_NAMES = {
    HashAlgorithm.SHA1: "sha1",
    HashAlgorithm.SHA2_256: "sha256",
    HashAlgorithm.SHA2_384: "sha384",
    HashAlgorithm.SHA2_512: "sha512",
}

KINDS = ("rsa-pkcs1", "rsa-pss", "ecdsa", "ed25519", "ed448")


class SigAlgError(CryptoError):
    """An AlgorithmIdentifier we cannot read or do not implement; the text names it."""


@dataclass(frozen=True)
class SigScheme:
    """One signature scheme of RFC 7427: the key kind and the hash (IDENTITY for EdDSA).

    ``salt_length`` and ``mgf_hash`` only matter for RSASSA-PSS; our own choice is the one RFC
    7427 Appendix A.4.3 and RFC 8247 §3.2 recommend: MGF1 with the same hash, salt as long as
    the hash.
    """

    kind: str
    hash_alg: int
    salt_length: int = 0
    mgf_hash: int = 0

    @property
    def name(self) -> str:
        """strongSwan-like name for reports, e.g. ``RSA_EMSA_PSS_SHA2_256``."""
        h = name_of(HashAlgorithm, self.hash_alg)
        if self.kind == "rsa-pkcs1":
            return f"RSA_EMSA_PKCS1_{h}"
        if self.kind == "rsa-pss":
            extra = ""
            if self.mgf_hash != self.hash_alg or self.salt_length != HASH_SIZES.get(self.hash_alg):
                extra = f" (MGF1 {name_of(HashAlgorithm, self.mgf_hash)}, salt {self.salt_length})"
            return f"RSA_EMSA_PSS_{h}{extra}"
        if self.kind == "ecdsa":
            return f"ECDSA_WITH_{h}_DER"
        return self.kind.upper()


def scheme(kind: str, hash_alg: int) -> SigScheme:
    """Our scheme for a key kind and hash, with RFC 8247's PSS parameters."""
    if kind not in KINDS:
        raise SigAlgError(f"unknown signature kind {kind!r}")
    if kind in ("ed25519", "ed448"):
        return SigScheme(kind, HashAlgorithm.IDENTITY)
    if hash_alg not in HASH_SIZES:
        raise SigAlgError(f"hash {name_of(HashAlgorithm, hash_alg)} cannot be used with {kind}")
    if kind == "rsa-pss":
        return SigScheme(kind, hash_alg, HASH_SIZES[HashAlgorithm(hash_alg)], hash_alg)
    return SigScheme(kind, hash_alg)


# -- DER ------------------------------------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def _encode_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _tlv(0x06, bytes(out))


def _decode_oid(body: bytes) -> str:
    if not body or body[-1] & 0x80:
        raise SigAlgError("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for b in body:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def _read_tlvs(data: bytes, what: str) -> list[tuple[int, bytes]]:
    """The TLVs that exactly fill ``data`` (definite lengths only, as DER requires)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise SigAlgError(f"{what}: truncated DER header")
        tag, n = data[pos], data[pos + 1]
        pos += 2
        if n & 0x80:
            count = n & 0x7F
            if not 0 < count <= 2 or pos + count > len(data):
                raise SigAlgError(f"{what}: bad DER length")
            n = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        if pos + n > len(data):
            raise SigAlgError(f"{what}: DER value runs past its container")
        out.append((tag, data[pos : pos + n]))
        pos += n
    return out


def _algid(oid: str, params: bytes | None) -> bytes:
    return _tlv(0x30, _encode_oid(oid) + (params if params is not None else b""))


def _hash_algid(hash_alg: int) -> bytes:
    return _algid(_OID_HASH[HashAlgorithm(hash_alg)], b"\x05\x00")


def encode_algorithm_identifier(s: SigScheme) -> bytes:
    """DER AlgorithmIdentifier of a scheme (RFC 7427 Appendix A, RFC 8420 §2)."""
    if s.kind in _OID_EDDSA:
        return _algid(_OID_EDDSA[s.kind], None)  # parameters absent (RFC 8410 §3)
    h = HashAlgorithm(s.hash_alg)
    if s.kind == "rsa-pkcs1":
        return _algid(_OID_PKCS1[h], b"\x05\x00")  # NULL parameters (RFC 8017 Appendix C)
    if s.kind == "ecdsa":
        return _algid(_OID_ECDSA[h], None)  # parameters absent (RFC 5758 §3.2)
    # RSASSA-PSS-params (RFC 8017 Appendix A.2.3); trailerField left at its default.
    params = (
        _tlv(0xA0, _hash_algid(h))
        + _tlv(0xA1, _algid(OID_MGF1, _hash_algid(s.mgf_hash)))
        + _tlv(0xA2, _tlv(0x02, s.salt_length.to_bytes(max(1, (s.salt_length.bit_length() + 8) // 8), "big")))
    )
    return _algid(OID_RSA_PSS, _tlv(0x30, params))


def _by_oid(table: dict[HashAlgorithm, str]) -> dict[str, HashAlgorithm]:
    return {oid: h for h, oid in table.items()}


_PKCS1_BY_OID = _by_oid(_OID_PKCS1)
_ECDSA_BY_OID = _by_oid(_OID_ECDSA)
_HASH_BY_OID = _by_oid(_OID_HASH)
_EDDSA_BY_OID = {oid: kind for kind, oid in _OID_EDDSA.items()}


def _single(data: bytes, tag: int, what: str) -> bytes:
    items = _read_tlvs(data, what)
    if len(items) != 1 or items[0][0] != tag:
        raise SigAlgError(f"{what}: expected one DER element of tag 0x{tag:02x}")
    return items[0][1]


def _parse_algid(der: bytes, what: str) -> tuple[str, bytes | None]:
    """(OID, parameters DER or None) of an AlgorithmIdentifier SEQUENCE."""
    items = _read_tlvs(_single(der, 0x30, what), what)
    if not items or items[0][0] != 0x06 or len(items) > 2:
        raise SigAlgError(f"{what}: not an AlgorithmIdentifier")
    oid = _decode_oid(items[0][1])
    if len(items) == 1:
        return oid, None
    tag, body = items[1]
    return oid, _tlv(tag, body)


def _pss_hash(der: bytes, what: str) -> HashAlgorithm:
    oid, params = _parse_algid(der, what)
    if oid not in _HASH_BY_OID or params not in (None, b"\x05\x00"):
        raise SigAlgError(f"unsupported hash {oid} in RSASSA-PSS parameters")
    return _HASH_BY_OID[oid]


def _decode_pss_params(params: bytes | None) -> SigScheme:
    # RFC 4055 §3.1 / RFC 8017 A.2.3 defaults: SHA-1, MGF1 with SHA-1, salt 20, trailer 1.
    h, mgf_h, salt = HashAlgorithm.SHA1, HashAlgorithm.SHA1, 20
    if params is not None:
        for tag, body in _read_tlvs(_single(params, 0x30, "RSASSA-PSS-params"), "RSASSA-PSS-params"):
            if tag == 0xA0:
                h = _pss_hash(body, "PSS hashAlgorithm")
            elif tag == 0xA1:
                oid, inner = _parse_algid(body, "PSS maskGenAlgorithm")
                if oid != OID_MGF1 or inner is None:
                    raise SigAlgError(f"unsupported mask generation function {oid}")
                mgf_h = _pss_hash(inner, "MGF1 hash")
            elif tag == 0xA2:
                salt = int.from_bytes(_single(body, 0x02, "PSS saltLength"), "big", signed=True)
                if not 0 <= salt <= 1024:
                    raise SigAlgError(f"RSASSA-PSS salt length {salt} out of range")
            elif tag == 0xA3:
                if int.from_bytes(_single(body, 0x02, "PSS trailerField"), "big") != 1:
                    raise SigAlgError("RSASSA-PSS trailerField other than 1 (0xbc)")
            else:
                raise SigAlgError(f"unexpected element 0x{tag:02x} in RSASSA-PSS-params")
    return SigScheme("rsa-pss", h, salt, mgf_h)


def decode_algorithm_identifier(der: bytes) -> SigScheme:
    """The scheme named by a DER AlgorithmIdentifier; :class:`SigAlgError` names what we lack."""
    oid, params = _parse_algid(der, "AlgorithmIdentifier")
    if oid in _PKCS1_BY_OID:
        if params not in (None, b"\x05\x00"):
            raise SigAlgError(f"unexpected parameters for signature algorithm {oid}")
        return SigScheme("rsa-pkcs1", _PKCS1_BY_OID[oid])
    if oid in _ECDSA_BY_OID:
        return SigScheme("ecdsa", _ECDSA_BY_OID[oid])
    if oid in _EDDSA_BY_OID:
        return SigScheme(_EDDSA_BY_OID[oid], HashAlgorithm.IDENTITY)
    if oid == OID_RSA_PSS:
        return _decode_pss_params(params)
    raise SigAlgError(f"unsupported signature algorithm {oid}")


def split_digital_signature(auth_data: bytes) -> tuple[SigScheme, bytes, bytes]:
    """RFC 7427 §3 AUTH data -> (scheme, AlgorithmIdentifier DER, signature value)."""
    if not auth_data:
        raise SigAlgError("Digital Signature AUTH data is empty")
    n = auth_data[0]
    if n == 0 or 1 + n > len(auth_data):
        raise SigAlgError(f"ASN.1 length {n} does not fit the {len(auth_data)}-octet AUTH data")
    der = auth_data[1 : 1 + n]
    return decode_algorithm_identifier(der), der, auth_data[1 + n :]


def join_digital_signature(s: SigScheme, signature: bytes) -> bytes:
    der = encode_algorithm_identifier(s)
    if len(der) > 255:
        raise SigAlgError("AlgorithmIdentifier longer than 255 octets")
    return bytes((len(der),)) + der + signature
