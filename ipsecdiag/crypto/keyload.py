"""Private keys and certificate chains for authenticating ourselves (probe, responder).

Keys stay in memory: this module reads bytes the caller got from a file and never writes any.
Certificates reuse :mod:`.x509` (``load_certificates``, ``order_chain``); what is added here is
what signing needs: a private key in any of the usual encodings, the check that it belongs to
the end-entity certificate, and the peer's public key out of a CERT payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from ..wire.registry import CertEncoding, name_of
from .auth import PrivateKey, PublicKey
from .errors import CryptoError
from .x509 import CertificateDecodeError, certificates_from_payload, load_certificates, order_chain


class KeyLoadError(CryptoError, ValueError):
    """A key or certificate file we cannot use; the message is one line for the user."""


_SUPPORTED = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)


def load_private_key(data: bytes, *, password: bytes | None = None) -> PrivateKey:
    """An RSA, ECDSA, Ed25519 or Ed448 private key from PEM (PKCS#8, PKCS#1, SEC 1, OpenSSH) or
    DER (PKCS#8, PKCS#1, SEC 1)."""
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
        loader = serialization.load_ssh_private_key
    elif b"-----BEGIN" in data:
        loader = serialization.load_pem_private_key  # type: ignore[assignment]
    else:
        loader = serialization.load_der_private_key  # type: ignore[assignment]
    try:
        key = loader(data, password)
    except TypeError as e:
        # cryptography: "Password was not given but private key is encrypted" and the reverse
        if password is None:
            raise KeyLoadError("the private key is encrypted: a passphrase is needed") from None
        raise KeyLoadError(f"private key: {e}") from None
    except ValueError as e:
        text = str(e).splitlines()[0] if str(e) else "not a private key"
        if password is not None and "decrypt" in text.lower():
            raise KeyLoadError("the private key did not decrypt with that passphrase") from None
        raise KeyLoadError(f"not a usable private key ({text})") from None
    except UnsupportedAlgorithm as e:
        raise KeyLoadError(f"private key of an unsupported type ({e})") from None
    if not isinstance(key, _SUPPORTED):
        raise KeyLoadError(f"{type(key).__name__.removeprefix('_')} keys cannot sign IKEv2 AUTH; use RSA, ECDSA or EdDSA")
    return key


def load_certificate_chain(data: bytes) -> list[x509.Certificate]:
    """Certificates of a PEM bundle or a DER file, end entity first (issuer links followed)."""
    try:
        certs = load_certificates(data)
    except CertificateDecodeError as e:
        raise KeyLoadError(f"not a certificate file ({e})") from None
    if not certs:
        raise KeyLoadError("no certificate in the file")
    return order_chain(certs)


def _spki(key: PrivateKey | PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, _SUPPORTED) else key
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[union-attr]


def key_matches_certificate(private_key: PrivateKey, cert: x509.Certificate) -> bool:
    """The certificate carries this key's public half (SubjectPublicKeyInfo compared)."""
    return _spki(private_key) == _spki(cert.public_key())  # type: ignore[arg-type]


def key_description(key: PrivateKey | PublicKey) -> str:
    """``RSA-2048``, ``ECDSA secp384r1``, ``Ed25519``: for reports and error messages."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "Ed25519"
    return "Ed448"


@dataclass(frozen=True)
class Credentials:
    """What signing needs: our key and the chain to send in CERT payloads (end entity first)."""

    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    def cert_payloads(self) -> list[tuple[int, bytes]]:
        """(encoding, data) for each CERT payload: X.509 Certificate - Signature (RFC 7296 §3.6)."""
        return [
            (CertEncoding.X509_CERT_SIGNATURE, c.public_bytes(serialization.Encoding.DER)) for c in self.chain
        ]


def load_credentials(key_data: bytes, cert_data: bytes, *, password: bytes | None = None) -> Credentials:
    """Key and certificate chain, checked to belong together (the classic misconfiguration)."""
    key = load_private_key(key_data, password=password)
    chain = load_certificate_chain(cert_data)
    matching = [c for c in chain if key_matches_certificate(key, c)]
    if not matching:
        raise KeyLoadError(
            f"the private key ({key_description(key)}) does not belong to any certificate in the file"
        )
    leaf = matching[0]
    rest = [c for c in chain if c is not leaf]
    return Credentials(key, (leaf, *rest))


def peer_public_key(encoding: int, data: bytes) -> tuple[PublicKey, x509.Certificate | None]:
    """The key to verify the peer's AUTH with, from its first CERT payload: an X.509 certificate
    (4, or 1 for PKCS #7) or a raw public key (15, a DER SubjectPublicKeyInfo, RFC 7670 §3)."""
    if encoding == CertEncoding.RAW_PUBLIC_KEY:
        try:
            pub = serialization.load_der_public_key(data)
        except (ValueError, TypeError) as e:
            raise KeyLoadError(f"raw public key in CERT payload does not decode ({e})") from None
        if not isinstance(pub, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            raise KeyLoadError(f"raw public key of type {type(pub).__name__} cannot verify IKEv2 AUTH")
        return pub, None
    try:
        certs = certificates_from_payload(encoding, data)
    except CertificateDecodeError as e:
        raise KeyLoadError(str(e)) from None
    if not certs:
        raise KeyLoadError(f"CERT encoding {name_of(CertEncoding, encoding)} carries no key we can use")
    pub = certs[0].public_key()
    if not isinstance(pub, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        raise KeyLoadError(f"certificate key of type {type(pub).__name__} cannot verify IKEv2 AUTH")
    return pub, certs[0]
