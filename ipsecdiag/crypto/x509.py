"""X.509 helpers for certificate diagnosis: CERT payload decoding, validity at a given time,
IKE identity vs certificate (RFC 4945 §3.1), CERTREQ CA hashes (RFC 7296 §3.7) and usages.

Pure functions over bytes and numbers: the caller passes the time (capture timestamps) and
file contents.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from ..wire.dn import der_dn_text
from ..wire.registry import CertEncoding, IdType

# RFC 4945 §5.1.3.12: id-kp-ipsecIKE; Microsoft's "IP security IKE intermediate".
EKU_IPSEC_IKE = ObjectIdentifier("1.3.6.1.5.5.7.3.17")
EKU_IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    EKU_IPSEC_IKE: "ipsecIKE",
    EKU_IKE_INTERMEDIATE: "ikeIntermediate",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


class CertificateDecodeError(ValueError):
    """A CERT payload whose contents are not a certificate we can read."""


def certificates_from_payload(encoding: int, data: bytes) -> list[x509.Certificate]:
    """The certificates in an IKEv2/IKEv1 CERT payload (the encodings share numbers).

    X.509 Certificate - Signature (4) is one DER certificate; PKCS #7 wrapped (1) a SignedData
    bundle. Other encodings (hash-and-URL, raw keys, CRLs) carry no certificate to check and
    give an empty list.
    """
    try:
        if encoding == CertEncoding.X509_CERT_SIGNATURE:
            certs = [x509.load_der_x509_certificate(data)]
        elif encoding == CertEncoding.PKCS7_WRAPPED_X509:
            certs = list(pkcs7.load_der_pkcs7_certificates(data))
        else:
            return []
    except ValueError as e:
        raise CertificateDecodeError(f"CERT encoding {encoding}: {e}") from None
    for n, c in enumerate(certs, 1):
        _check_readable(c, n, encoding)
    # a SET OF: DER sorts it, so the end entity is found by the issuer links
    return order_chain(certs)


def _check_readable(cert: x509.Certificate, n: int, encoding: int) -> None:
    """cryptography parses names, extensions and validity lazily and raises ValueError on first
    access; touch them here, so a damaged certificate is one CertificateDecodeError naming it
    instead of an exception inside whichever check reads the broken field first."""
    try:
        cert.extensions  # noqa: B018 - parsed on access
        dn_text(cert.subject)
        dn_text(cert.issuer)
        validity(cert)
        return
    except ValueError as e:
        reason = str(e)
    try:
        who = f"subject {dn_text(cert.subject)}, serial {cert.serial_number:x}"
    except ValueError:
        who = f"serial {cert.serial_number:x}"
    raise CertificateDecodeError(f"CERT encoding {encoding}: certificate {n} ({who}): {reason}")


def order_chain(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """End entity first, then each issuer found in the set; leftovers keep their order."""
    if len(certs) < 2:
        return list(certs)
    issuers = {c.issuer for c in certs if c.issuer != c.subject}
    leaves = [c for c in certs if c.subject not in issuers] or certs
    chain = [leaves[0]]
    while True:
        nxt = next((c for c in certs if c not in chain and c.subject == chain[-1].issuer), None)
        if nxt is None or chain[-1].issuer == chain[-1].subject:
            break
        chain.append(nxt)
    return chain + [c for c in certs if c not in chain]


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file (several allowed) or a DER file."""
    if b"-----BEGIN" in data:
        try:
            return list(x509.load_pem_x509_certificates(data))
        except ValueError as e:
            raise CertificateDecodeError(f"PEM: {e}") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError as e:
        raise CertificateDecodeError(f"DER: {e}") from None


def dn_text(name: x509.Name) -> str:
    """A Name in encoding order, strongSwan style: ``C=XX, O=Lab, CN=moon``.

    The one DN formatter: the same walker that shows ID_DER_ASN1_DN identities
    (:func:`ipsecdiag.wire.dn.der_dn_text`), so a certificate subject and the IKE identity
    naming it read alike in one finding (``E=`` rather than an OID in hex, no RFC 4514
    escaping). A name that walker cannot show falls back to RFC 4514 text per RDN."""
    return der_dn_text(name.public_bytes()) or ", ".join(rdn.rfc4514_string() for rdn in name.rdns)


def spki_sha1(cert: x509.Certificate) -> bytes:
    """SHA-1 of the DER SubjectPublicKeyInfo: what CERTREQ lists per CA (RFC 7296 §3.7)."""
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha1(der).digest()


