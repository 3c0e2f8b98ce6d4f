"""IKEv1 probes for ``probe scan``: one Main Mode and one Aggressive Mode first message.

Main Mode (RFC 2409 §5) message 1 carries only an SA offer, so any IKEv1 responder answers it
with its choice (message 2) or a NO-PROPOSAL-CHOSEN notify, and keeps a half-open SA that it
retransmits until it gives up: the spacing of those retransmissions is the fingerprint ike-scan
made known (``--backoff``). Aggressive Mode message 1 carries SA, KE, Nonce and an identity; a
responder that answers with its KE, Nonce, ID and HASH_R has revealed a value an attacker can
test pre-shared key guesses against offline (RFC 2409 §5.4; CVE-2002-1623), which the scan
flags. The offers are fixed lists of common phase 1 transforms, built with the wire codecs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..crypto.ke import new_key_exchange
from ..crypto.rng import RandomSource
from ..protocol.suites import Suite, suites_from_v1
from ..wire.errors import WireError
from ..wire.ikev1 import parse_v1_message, serialize_v1_message
from ..wire.ikev1_payloads import (
    IsakmpHeader,
    V1Attribute,
    V1HashPayload,
    V1IdPayload,
    V1KePayload,
    V1Message,
    V1NoncePayload,
    V1NotifyPayload,
    V1Proposal,
    V1SaPayload,
    V1Transform,
    V1VendorIdPayload,
)
from ..wire.registry import (
    KeGroup,
    V1AttrClass,
    V1AuthMethod,
    V1Doi,
    V1EncrAlg,
    V1Exchange,
    V1HashAlg,
    V1IdType,
    V1LifeType,
    V1ProtocolId,
    V1Situation,
)
from ..wire.vendors import KNOWN_VENDOR_IDS, identify_vendor

_KEY_IKE = 1  # transform id KEY_IKE (RFC 2407 §4.4.2)
# (encryption, key bits, hash, authentication, group): common phase 1 choices, strongest first
MAIN_OFFER = (
    (V1EncrAlg.AES_CBC, 256, V1HashAlg.SHA2_256, V1AuthMethod.PRE_SHARED_KEY, KeGroup.MODP_2048),
    (V1EncrAlg.AES_CBC, 256, V1HashAlg.SHA2_256, V1AuthMethod.RSA_SIGNATURES, KeGroup.MODP_2048),
    (V1EncrAlg.AES_CBC, 128, V1HashAlg.SHA, V1AuthMethod.PRE_SHARED_KEY, KeGroup.MODP_2048),
    (V1EncrAlg.AES_CBC, 128, V1HashAlg.SHA, V1AuthMethod.RSA_SIGNATURES, KeGroup.MODP_2048),
    (V1EncrAlg.AES_CBC, 256, V1HashAlg.SHA2_256, V1AuthMethod.PRE_SHARED_KEY, KeGroup.ECP_256),
    (V1EncrAlg.AES_CBC, 128, V1HashAlg.SHA, V1AuthMethod.PRE_SHARED_KEY, KeGroup.MODP_1536),
    (V1EncrAlg.AES_CBC, 128, V1HashAlg.SHA, V1AuthMethod.PRE_SHARED_KEY, KeGroup.MODP_1024),
    (V1EncrAlg.TRIPLE_DES_CBC, None, V1HashAlg.SHA, V1AuthMethod.PRE_SHARED_KEY, KeGroup.MODP_1024),
    (V1EncrAlg.TRIPLE_DES_CBC, None, V1HashAlg.MD5, V1AuthMethod.PRE_SHARED_KEY, KeGroup.MODP_1024),
    (V1EncrAlg.TRIPLE_DES_CBC, None, V1HashAlg.SHA, V1AuthMethod.RSA_SIGNATURES, KeGroup.MODP_1024),
    (V1EncrAlg.DES_CBC, None, V1HashAlg.MD5, V1AuthMethod.PRE_SHARED_KEY, KeGroup.MODP_768),
)
AGGRESSIVE_GROUP = KeGroup.MODP_2048  # every transform of an Aggressive Mode offer shares the KE group
AGGRESSIVE_ID = b"ipsecdiag-scan"


def _vid(name: str) -> bytes:
    return next(e.value for e in KNOWN_VENDOR_IDS if e.name == name)


def _our_vendor_ids() -> tuple[V1VendorIdPayload, ...]:
    # NAT-T, DPD 1.0 and fragmentation: peers often answer with their own only when offered
    return (
        V1VendorIdPayload(_vid("NAT-T (RFC 3947)")),
        V1VendorIdPayload(_vid("DPD (RFC 3706)") + b"\x01\x00"),
        V1VendorIdPayload(_vid("FRAGMENTATION")),
    )


def _transform(n: int, encr: int, bits: int | None, hash_: int, auth: int, group: int) -> V1Transform:
    attrs = [V1Attribute(V1AttrClass.ENCRYPTION_ALGORITHM, int(encr), True)]
    if bits:
        attrs.append(V1Attribute(V1AttrClass.KEY_LENGTH, bits, True))
    attrs += [
        V1Attribute(V1AttrClass.HASH_ALGORITHM, int(hash_), True),
        V1Attribute(V1AttrClass.AUTHENTICATION_METHOD, int(auth), True),
        V1Attribute(V1AttrClass.GROUP_DESCRIPTION, int(group), True),
        V1Attribute(V1AttrClass.LIFE_TYPE, int(V1LifeType.SECONDS), True),
        V1Attribute(V1AttrClass.LIFE_DURATION, 28800, True),
    ]
    return V1Transform(n, _KEY_IKE, tuple(attrs))


def _sa(rows: tuple[tuple[int, int | None, int, int, int], ...]) -> V1SaPayload:
    transforms = tuple(_transform(i, *row) for i, row in enumerate(rows, 1))
    return V1SaPayload(
        int(V1Doi.IPSEC),
        int(V1Situation.SIT_IDENTITY_ONLY),
        (V1Proposal(1, int(V1ProtocolId.PROTO_ISAKMP), b"", transforms),),
    )


def _header(cookie_i: bytes, exchange: int) -> IsakmpHeader:
    return IsakmpHeader(cookie_i, bytes(8), 0, 1, 0, exchange, 0, 0, 0)


def main_mode_request(cookie_i: bytes) -> bytes:
    """Main Mode message 1: SA offer (:data:`MAIN_OFFER`) and our vendor IDs."""
    msg = V1Message(_header(cookie_i, V1Exchange.MAIN_MODE), (_sa(MAIN_OFFER), *_our_vendor_ids()))
    return serialize_v1_message(msg)


def aggressive_request(cookie_i: bytes, rng: RandomSource, identity: bytes = AGGRESSIVE_ID) -> bytes:
    """Aggressive Mode message 1: SA (PSK transforms of one group), KE, Ni, IDi (FQDN, or
    USER_FQDN when ``identity`` holds an @): a gateway picks its PSK by this identity."""
    rows = tuple(r for r in MAIN_OFFER if r[3] == V1AuthMethod.PRE_SHARED_KEY and r[4] == AGGRESSIVE_GROUP)
    ke = new_key_exchange(AGGRESSIVE_GROUP, rng).public_value()
    payloads = (
        _sa(rows),
        V1KePayload(ke),
        V1NoncePayload(rng.bytes(32)),
        V1IdPayload(int(V1IdType.ID_USER_FQDN if b"@" in identity else V1IdType.ID_FQDN), 17, 500, identity),
        *_our_vendor_ids(),
    )
    return serialize_v1_message(V1Message(_header(cookie_i, V1Exchange.AGGRESSIVE_MODE), payloads))


@dataclass
class V1Answer:
    """What one IKEv1 probe got back."""

    mode: str  # "main" / "aggressive"
    answered: bool = False
    chosen: Suite | None = None
    notifies: list[str] = field(default_factory=list)
    vendor_ids: list[bytes] = field(default_factory=list)
    reveals_hash: bool = False  # Aggressive Mode answer with HASH_R (offline PSK attack)
    cookie_r: bytes = b""
    malformed: str = ""


def classify(mode: str, data: bytes) -> V1Answer:
    """Read an IKEv1 answer (plaintext phase 1 message or informational notify)."""
    out = V1Answer(mode)
    try:
        msg = parse_v1_message(data)
    except (WireError, ValueError) as e:
        out.malformed = str(e)
        return out
    out.answered, out.cookie_r = True, msg.header.cookie_r
    for p in msg.payloads:
        if isinstance(p, V1SaPayload):
            suites = suites_from_v1(p)
            out.chosen = suites[0] if suites else None
        elif isinstance(p, V1NotifyPayload):
            out.notifies.append(p.name)
        elif isinstance(p, V1VendorIdPayload):
            out.vendor_ids.append(p.data)
        elif isinstance(p, V1HashPayload) and mode == "aggressive":
            out.reveals_hash = True
    return out


def vendor_name(data: bytes) -> str | None:
    return identify_vendor(data)


__all__ = [
    "AGGRESSIVE_ID",
    "MAIN_OFFER",
    "V1Answer",
    "aggressive_request",
    "classify",
    "main_mode_request",
    "vendor_name",
]
