"""What the exchanges of one IKE SA have established so far (read and written by the exchange
modules: nonces, the IKE_SA_INIT messages AUTH signs, the chosen proposal, peer capabilities,
NAT findings, retry counters, RFC 9242 IntAuth chains)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import Endpoint


@dataclass
class Negotiation:
    """What the exchanges so far established (read by the exchange modules)."""

    ni: bytes = b""
    nr: bytes = b""
    init_request: bytes = b""  # RealMessage1 (the last IKE_SA_INIT request, as sent/received)
    init_response: bytes = b""  # RealMessage2
    chosen: Any = None  # the IKE proposal (wire Proposal)
    ke: Any = None  # our KeyExchange object during IKE_SA_INIT
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
    extra: dict[str, Any] = field(default_factory=dict)
