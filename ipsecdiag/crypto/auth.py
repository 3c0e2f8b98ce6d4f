"""IKEv2 authentication: the signed octets, the shared key MIC and signatures (RFC 7296 §2.15,
§2.16, §3.8; RFC 4754; RFC 7427; RFC 8420).

What each side signs or MACs (RFC 7296 §2.15)::

    InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
    ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
    MACedIDForI = prf(SK_pi, RestOfInitIDPayload)     (RestOf...: the ID body from the ID Type on)

and the AUTH payload data per method:

* 2, Shared Key MIC: ``prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)``; after
  EAP the MSK is the shared secret, or SK_pi/SK_pr when the method makes none (§2.16).
* 1, RSA: RSASSA-PKCS1-v1_5 with SHA-1 (RFC 7296 §3.8; RFC 7427 §1 on the fixed hash).
* 9/10/11: ECDSA with SHA-256/P-256, SHA-384/P-384, SHA-512/P-521, the signature as r | s of
  fixed width (RFC 4754 §3, §7).
* 14, Digital Signature: ASN.1 length | AlgorithmIdentifier | signature (RFC 7427 §3, see
  :mod:`.sigalg`); ECDSA signatures here are DER Ecdsa-Sig-Value, EdDSA signs the octets
  themselves (hash IDENTITY, RFC 8420).

Everything is a pure function of its arguments. Signing with ECDSA is deterministic (RFC 6979)
so that a replayed session is byte-identical; RSASSA-PSS draws its salt inside OpenSSL, which
the sans-I/O randomness protocol cannot reach (documented, not hidden).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as CgUnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ..wire.buffer import Writer
from ..wire.errors import MalformedMessage
from ..wire.ikev2 import HEADER_LEN as IKE_HEADER_LEN
from ..wire.ikev2 import RawPayload, walk_payloads
from ..wire.ikev2_payloads import IdPayload, NotifyPayload, push_id_body
from ..wire.registry import AuthMethod, HashAlgorithm, NotifyType, PayloadType, name_of
from .errors import CryptoError
from .mac import hash_algorithm
from .prf import prf
from .sigalg import (
    HASH_NAMES,
    SigAlgError,
    SigScheme,
    join_digital_signature,
    scheme,
    split_digital_signature,
)

KEY_PAD = b"Key Pad for IKEv2"  # RFC 7296 §2.15, 17 ASCII characters, no terminator

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey

# RFC 4754 §3: method -> (curve, hash, octets of r and of s)
_RFC4754 = {
    AuthMethod.ECDSA_SHA256_P256: (ec.SECP256R1, HashAlgorithm.SHA2_256, 32),
    AuthMethod.ECDSA_SHA384_P384: (ec.SECP384R1, HashAlgorithm.SHA2_384, 48),
    AuthMethod.ECDSA_SHA512_P521: (ec.SECP521R1, HashAlgorithm.SHA2_512, 66),
}
_METHOD_FOR_CURVE = {curve.name: m for m, (curve, _h, _n) in _RFC4754.items()}
# Hashes we sign with under RFC 7427, weakest first (choose_hash takes the first strong enough for
# the key); SHA-1 is verified, never chosen (RFC 8247 §3.2).
SIGNING_HASHES = (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512)


class AuthError(CryptoError):
    """AUTH could not be computed or did not verify; ``reason`` is one line for a report."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# -- signed octets ------------------------------------------------------------------------------


def id_body(payload: IdPayload | RawPayload) -> bytes:
    """RestOfIDPayload: the IDi/IDr body from the ID Type octet on (RFC 7296 §2.15).

    A :class:`RawPayload` gives its body exactly as received, reserved octets included, which is
    what the peer MACed or signed; an :class:`IdPayload` is encoded by the wire layer's own
    ``push_id_body`` (reserved octets zero), the same bytes we put on the wire when sending it.
    """
    if isinstance(payload, RawPayload):
        if payload.type not in (PayloadType.IDi, PayloadType.IDr):
            raise AuthError(f"{payload.name} payload is not an identification payload")
        return payload.body
    w = Writer()
    push_id_body(w, payload)
    return w.getvalue()


