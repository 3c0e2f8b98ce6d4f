"""What an IKE SA is configured with: proposals, identities, credentials, selectors, policies.

Everything here is plain frozen data that the caller (``probe``, tests) builds once; the engine
never reads files, clocks or the network. Proposals are wire :class:`~ipsecdiag.wire.ikev2_sa.Proposal`
objects (``protocol.proposal_strings.parse_proposals`` turns strongSwan strings into them);
selectors are wire :class:`~ipsecdiag.wire.ikev2_ts.TrafficSelector` objects.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import Enum

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..keys.model import SecretBytes
from ..wire.ikev2_sa import Proposal
from ..wire.ikev2_ts import TrafficSelector
from ..wire.registry import IdType, TsType

__all__ = [
    "CertAuth",
    "ChildConfig",
    "EapAuth",
    "Endpoint",
    "Identity",
    "IkeConfig",
    "PskAuth",
    "RetransmitPolicy",
    "Role",
    "selector_for",
]


class Role(Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


@dataclass(frozen=True)
class Endpoint:
    """A UDP endpoint: address as text (IPv4 or IPv6) and port.

    ``natt`` says, for one of *our* sockets, whether it is the NAT-T socket whose IKE datagrams
    carry the non-ESP marker (RFC 3948 §2.2): True/False when the caller knows; None (default)
    lets the engine decide by port (the ``local_natt`` port), or, when one socket serves both
    ports' roles, by the datagram itself (marker present) and whether IKE moved to NAT-T.
    It is not part of equality: it describes the socket, not the address.
    """

    host: str
    port: int
    natt: bool | None = field(default=None, compare=False)

    @property
    def packed(self) -> bytes:
        return ipaddress.ip_address(self.host).packed

    def with_port(self, port: int) -> Endpoint:
        return Endpoint(self.host, port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Identity:
    """An IKE identity (RFC 7296 §3.5): ID type and the raw identification data."""

    id_type: int
    data: bytes

    @classmethod
    def parse(cls, text: str) -> Identity:
        """strongSwan-like spelling: an IP address, ``user@host`` (RFC822), ``keyid:<hex>``,
        a DN containing ``=`` (``C=CH, O=x, CN=gw``: DER via :mod:`cryptography`), else FQDN."""
        try:
            ip = ipaddress.ip_address(text)
            return cls(IdType.ID_IPV4_ADDR if ip.version == 4 else IdType.ID_IPV6_ADDR, ip.packed)
        except ValueError:
            pass
        if text.startswith("keyid:"):
            return cls(IdType.ID_KEY_ID, bytes.fromhex(text[6:]))
        if "=" in text:
            return cls(IdType.ID_DER_ASN1_DN, _dn_der(text))
        if "@" in text:
            return cls(IdType.ID_RFC822_ADDR, text.encode())
        return cls(IdType.ID_FQDN, text.encode())


def _dn_der(text: str) -> bytes:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    oids = {
        "C": NameOID.COUNTRY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "L": NameOID.LOCALITY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "CN": NameOID.COMMON_NAME,
        "E": NameOID.EMAIL_ADDRESS,
        "SN": NameOID.SERIAL_NUMBER,
        "DC": NameOID.DOMAIN_COMPONENT,
    }
    attrs = []
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        oid = oids.get(key.strip().upper())
        if oid is None or not value:
            raise ValueError(f"distinguished name part {part.strip()!r} is not KEY=value with a known key")
        attrs.append(x509.NameAttribute(oid, value.strip()))
    return x509.Name(attrs).public_bytes()


@dataclass(frozen=True)
class PskAuth:
    """Authenticate with a pre-shared key (SHARED_KEY_MIC); the same key verifies the peer."""

    psk: SecretBytes


@dataclass(frozen=True)
class CertAuth:
    """Authenticate with a private key and certificate chain (DER, end entity first).

    ``rfc7427`` chooses the Digital Signature method (14) with the strongest hash the peer
    announced in SIGNATURE_HASH_ALGORITHMS; otherwise the classic method for the key type
    (RSA_DIGITAL_SIGNATURE, ECDSA_SHA256_P256...). ``private_key`` is a ``cryptography`` key
    object (kept opaque here so ``engine/`` needs no key parsing).
    """

    private_key: PrivateKeyTypes
    certs: tuple[bytes, ...]
    rfc7427: bool = True


@dataclass(frozen=True)
class EapAuth:
    """Authenticate as an EAP-MSCHAPv2 client (RFC 7296 §2.16): no AUTH of our own in the first
    IKE_AUTH; the responder authenticates with its certificate (``IkeConfig.ca_certs``) or a
    PSK (``IkeConfig.psk_peer``), then the MSK of the EAP method keys both final AUTHs."""

    identity: str
    password: SecretBytes


@dataclass(frozen=True)
class RetransmitPolicy:
    """RFC 7296 §2.1 retransmission: the n-th retransmission leaves ``timeout * base**n`` seconds
    after the previous send; after ``tries`` retransmissions the request is given up
    (strongSwan's defaults: 4 s, 1.8, 5)."""

    timeout: float = 4.0
    base: float = 1.8
    tries: int = 5

    def delay(self, sent_count: int) -> float:
        """Seconds to wait after the ``sent_count``-th transmission (1 = the original)."""
        return self.timeout * self.base ** (sent_count - 1)


def selector_for(network: str, *, protocol: int = 0, ports: tuple[int, int] = (0, 0xFFFF)) -> TrafficSelector:
    """A range selector for ``10.0.0.0/24``, ``192.0.2.7``, ``::/0``..."""
    net = ipaddress.ip_network(network, strict=False)
    ts_type = TsType.TS_IPV4_ADDR_RANGE if net.version == 4 else TsType.TS_IPV6_ADDR_RANGE
    return TrafficSelector(
        ts_type, protocol, ports[0], ports[1], net.network_address.packed, net.broadcast_address.packed
    )


@dataclass(frozen=True)
class ChildConfig:
    """The CHILD SA asked for (initiator) or allowed (responder).

    Initiator: ``local_ts`` is TSi, ``remote_ts`` TSr (an empty ``local_ts`` with a virtual IP
    request means "whatever address is assigned"). Responder: the selectors it accepts and
    narrows to (RFC 7296 §2.9), seen from its own side.
    """

    proposals: tuple[Proposal, ...]
    local_ts: tuple[TrafficSelector, ...] = ()
    remote_ts: tuple[TrafficSelector, ...] = ()
    mode: str = "tunnel"  # "tunnel" | "transport"
    rekey_time: float | None = None  # rekey each CHILD SA this long after it came up


@dataclass(frozen=True)
class IkeConfig:
    """One IKE SA's configuration (both roles).

    ``remote_id`` None accepts any identity the credentials prove. ``ca_certs`` (DER) are the
    trust anchors for the peer's certificate; ``pool`` is the responder's virtual IP pool
    (a network, e.g. ``10.3.0.0/28``). ``cookie_secret`` turns on stateless cookies (RFC 7296
    §2.6) on a responder; the secret rotates every ``cookie_lifetime`` seconds of ``now``.
    ``force_encap`` fakes the NAT-D source hash so both sides use UDP encapsulation
    (strongSwan ``encap = yes``). ``fragment_size`` is the largest IP packet (IP and UDP
    headers and the non-ESP marker included, as strongSwan's ``fragment_size``) an encrypted
    message may take before it is sent as RFC 7383 fragments, when the peer supports them.
    ``rekey_time`` (IKE SA) and ``ChildConfig.rekey_time`` make the engine rekey by itself
    that many seconds after an SA came up (None: only when the caller asks).
    """

    ike_proposals: tuple[Proposal, ...]
    child: ChildConfig | None
    local_id: Identity
    auth: PskAuth | CertAuth | EapAuth
    remote_id: Identity | None = None
    psk_peer: SecretBytes | None = None  # peer's PSK if different from ours (rare)
    ca_certs: tuple[bytes, ...] = ()
    send_certreq: bool = True
    request_virtual_ip: bool = False
    # IP versions to ask a virtual IP for (4 and/or 6); () = the outer address family
    virtual_ip_families: tuple[int, ...] = ()
    pool: str | None = None
    force_encap: bool = False
    fragmentation: bool = True
    fragment_size: int = 1280
    max_fragments: int = 64
    signature_hash_algorithms: tuple[int, ...] = (2, 3, 4)  # SHA2-256/384/512 (RFC 7427 §7)
    retransmit: RetransmitPolicy = field(default_factory=RetransmitPolicy)
    max_ke_retries: int = 3
    max_cookie_retries: int = 2
    max_redirects: int = 2
    follow_redirect: bool = True
    redirect_to: Endpoint | None = None  # responder: redirect every initiator there (RFC 5685)
    cookie_secret: SecretBytes | None = None
    cookie_lifetime: float = 120.0
    initial_contact: bool = True
    natt_port: int = 4500
    rekey_time: float | None = None  # rekey the IKE SA this long after it was established
    vendor_ids: tuple[bytes, ...] = ()
    # Responder: EAP-MSCHAPv2 users (identity, password) for initiators that send no AUTH.
    eap_users: tuple[tuple[str, SecretBytes], ...] = ()
    # Responder: drop an IKE SA not ESTABLISHED this long after its IKE_SA_INIT (None: never),
    # reported as IkeSaDeleted("half-open ...") (strongSwan: half_open_timeout, 30 s).
    half_open_timeout: float | None = 30.0

    def __post_init__(self) -> None:
        if any(f not in (4, 6) for f in self.virtual_ip_families):
            raise ValueError(f"virtual_ip_families must hold 4 and/or 6, not {self.virtual_ip_families}")
        if self.half_open_timeout is not None and self.half_open_timeout <= 0:
            raise ValueError("half_open_timeout must be positive (or None)")
