"""The certificates a message carried, read once for the report (see :class:`CertificateInfo`)."""

from __future__ import annotations

from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.registry import CertEncoding, name_of
from .model import CertificateInfo, IkeSaRecord, MessageRecord


def certificate_infos(encoding: int, data: bytes) -> list[CertificateInfo]:
    """The certificates of one CERT payload (the IKEv2 and IKEv1 encodings share numbers)."""
    # Imported on the first CERT payload: the X.509 stack is 45 ms of start-up that a capture
    # without certificates never needs.
    from ..crypto.x509 import (
        CertificateDecodeError,
        certificates_from_payload,
        dn_text,
        subject_alt_names,
        validity,
    )

    enc = name_of(CertEncoding, encoding)
    try:
        certs = certificates_from_payload(encoding, data)
    except CertificateDecodeError as e:
        return [CertificateInfo(enc, error=str(e))]
    if not certs:
        return [CertificateInfo(enc, size=len(data))]
    out = []
    for c in certs:
        nb, na = validity(c)
        out.append(
            CertificateInfo(
                enc,
                subject=dn_text(c.subject),
                issuer=dn_text(c.issuer),
                not_before=nb,
                not_after=na,
                subject_alt_names=subject_alt_names(c),
                serial=format(c.serial_number, "x"),
            )
        )
    return out


def read_certificates(m: MessageRecord) -> None:
    """Fill ``m.certificates`` from its CERT payloads, outer and decrypted, in message order."""
    m.certificates = [
        info
        for p in m.all_payloads()
        if isinstance(p, v2.CertPayload | v1.V1CertPayload)
        for info in certificate_infos(p.encoding, p.data)
    ]


def read_all_certificates(sas: list[IkeSaRecord]) -> None:
    for sa in sas:
        for ex in sa.exchanges:
            for m in ex.all_messages():
                read_certificates(m)