def signed_octets(
    message: bytes, peer_nonce: bytes, prf_id: int, sk_p: bytes, id_body: bytes, *, int_auth: bytes = b""
) -> bytes:
    """RealMessage | NonceOfOtherSide | prf(SK_px, RestOfIDPayload) [| IntAuth] (RFC 7296 §2.15,
    RFC 9242 §3.3.2).

    ``message`` is this side's IKE_SA_INIT message as sent, ``peer_nonce`` the other side's
    Nonce data, ``sk_p`` this side's SK_pi (initiator) or SK_pr (responder), ``int_auth`` the
    :func:`int_auth_tail` when IKE_INTERMEDIATE exchanges took place (empty otherwise).
    """
    return message + peer_nonce + prf(prf_id, sk_p, id_body) + int_auth


# -- IKE_INTERMEDIATE (RFC 9242 §3.3.2) ----------------------------------------------------------


def intermediate_auth_input(message: bytes, plaintext: bytes) -> bytes:
    """IntAuth_*_A | IntAuth_*_P of one IKE_INTERMEDIATE message.

    A: the message from the IKE header to the end of the Encrypted payload's generic header,
    with the IKE header Length and the Encrypted payload's Payload Length set as if the
    Encrypted payload held just the plaintext (no IV, padding or ICV). P: the plaintext inner
    payloads. A fragmented message (RFC 7383) counts as unfragmented: pass its first fragment and
    the reassembled plaintext; its SKF header becomes an SK header and the IKE header says SK.
    """
    try:
        chain = list(walk_payloads(message[16], message, IKE_HEADER_LEN, len(message)))
    except (MalformedMessage, IndexError) as e:
        raise AuthError(f"IKE_INTERMEDIATE message does not parse: {e}") from None
    sk = chain[-1] if chain else None
    if sk is None or sk.type not in (PayloadType.SK, PayloadType.SKF):
        raise AuthError("IKE_INTERMEDIATE message has no Encrypted payload")
    unencrypted = message[IKE_HEADER_LEN : sk.offset]
    header = bytearray(message[:IKE_HEADER_LEN])
    if not chain[:-1]:
        header[16] = PayloadType.SK
    header[24:28] = (IKE_HEADER_LEN + len(unencrypted) + 4 + len(plaintext)).to_bytes(4, "big")
    sk_header = message[sk.offset : sk.offset + 2] + (4 + len(plaintext)).to_bytes(2, "big")
    return bytes(header) + unencrypted + sk_header + plaintext


def int_auth(prf_id: int, sk_p: bytes, previous: bytes, message: bytes, plaintext: bytes) -> bytes:
    """IntAuth_iN = prf(SK_piN, IntAuth_i(N-1) | IntAuth_iN_A | IntAuth_iN_P), likewise for r.

    ``sk_p`` is the SK_pi/SK_pr in force for that exchange (they change when an additional key
    exchange completes, RFC 9370 §2.2.2), ``previous`` the last IntAuth of that direction or empty.
    """
    return prf(prf_id, sk_p, previous + intermediate_auth_input(message, plaintext))


def int_auth_tail(int_auth_i: bytes, int_auth_r: bytes, ike_auth_mid: int) -> bytes:
    """IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID (Message ID of the first IKE_AUTH request)."""
    return int_auth_i + int_auth_r + ike_auth_mid.to_bytes(4, "big")


# -- shared key MIC --------------------------------------------------------------------------------


def psk_auth(prf_id: int, psk: bytes, octets: bytes) -> bytes:
    """prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>) (RFC 7296 §2.15)."""
    return prf(prf_id, prf(prf_id, psk, KEY_PAD), octets)


def eap_auth(prf_id: int, msk: bytes | None, sk_p: bytes, octets: bytes) -> bytes:
    """AUTH after EAP (RFC 7296 §2.16): the MSK as the shared secret, or SK_pi/SK_pr (the
    sender's) when the EAP method generated no MSK."""
    return psk_auth(prf_id, msk if msk else sk_p, octets)


def psk_verifies(prf_id: int, psk: bytes, auth_data: bytes, octets: bytes) -> bool:
    """Does this AUTH (method 2) match the candidate PSK? Constant-time comparison."""
    return hmac.compare_digest(psk_auth(prf_id, psk, octets), auth_data)


@dataclass(frozen=True)
class PskVerdict:
    """Which AUTH payloads a candidate PSK explains; None: that AUTH was absent or not a PSK."""

    initiator: bool | None
    responder: bool | None


