"""What the exchanges of one IKE SA have established so far (read and written by the exchange
modules: nonces, the IKE_SA_INIT messages AUTH signs, the chosen proposal, peer capabilities,
NAT findings, retry counters, RFC 9242 IntAuth chains)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

from .config import Endpoint

if TYPE_CHECKING:
    from ..crypto.ke import KeyExchange
    from ..keys.model import IkeSaKeys
    from ..wire.ikev2 import Payload
    from ..wire.ikev2_payloads import IdPayload
    from ..wire.ikev2_sa import Proposal
    from .eap import EapPeer, EapServer


class EapState(TypedDict, total=False):
    """What the IKE_AUTH rounds of EAP share (RFC 7296 §2.16)."""

    auth_mid: int  # message id of the IKE_AUTH carrying the final AUTH's signed octets
    msk: bytes | None
    peer: EapPeer  # client side
    result: tuple[IdPayload, int, tuple[bytes, ...]]  # client: (IDr, method, certs) once verified
    idr: IdPayload
    server: EapServer  # server side
    first: tuple[Payload, ...]  # server: the initiator's first IKE_AUTH request payloads
    idi: IdPayload | None


@dataclass(frozen=True)
class PeerIkeRekey:
    """The peer's IKE SA rekey we answered while our own was outstanding (§2.8.2): the new SA
    it made, kept until our exchange completes and the nonces pick the survivor."""

    keys: IkeSaKeys
    chosen: Proposal
    group: int
    ni: bytes  # the peer's nonce
    nr: bytes  # ours, in the answer


@dataclass
class Negotiation:
    """What the exchanges so far established (read by the exchange modules)."""

    ni: bytes = b""
    nr: bytes = b""
    init_request: bytes = b""  # RealMessage1 (the last IKE_SA_INIT request, as sent/received)
    init_response: bytes = b""  # RealMessage2
    chosen: Proposal | None = None  # the IKE proposal
    ke: KeyExchange | None = None  # ours, during IKE_SA_INIT
    ke_group: int = 0
    cookie: bytes = b""
    cookie_retries: int = 0
    ke_retries: int = 0
    redirects: int = 0
    redirected_from: Endpoint | None = None
    peer_fragmentation: bool = False
    peer_hashes: tuple[int, ...] = ()
    peer_vendor_ids: tuple[bytes, ...] = ()
    nat_local: bool = False
    nat_remote: bool = False
    peer_certreq: bool = False
    child_spi: bytes = b""  # our inbound SPI proposed in IKE_AUTH
    virtual_ips: tuple[str, ...] = ()
    peer_intermediate: bool = False  # INTERMEDIATE_EXCHANGE_SUPPORTED (RFC 9242)
    pending_addke: list[tuple[int, int]] = field(default_factory=list)  # (ADDKEn, group) still to run
    int_auth_i: bytes = b""  # IntAuth_iN / IntAuth_rN chains (RFC 9242 §3.3.2)
    int_auth_r: bytes = b""
    eap: EapState | None = None  # set while (or after) EAP runs in IKE_AUTH
    # CHILD SA rekeys the peer started, by the old inbound SPI: (its nonce, our nonce) (§2.8.1)
    peer_rekeys: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    temporary_failures: dict[int, int] = field(default_factory=dict)  # retries per request id
    peer_ike_rekey: PeerIkeRekey | None = None  # a colliding IKE SA rekey of the peer (§2.8.2)
