"""Small helpers shared by the exchange modules.

They live here, below every exchange module, so that the exchange modules only import forwards
(IKE_SA_INIT -> IKE_INTERMEDIATE -> IKE_AUTH) and never back: no import cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ..crypto.prf import derive_ike_sa_keys
from ..crypto.x509 import load_certificates, spki_sha1
from ..keys.model import IkeSaKeys
from ..protocol.select import transform_of
from ..wire.ikev2 import Payload
from ..wire.ikev2_payloads import CertReqPayload
from ..wire.ikev2_sa import Proposal
from ..wire.registry import CertEncoding, KeGroup, TransformType, name_of

if TYPE_CHECKING:
    from .negotiation import Negotiation

P = TypeVar("P", bound=Payload)


def one(payloads: tuple[Payload, ...], cls: type[P], which: int | None = None) -> P | None:
    """The first payload of class ``cls`` (and of payload type ``which`` when given), or None."""
    for p in payloads:
        if isinstance(p, cls) and (which is None or p.payload_type == which):
            return p
    return None


def ike_sa_keys(
    chosen: Proposal,
    seed: bytes,
    ni: bytes,
    nr: bytes,
    spi_i: bytes,
    spi_r: bytes,
    *,
    prf_id: int | None = None,
) -> IkeSaKeys:
    """The RFC 7296 §2.14 keys from SKEYSEED for the algorithms of the chosen IKE proposal.

    ``prf_id`` overrides the proposal's PRF: the key update after an additional key exchange
    (RFC 9370 §2.2.2) uses the PRF the IKE SA already keys with."""
    encr = transform_of(chosen, TransformType.ENCR)
    integ = transform_of(chosen, TransformType.INTEG)
    if prf_id is None:
        prf_t = transform_of(chosen, TransformType.PRF)
        assert prf_t is not None
        prf_id = prf_t.id
    assert encr is not None
    return derive_ike_sa_keys(
        prf_id=prf_id,
        encr_id=encr.id,
        integ_id=integ.id if integ is not None else 0,
        skeyseed_value=seed,
        ni=ni,
        nr=nr,
        spi_i=spi_i,
        spi_r=spi_r,
        encr_key_bits=encr.key_length,
    )


def name_of_group(group: int | None) -> str:
    return "none" if group is None else name_of(KeGroup, group)


def certreq(ca_certs: tuple[bytes, ...]) -> CertReqPayload:
    """CERTREQ with the SHA-1 hashes of our trust anchors' public keys (RFC 7296 §3.7)."""
    hashes = b"".join(spki_sha1(c) for der in ca_certs for c in load_certificates(der))
    return CertReqPayload(CertEncoding.X509_CERT_SIGNATURE, hashes)


def int_auth(neg: Negotiation, auth_message_id: int) -> bytes:
    """What RFC 9242 appends to both sides' signed octets; empty without IKE_INTERMEDIATE."""
    if not neg.int_auth_i and not neg.int_auth_r:
        return b""
    return neg.int_auth_i + neg.int_auth_r + auth_message_id.to_bytes(4, "big")
