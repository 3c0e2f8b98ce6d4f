"""Record strongSwan scenarios the sample set lacks (certificate validity, liveness, rekeys),
with the interop harness's :class:`Lab` and a PKI made here with ``cryptography``.

Needs root, charon, tcpdump and nft like the interop tests; :data:`needs_lab` skips otherwise.
Each recording takes a few seconds.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from corpus import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests" / "interop"))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from harness import Lab, Pki, missing_prerequisites
from swanconf import INITIATOR_ID, RESPONDER_ID, NetOptions, PeerConfig

_missing = missing_prerequisites(need_nft=True)
needs_lab = pytest.mark.skipif(bool(_missing), reason="strongSwan lab needs " + ", ".join(_missing))


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ipsecdiag tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def make_ec_pki(
    directory: Path,
    *,
    now: dt.datetime | None = None,
    validity: dict[str, tuple[dt.timedelta, dt.timedelta]] | None = None,
    sans: dict[str, list[str]] | None = None,
    foreign_ca: str | None = None,
) -> Pki:
    """A CA and ECDSA P-256 end-entity certificates for ``initiator``/``responder``.

    ``validity[role] = (not_before offset, not_after offset)`` relative to ``now``;
    ``sans[role]`` replaces the role's default dNSName (its IKE identity); ``foreign_ca`` names
    the role whose certificate a second CA (``foreign-ca.crt``, trusted by nobody) issues.
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.UTC)
    validity = validity or {}
    sans = sans or {}
    pki = Pki(directory)
    cas = {
        name: _make_ca(pki, name, cn, now)
        for name, cn in (("ca", "ipsecdiag test CA"), ("foreign-ca", "foreign CA"))
    }
    for role, ident, eku in (
        ("initiator", INITIATOR_ID, ExtendedKeyUsageOID.CLIENT_AUTH),
        ("responder", RESPONDER_ID, ExtendedKeyUsageOID.SERVER_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        ca_key, ca_name = cas["foreign-ca" if role == foreign_ca else "ca"]
        nb, na = validity.get(role, (dt.timedelta(days=-1), dt.timedelta(days=365)))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(ident))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + nb)
            .not_valid_after(now + na)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in sans.get(role, [ident])]),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        pki.cert(role).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(pki.key(role), key)
    return pki


def _make_ca(pki: Pki, name: str, cn: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pki.cert(name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.key(name), key)
    return key, subject


@dataclass(frozen=True)
class LabRun:
    pcap: Path
    initiator_log: Path
    responder_log: Path
    cas: list[Path]  # the lab CA first, then the foreign CA
    initiated: bool


def record_lab(
    outdir: Path,
    name: str,
    *,
    initiator: PeerConfig,
    responder: PeerConfig,
    pki: Callable[[Path], Pki] | None = None,
    net: NetOptions | None = None,
    action: Callable[[Lab], None] | None = None,
    initiate_timeout: float = 15.0,
) -> LabRun:
    """Start both peers, capture, initiate, run ``action`` (e.g. kill a peer), then stop."""
    import shutil

    outdir.mkdir(parents=True, exist_ok=True)
    work = outdir / f"{name}.work"
    if work.exists():
        shutil.rmtree(work)  # a stale vici socket would make the harness think charon is up
    pcap = outdir / f"{name}.pcap"
    with Lab(work, net or NetOptions()) as lab:
        p = pki(work / "pki") if pki is not None else None
        lab.start_peer("responder", responder, p)
        lab.start_peer("initiator", initiator, p)
        lab.start_capture(pcap)
        time.sleep(0.2)
        res = lab.initiate(initiate_timeout)
        if action is not None:
            action(lab)
        time.sleep(0.3)
        lab.stop_capture()
        for peer in lab.peers.values():
            peer.stop()
    cas: list[Path] = []
    if p is not None:
        for ca_name in ("ca", "foreign-ca"):
            if p.cert(ca_name).exists():
                cas.append(outdir / f"{name}.{ca_name}.crt")
                shutil.copy(p.cert(ca_name), cas[-1])
    return LabRun(pcap, work / "initiator" / "charon.log", work / "responder" / "charon.log", cas, res.ok)
