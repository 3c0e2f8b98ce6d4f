"""strongSwan's signatures, checked by ipsecdiag.crypto.auth: every AUTH method charon produces.

The lab corpus only holds RSA PKCS#1 v1.5 under RFC 7427. Here charon authenticates both ways
with RSA-PSS, ECDSA and Ed25519 keys under RFC 7427, and with RSA and ECDSA under the classic
methods (``charon.signature_authentication = no``); the capture and charon's logged SK_pi/SK_pr
give each side's signed octets, and verify_auth must accept charon's AUTH with the peer's
certificate and reject it with the other side's. The certificates are made here with
``cryptography`` (an issuer of the leaf's own key type).
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest
from auth_session import session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from harness import Lab, Pki, missing_prerequisites
from swanconf import INITIATOR_ID, RESPONDER_ID, PeerConfig

from ipsecdiag.crypto.auth import AuthError, describe_auth, verify_auth
from ipsecdiag.keys.load import load_keys
from ipsecdiag.keys.model import IkeSaKeys
from ipsecdiag.wire.registry import AuthMethod

_missing = missing_prerequisites()
needs_lab = pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing))

_NEW_KEY = {
    "rsa": lambda: rsa.generate_private_key(65537, 2048),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def _pki(directory: Path, kind: str) -> Pki:
    """CA + initiator/responder certificates (FQDN subjectAltNames = the lab IDs), PKCS#8 keys."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _NEW_KEY[kind]()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"auth test CA {kind}")])
    algo = None if kind == "ed25519" else hashes.SHA256()

    def build(subject: x509.Name, key_pub: object, serial: int) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key_pub)  # type: ignore[arg-type]
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
        )

    ca = build(ca_name, ca_key.public_key(), 1).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    pem = serialization.Encoding.PEM
    (directory / "ca.crt").write_bytes(ca.sign(ca_key, algo).public_bytes(pem))  # type: ignore[arg-type]
    for serial, (role, ident) in enumerate((("initiator", INITIATOR_ID), ("responder", RESPONDER_ID)), 2):
        key = _NEW_KEY[kind]()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ident)])
        leaf = build(name, key.public_key(), serial).add_extension(
            x509.SubjectAlternativeName([x509.DNSName(ident)]), False
        )
        (directory / f"{role}.crt").write_bytes(leaf.sign(ca_key, algo).public_bytes(pem))  # type: ignore[arg-type]
        raw = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        (directory / f"{role}.key").write_bytes(raw)
    return Pki(directory)


CASES = [
    # kind, charon settings, expected method, expected scheme text (describe_auth)
    ("rsa", (("rsa_pss", "yes"),), AuthMethod.DIGITAL_SIGNATURE, "RSA_EMSA_PSS_SHA2_256"),
    ("rsa", (("signature_authentication", "no"),), AuthMethod.RSA_DIGITAL_SIGNATURE, "RSA_DIGITAL_SIGNATURE"),
    ("p256", (), AuthMethod.DIGITAL_SIGNATURE, "ECDSA_WITH_SHA2_256_DER"),
    ("p384", (("signature_authentication", "no"),), AuthMethod.ECDSA_SHA384_P384, "ECDSA_SHA384_P384"),
    ("ed25519", (), AuthMethod.DIGITAL_SIGNATURE, "ED25519"),
]


@pytest.mark.interop
@needs_lab
@pytest.mark.parametrize(("kind", "extra", "method", "text"), CASES, ids=[c[-1] for c in CASES])
def test_strongswan_auth_verifies(
    tmp_path: Path, kind: str, extra: tuple[tuple[str, str], ...], method: int, text: str
) -> None:
    pki = _pki(tmp_path / "pki", kind)
    cfg = PeerConfig(auth="pubkey", charon_extra=extra)
    pcap = tmp_path / "auth.pcap"
    with Lab(tmp_path / "lab") as lab:
        lab.start_peer("responder", cfg, pki)
        lab.start_peer("initiator", cfg, pki)
        lab.start_capture(pcap)
        time.sleep(0.2)
        result = lab.initiate(timeout=15)
        time.sleep(0.3)
        lab.stop_capture()
        log = lab.peer("initiator").log
        for peer in lab.peers.values():
            peer.stop()
        assert result.ok, result.output[-2000:]
        keys = next(k for k in load_keys(log) if isinstance(k, IkeSaKeys))
    s = session(pcap, keys)
    certs = {True: x509.load_pem_x509_certificate(pki.cert("initiator").read_bytes()),
             False: x509.load_pem_x509_certificate(pki.cert("responder").read_bytes())}
    for initiator in (True, False):
        auth = s.auth(initiator)
        assert auth is not None, "no AUTH payload decrypted"
        assert auth[0] == method and describe_auth(*auth) == text
        verify_auth(auth[0], auth[1], s.octets(initiator), public_key=certs[initiator])
        with pytest.raises(AuthError, match="signature invalid"):
            verify_auth(auth[0], auth[1], s.octets(initiator), public_key=certs[not initiator])