def psk_check(
    prf_id: int,
    psk: bytes,
    *,
    init_request: bytes,
    init_response: bytes,
    nonce_i: bytes,
    nonce_r: bytes,
    sk_pi: bytes,
    sk_pr: bytes,
    id_i: bytes | None = None,
    id_r: bytes | None = None,
    auth_i: tuple[int, bytes] | None = None,
    auth_r: tuple[int, bytes] | None = None,
) -> PskVerdict:
    """Which side's AUTH verifies with ``psk``: what ``analyze`` needs to say who holds the
    wrong key. ``init_request``/``init_response`` are the IKE_SA_INIT messages, ``id_i``/``id_r``
    the ID bodies (:func:`id_body`), ``auth_i``/``auth_r`` (method, data) as received."""

    def side(auth: tuple[int, bytes] | None, msg: bytes, nonce: bytes, sk: bytes, ident: bytes | None) -> bool | None:
        if auth is None or ident is None or auth[0] != AuthMethod.SHARED_KEY_MIC:
            return None
        return psk_verifies(prf_id, psk, auth[1], signed_octets(msg, nonce, prf_id, sk, ident))

    return PskVerdict(
        initiator=side(auth_i, init_request, nonce_r, sk_pi, id_i),
        responder=side(auth_r, init_response, nonce_i, sk_pr, id_r),
    )


# -- SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) ----------------------------------------------------


def hash_algorithms_notify(hash_algs: Sequence[int] = (*SIGNING_HASHES, HashAlgorithm.IDENTITY)) -> NotifyPayload:
    """N(SIGNATURE_HASH_ALGORITHMS) listing 16-bit hash IDs; by default what we can sign with."""
    data = b"".join(int(h).to_bytes(2, "big") for h in hash_algs)
    return NotifyPayload(0, b"", NotifyType.SIGNATURE_HASH_ALGORITHMS, data)


