"""Certificate chains as sent in CERT payloads, with the identity each sender claimed: read by
the certificate check and by capture health (undecodable certificates)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..reconstruction.model import ExchangeRecord, IkeSaRecord, MessageRecord
from ..wire import ikev1 as v1
from ..wire import ikev2 as v2
from ..wire.registry import ExchangeType, IdType, V1IdType
from .common import payloads_of, role

if TYPE_CHECKING:
    from cryptography import x509

# IKEv1 ID types that mean the same thing as IKEv2's (RFC 2407 §4.6.2.1 vs RFC 7296 §3.5).
_V1_TO_V2_ID = {
    V1IdType.ID_IPV4_ADDR: IdType.ID_IPV4_ADDR,
    V1IdType.ID_FQDN: IdType.ID_FQDN,
    V1IdType.ID_USER_FQDN: IdType.ID_RFC822_ADDR,
    V1IdType.ID_IPV6_ADDR: IdType.ID_IPV6_ADDR,
    V1IdType.ID_DER_ASN1_DN: IdType.ID_DER_ASN1_DN,
}


@dataclass
class SentChain:
    """The certificates one side sent in one message, with the identity it claimed there."""

    sa: IkeSaRecord
    ex: ExchangeRecord
    m: MessageRecord
    certs: list[x509.Certificate]
    id_type: int | None = None
    id_data: bytes = b""
    id_text: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def sender(self) -> str:
        return role(self.m)

    @property
    def verifier(self) -> str:
        return "responder" if self.sender == "initiator" else "initiator"


def sent_chains(sa: IkeSaRecord) -> list[SentChain]:
    out: list[SentChain] = []
    for ex in sa.exchanges:
        if sa.version == 2 and ex.exchange_type != ExchangeType.IKE_AUTH:
            continue
        if sa.version == 1 and ex.message_id != 0:
            continue
        for m in ex.all_messages():
            certs: list[x509.Certificate] = []
            errors: list[str] = []
            for p in payloads_of(m, v2.CertPayload, v1.V1CertPayload):
                # Imported here, on the first CERT payload: the X.509 stack is 45 ms of start-up
                # that a capture without certificates never needs.
                from ..crypto import x509 as cx

                try:
                    certs += cx.certificates_from_payload(p.encoding, p.data)
                except cx.CertificateDecodeError as e:
                    errors.append(str(e))
            if not certs and not errors:
                continue
            chain = SentChain(sa, ex, m, certs, errors=errors)
            ident = _claimed_id(sa, m)
            if ident is not None:
                chain.id_type, chain.id_data, chain.id_text = ident
            out.append(chain)
    return out


def _claimed_id(sa: IkeSaRecord, m: MessageRecord) -> tuple[int, bytes, str] | None:
    if sa.version == 2:
        which = 35 if m.from_initiator else 36
        p = next((p for p in payloads_of(m, v2.IdPayload) if p.which == which), None)
        return (p.id_type, p.data, f"{'IDi' if which == 35 else 'IDr'} {p.display()}") if p else None
    q = next(iter(payloads_of(m, v1.V1IdPayload)), None)
    if q is None or q.id_type not in _V1_TO_V2_ID:
        return None
    return int(_V1_TO_V2_ID[q.id_type]), q.data, f"ID {q.display()}"