def validity(cert: x509.Certificate) -> tuple[float, float]:
    """notBefore and notAfter as POSIX timestamps."""
    return cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()


@dataclass(frozen=True)
class ValidityProblem:
    kind: str  # "not-yet-valid" | "expired"
    seconds: float  # how far outside the validity period ``at`` lies


def validity_problem(cert: x509.Certificate, at: float) -> ValidityProblem | None:
    nb, na = validity(cert)
    if at < nb:
        return ValidityProblem("not-yet-valid", nb - at)
    if at > na:
        return ValidityProblem("expired", at - na)
    return None


def duration_text(seconds: float) -> str:
    """``3 h 12 min``, ``45 s``, ``2 d 4 h``: coarse, for people."""
    s = int(round(seconds))
    if s < 120:
        return f"{s} s"
    m = s // 60
    if m < 120:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def subject_alt_names(cert: x509.Certificate) -> dict[str, list[str]]:
    """SAN entries by kind: dns, ip, email, dn, uri."""
    out: dict[str, list[str]] = {"dns": [], "ip": [], "email": [], "dn": [], "uri": []}
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return out
    out["dns"] = [str(v) for v in san.get_values_for_type(x509.DNSName)]
    out["ip"] = [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    out["email"] = [str(v) for v in san.get_values_for_type(x509.RFC822Name)]
    out["dn"] = [dn_text(v) for v in san.get_values_for_type(x509.DirectoryName)]
    out["uri"] = [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
    return out


def common_names(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]


@dataclass(frozen=True)
class IdMatch:
    matched: bool | None  # None: this identity type cannot be checked against a certificate
    against: str  # what it was compared with ("subjectAltName dNSName", "subject DN")
    candidates: tuple[str, ...]  # the certificate's values of that kind
    note: str = ""


def match_identity(id_type: int, data: bytes, cert: x509.Certificate) -> IdMatch:
    """RFC 4945 §3.1: which certificate field must contain an IKE identity of this type.

    ID_FQDN <-> dNSName, ID_RFC822_ADDR <-> rfc822Name, ID_IPV4/6_ADDR <-> iPAddress (all in
    subjectAltName), ID_DER_ASN1_DN <-> subject (or a directoryName SAN). An FQDN found only in
    the subject's CN does not count: implementations compare SANs (strongSwan, RFC 4945
    §3.2.3), which is a frequent cause of failure with web-style certificates.
    """
    sans = subject_alt_names(cert)
    if id_type == IdType.ID_FQDN:
        name = data.decode("ascii", "replace").lower().rstrip(".")
        cands = tuple(sans["dns"])
        ok = any(c.lower().rstrip(".") == name for c in cands)
        note = ""
        if not ok and any(cn.lower() == name for cn in common_names(cert)):
            note = "the name is in the subject CN only; IKE peers match FQDN identities against dNSName SANs"
        return IdMatch(ok, "subjectAltName dNSName", cands, note)
    if id_type == IdType.ID_RFC822_ADDR:
        mail = data.decode("utf-8", "replace").lower()
        cands = tuple(sans["email"])
        return IdMatch(any(c.lower() == mail for c in cands), "subjectAltName rfc822Name", cands)
    if id_type in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR) and len(data) in (4, 16):
        addr = ipaddress.ip_address(data)
        cands = tuple(sans["ip"])
        return IdMatch(any(ipaddress.ip_address(c) == addr for c in cands), "subjectAltName iPAddress", cands)
    if id_type == IdType.ID_DER_ASN1_DN:
        try:
            wanted = x509.Name.from_bytes(data)  # type: ignore[attr-defined]
        except ValueError:
            return IdMatch(None, "subject DN", (dn_text(cert.subject),), "the ID is not a valid DER DN")
        cands = (dn_text(cert.subject), *sans["dn"])
        ok = wanted == cert.subject or dn_text(wanted) in sans["dn"]
        return IdMatch(ok, "subject DN", cands)
    return IdMatch(None, "", ())


def extended_key_usages(cert: x509.Certificate) -> list[str] | None:
    """EKU names (dotted OIDs for unknown ones); None when the extension is absent."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return [_EKU_NAMES.get(o, o.dotted_string) for o in eku]


def key_usage_allows_signing(cert: x509.Certificate) -> bool | None:
    """digitalSignature (or nonRepudiation) in keyUsage; None when keyUsage is absent."""
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return bool(ku.digital_signature or ku.content_commitment)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer`` signed ``cert`` (names chain and the signature verifies)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        # ValueError: names do not chain; TypeError: unsupported key type
        return False
    return True
