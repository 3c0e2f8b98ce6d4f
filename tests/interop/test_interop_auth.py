"""strongSwan's AUTH payloads, checked by ipsecdiag.crypto.auth: every method charon produces.

The lab corpus only holds RSA PKCS#1 v1.5 under RFC 7427. Here charon authenticates both ways
with RSA-PSS, ECDSA and Ed25519 keys under RFC 7427, and with RSA and ECDSA under the classic
methods (``charon.signature_authentication = no``); the capture and charon's logged SK_pi/SK_pr
give each side's signed octets, and verify_auth must accept charon's AUTH with the peer's
certificate and reject it with the other side's. The shared key MIC is checked with every PRF
charon offers and after EAP without an MSK. The certificates are made here with
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
from swanconf import CHARON_PLUGINS, DEFAULT_PSK, INITIATOR_ID, RESPONDER_ID, PeerConfig

from ipsecdiag.crypto.auth import AuthError, describe_auth, eap_auth, psk_auth, psk_verifies, verify_auth
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
    pcap, keys = _run(tmp_path, PeerConfig(auth="pubkey", charon_extra=extra), pki)
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


def _run(tmp_path: Path, cfg: PeerConfig, pki: Pki | None = None, edits: dict[str, tuple[str, str]] | None = None) -> tuple[Path, IkeSaKeys]:
    """One initiate through a fresh lab: the capture and the initiator's logged IKE SA keys.

    ``edits`` rewrites a role's generated swanctl.conf (old text -> new text, secrets appended)
    and reloads it, for what PeerConfig cannot say (different auth on the two sides)."""
    pcap = tmp_path / "auth.pcap"
    with Lab(tmp_path / "lab") as lab:
        for role in ("responder", "initiator"):
            peer = lab.start_peer(role, cfg, pki)
            if edits and role in edits:
                conf = peer.directory / "swanctl" / "swanctl.conf"
                old, new = edits[role]
                text = conf.read_text()
                assert old in text, f"{role} swanctl.conf changed shape"
                conf.write_text(text.replace(old, new) + _EAP_SECRET)
                peer.swanctl("--load-all", "--noprompt", check=True)
        lab.start_capture(pcap)
        time.sleep(0.2)
        result = lab.initiate(timeout=15)
        time.sleep(0.3)
        lab.stop_capture()
        log = lab.peer("initiator").log
        for peer in lab.peers.values():
            peer.stop()
        assert result.ok, result.output[-2000:]
        return pcap, next(k for k in load_keys(log) if isinstance(k, IkeSaKeys))


# PSK across every PRF charon offers: AES-XCBC and AES-CMAC take the 25-octet PSK through their
# key rules (RFC 4434 §2, RFC 4615 §3), the HMACs through RFC 2104.
PRF_PROPOSALS = [
    "aes128-sha256-prfaesxcbc-modp2048",
    "aes128-sha256-prfaescmac-modp2048",
    "aes128-sha1-prfsha1-modp2048",
    "aes256gcm16-prfsha384-curve25519",
    "aes256-sha512-prfsha512-ecp384",
]


@pytest.mark.interop
@needs_lab
@pytest.mark.parametrize("proposal", PRF_PROPOSALS)
def test_strongswan_psk_auth_every_prf(tmp_path: Path, proposal: str) -> None:
    cfg = PeerConfig(auth="psk", proposals=proposal, charon_extra=(("load", CHARON_PLUGINS + " xcbc cmac"),))
    pcap, keys = _run(tmp_path, cfg)
    s = session(pcap, keys)
    for initiator in (True, False):
        auth = s.auth(initiator)
        assert auth is not None and auth[0] == AuthMethod.SHARED_KEY_MIC
        assert psk_auth(keys.prf, DEFAULT_PSK.encode(), s.octets(initiator)) == auth[1]
        assert not psk_verifies(keys.prf, DEFAULT_PSK.encode() + b" ", auth[1], s.octets(initiator))


_EAP_SECRET = '\nsecrets {\n  eap-1 {\n    id = client.example\n    secret = "ipsecdiag-eap-md5-3e1"\n  }\n}\n'


@pytest.mark.interop
@needs_lab
def test_strongswan_eap_without_msk_auth(tmp_path: Path) -> None:
    # EAP-MD5 makes no MSK, so after EAP both AUTH payloads are shared key MICs keyed with the
    # sender's SK_pi / SK_pr (RFC 7296 §2.16). The gateway first signs with its certificate.
    pki = _pki(tmp_path / "pki", "rsa")
    cfg = PeerConfig(auth="pubkey", charon_extra=(("load", CHARON_PLUGINS + " eap-md5 eap-identity"),))
    edits = {
        "responder": (
            "remote {\n      auth = pubkey\n      id = client.example",
            "remote {\n      auth = eap-md5\n      eap_id = %any",
        ),
        "initiator": (
            "local {\n      auth = pubkey\n      id = client.example\n      certs = initiator.crt",
            "local {\n      auth = eap-md5\n      id = client.example",
        ),
    }
    pcap, keys = _run(tmp_path, cfg, pki, edits)
    s = session(pcap, keys)
    for initiator in (True, False):
        auth = s.auth(initiator)  # the last AUTH each side sent: the one after EAP
        assert auth is not None and auth[0] == AuthMethod.SHARED_KEY_MIC
        sk = (keys.sk_pi if initiator else keys.sk_pr).reveal()
        assert eap_auth(keys.prf, None, sk, s.octets(initiator)) == auth[1]
        assert eap_auth(keys.prf, b"\x00" * 64, sk, s.octets(initiator)) != auth[1]