def parse_hash_algorithms(data: bytes) -> tuple[int, ...]:
    """The hash IDs of a SIGNATURE_HASH_ALGORITHMS notify; odd lengths are malformed."""
    if len(data) % 2:
        raise AuthError(f"SIGNATURE_HASH_ALGORITHMS data of {len(data)} octets is not a list of 16-bit IDs")
    return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def key_strength(key: PrivateKey | PublicKey) -> int:
    """Security strength in bits for picking a hash. NIST SP 800-57 Part 1 Table 2 gives RSA-2048
    112, RSA-3072 128, RSA-7680 192, RSA-15360 256 and half the curve size for ECDSA; sizes in
    between round up here, so RSA-4096 counts as 192 and signs with SHA-384, which is what
    strongSwan does (ikev2-fragmentation in the corpus)."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        size = key.key_size
        return 80 if size <= 1024 else 112 if size <= 2048 else 128 if size <= 3072 else 192 if size <= 7680 else 256
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return min(256, key.curve.key_size // 2)
    return 128 if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) else 224


_HASH_STRENGTH = {HashAlgorithm.SHA2_256: 128, HashAlgorithm.SHA2_384: 192, HashAlgorithm.SHA2_512: 256}


def choose_hash(peer_hashes: Sequence[int], key: PrivateKey | PublicKey | None = None) -> int | None:
    """The hash to sign with under RFC 7427, or None when the peer announced none we use.

    EdDSA needs IDENTITY (RFC 8420 §2). Otherwise the smallest of :data:`SIGNING_HASHES` at
    least as strong as the key, falling back to the strongest the peer has: P-384 signs with
    SHA-384 (the RFC 4754 pairing) and RSA-4096 with SHA-384, as strongSwan does (seen in the
    corpus); with no key, SHA-256 first.
    """
    peer = set(peer_hashes)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return HashAlgorithm.IDENTITY if HashAlgorithm.IDENTITY in peer else None
    usable = [h for h in SIGNING_HASHES if h in peer]
    if not usable:
        return None
    need = key_strength(key) if key is not None else 0
    return next((h for h in usable if _HASH_STRENGTH[h] >= need), usable[-1])


def key_kind(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ecdsa"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
        return "ed448"
    raise AuthError(f"unsupported key type {type(key).__name__}")


def auth_method_for_key(private_key: PrivateKey, *, peer_hashes: Sequence[int]) -> tuple[int, int | None]:
    """(AUTH method, hash for method 14 or None) for our key, given the peer's announced hashes.

    RFC 7427 (method 14) when the peer announced a hash we can use; otherwise the classic
    method: RSA (1), or ECDSA 9/10/11 for P-256/384/521. EdDSA has no classic method, and ECDSA
    on other curves neither: those raise :class:`AuthError` when the peer lacks RFC 7427.
    """
    h = choose_hash(peer_hashes, private_key)
    if h is not None:
        return AuthMethod.DIGITAL_SIGNATURE, h
    kind = key_kind(private_key)
    if kind == "rsa":
        return AuthMethod.RSA_DIGITAL_SIGNATURE, None
    if kind == "ecdsa" and private_key.curve.name in _METHOD_FOR_CURVE:  # type: ignore[union-attr]
        return _METHOD_FOR_CURVE[private_key.curve.name], None  # type: ignore[union-attr]
    raise AuthError(f"a {kind} key needs RFC 7427 signatures, and the peer announced no usable hash")


# -- signatures --------------------------------------------------------------------------------


def _hash(h: int) -> hashes.HashAlgorithm:
    return hash_algorithm(HASH_NAMES[HashAlgorithm(h)])


def _pss(s: SigScheme) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(_hash(s.mgf_hash)), salt_length=s.salt_length)


def _ecdsa(h: int) -> ec.ECDSA:
    return ec.ECDSA(_hash(h), deterministic_signing=True)


def _fixed_rs(der: bytes, width: int) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(width, "big") + s.to_bytes(width, "big")


def _sign_scheme(s: SigScheme, key: PrivateKey, octets: bytes) -> bytes:
    if s.kind in ("ed25519", "ed448"):
        return key.sign(octets)  # type: ignore[call-arg, union-attr]
    if s.kind == "ecdsa":
        return key.sign(octets, _ecdsa(s.hash_alg))  # type: ignore[call-arg, arg-type, union-attr]
    pad = _pss(s) if s.kind == "rsa-pss" else padding.PKCS1v15()
    return key.sign(octets, pad, _hash(s.hash_alg))  # type: ignore[call-arg, arg-type, union-attr]


def _scheme_for_key(key: PrivateKey, hash_alg: int | None, pss: bool) -> SigScheme:
    kind = key_kind(key)
    if kind == "rsa":
        kind = "rsa-pss" if pss else "rsa-pkcs1"
    if kind in ("ed25519", "ed448"):
        return scheme(kind, HashAlgorithm.IDENTITY)
    if hash_alg is None:
        hash_alg = choose_hash(SIGNING_HASHES, key)
    if hash_alg not in SIGNING_HASHES:
        raise AuthError(f"will not sign with hash {name_of(HashAlgorithm, hash_alg or 0)}")
    return scheme(kind, hash_alg)


def sign_auth(method: int, private_key: PrivateKey, octets: bytes, *, hash_alg: int | None = None, pss: bool = False) -> bytes:
    """AUTH payload data (without the method octet) signing ``octets`` with our key.

    ``hash_alg`` (method 14) defaults to the best of :data:`SIGNING_HASHES` for the key;
    ``pss`` picks RSASSA-PSS instead of PKCS#1 v1.5 for RSA keys under method 14.
    """
    kind = key_kind(private_key)
    if method == AuthMethod.RSA_DIGITAL_SIGNATURE:
        if kind != "rsa":
            raise AuthError(f"AUTH method RSA_DIGITAL_SIGNATURE needs an RSA key, not {kind}")
        return private_key.sign(octets, padding.PKCS1v15(), hashes.SHA1())  # type: ignore[call-arg, union-attr]
    if method in _RFC4754:
        curve, h, width = _RFC4754[AuthMethod(method)]
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or private_key.curve.name != curve.name:
            raise AuthError(f"AUTH method {name_of(AuthMethod, method)} needs a {curve.name} key")
        return _fixed_rs(private_key.sign(octets, _ecdsa(h)), width)
    if method == AuthMethod.DIGITAL_SIGNATURE:
        try:
            s = _scheme_for_key(private_key, hash_alg, pss)
        except SigAlgError as e:
            raise AuthError(str(e)) from None
        return join_digital_signature(s, _sign_scheme(s, private_key, octets))
    raise AuthError(f"cannot sign with AUTH method {name_of(AuthMethod, method)}")


def _public(public_key: PublicKey | x509.Certificate | None) -> PublicKey:
    if public_key is None:
        raise AuthError("no public key or certificate to verify the peer's signature with")
    key = public_key.public_key() if isinstance(public_key, x509.Certificate) else public_key
    key_kind(key)  # type: ignore[arg-type]
    return key  # type: ignore[return-value]


def _verify_scheme(s: SigScheme, key: PublicKey, signature: bytes, octets: bytes) -> None:
    kind = key_kind(key)
    want = "rsa" if s.kind.startswith("rsa") else s.kind
    if kind != want:
        raise AuthError(f"{s.name} signature but the peer's key is {kind}")
    if s.kind in ("ed25519", "ed448"):
        key.verify(signature, octets)  # type: ignore[call-arg, union-attr]
    elif s.kind == "ecdsa":
        key.verify(signature, octets, ec.ECDSA(_hash(s.hash_alg)))  # type: ignore[call-arg, arg-type, union-attr]
    else:
        pad = _pss(s) if s.kind == "rsa-pss" else padding.PKCS1v15()
        key.verify(signature, octets, pad, _hash(s.hash_alg))  # type: ignore[call-arg, arg-type, union-attr]


def verify_auth(
    method: int,
    auth_data: bytes,
    octets: bytes,
    *,
    public_key: PublicKey | x509.Certificate | None = None,
    psk: bytes | None = None,
    prf_id: int | None = None,
) -> None:
    """Check the peer's AUTH over ``octets``; raise :class:`AuthError` saying why it fails."""
    if method == AuthMethod.SHARED_KEY_MIC:
        if psk is None or prf_id is None:
            raise AuthError("a shared key MIC needs the PSK and the negotiated PRF to verify")
        if not psk_verifies(prf_id, psk, auth_data, octets):
            raise AuthError("AUTH payload does not verify with the PSK")
        return
    try:
        key = _public(public_key)
        kind = key_kind(key)
        if method == AuthMethod.RSA_DIGITAL_SIGNATURE:
            if kind != "rsa":
                raise AuthError(f"RSA_DIGITAL_SIGNATURE AUTH but the peer's key is {kind}")
            key.verify(auth_data, octets, padding.PKCS1v15(), hashes.SHA1())  # type: ignore[call-arg, arg-type, union-attr]
        elif method in _RFC4754:
            curve, h, width = _RFC4754[AuthMethod(method)]
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve.name:
                raise AuthError(f"{name_of(AuthMethod, method)} AUTH but the peer's key is not {curve.name}")
            if len(auth_data) != 2 * width:
                raise AuthError(f"{name_of(AuthMethod, method)} signature of {len(auth_data)} octets, expected {2 * width}")
            r, s = int.from_bytes(auth_data[:width], "big"), int.from_bytes(auth_data[width:], "big")
            key.verify(encode_dss_signature(r, s), octets, ec.ECDSA(_hash(h)))
        elif method == AuthMethod.DIGITAL_SIGNATURE:
            sch, _der, sig = split_digital_signature(auth_data)
            _verify_scheme(sch, key, sig, octets)
        else:
            raise AuthError(f"unsupported AUTH method {name_of(AuthMethod, method)}")
    except SigAlgError as e:
        raise AuthError(str(e)) from None
    except InvalidSignature:
        raise AuthError(f"{_signature_name(method, auth_data, kind)} signature invalid") from None
    except AuthError:
        raise
    except (CgUnsupportedAlgorithm, CryptoError, ValueError) as e:
        raise AuthError(f"{name_of(AuthMethod, method)} signature cannot be checked: {e}") from None


def _signature_name(method: int, auth_data: bytes, kind: str) -> str:
    if method == AuthMethod.DIGITAL_SIGNATURE:
        return split_digital_signature(auth_data)[0].name
    if method == AuthMethod.RSA_DIGITAL_SIGNATURE:
        return "RSA"
    return name_of(AuthMethod, method) if kind == "ecdsa" else kind


def describe_auth(method: int, auth_data: bytes) -> str:
    """What an AUTH payload claims, for reports: ``RSA_EMSA_PKCS1_SHA2_256``, ``SHARED_KEY_MIC``."""
    if method == AuthMethod.DIGITAL_SIGNATURE:
        try:
            return split_digital_signature(auth_data)[0].name
        except SigAlgError as e:
            return f"DIGITAL_SIGNATURE ({e})"
    return name_of(AuthMethod, method)
