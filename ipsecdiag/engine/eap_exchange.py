"""IKE_AUTH with EAP (RFC 7296 §2.16), both roles, around :mod:`.eap`.

    I: SK{IDi, [IDr], [CERTREQ], SA, TSi, TSr, [CP]}          (no AUTH)
    R: SK{IDr, [CERT], AUTH, EAP(request)}                     (R authenticates as usual)
    I: SK{EAP(response)}   R: SK{EAP(request)}   ...   R: SK{EAP(Success)}
    I: SK{AUTH}            (prf(prf(MSK, "Key Pad for IKEv2"), InitiatorSignedOctets))
    R: SK{AUTH, [CP], SA, TSi, TSr}  (the same with the MSK and ResponderSignedOctets)

Each round is its own IKE_AUTH exchange with the next message id; the state stays AUTH_SENT /
INIT_DONE until the last one. What the rounds share lives in ``sa.neg.extra["eap"]``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..wire.ikev2 import IkeHeader, Payload
from ..wire.ikev2_payloads import AuthPayload, EapPayload, IdPayload
from ..wire.registry import AuthMethod, ExchangeType, NotifyType, PayloadType
from .common import one
from .config import EapAuth, Endpoint
from .eap import EapError, EapPeer, EapServer
from .errors import Refuse
from .negotiation import EapState
from .window import RequestContext

if TYPE_CHECKING:
    from .ike_sa import IkeSa

    Verify = Callable[[IkeSa, tuple[Payload, ...], IdPayload, bytes, bytes, int], tuple[int, tuple[bytes, ...]]]


class OurAuth(Protocol):
    """auth_exchange's AUTH builder (its ``_our_auth``)."""

    def __call__(
        self,
        sa: IkeSa,
        id_p: IdPayload,
        message: bytes,
        peer_nonce: bytes,
        mid: int,
        /,
        *,
        msk: bytes | None = None,
        peer: bool = False,
    ) -> AuthPayload: ...

_X = ExchangeType.IKE_AUTH


def _state(sa: IkeSa) -> EapState:
    if sa.neg.eap is None:
        sa.neg.eap = EapState()
    return sa.neg.eap


def _auth_failed(detail: str, *, fault: str = "peer", received: bool = False, respond: bool = True) -> Refuse:
    return Refuse(
        NotifyType.AUTHENTICATION_FAILED, detail, fault=fault, received=received, respond=respond, fatal=True
    )


def _msk_auth_ok(
    sa: IkeSa, payloads: tuple[Payload, ...], id_p: IdPayload, message: bytes, nonce: bytes, our_auth: OurAuth
) -> bool:
    """Is the peer's final AUTH the shared key MIC over the MSK (§2.16)?"""
    st = _state(sa)
    auth_p = one(payloads, AuthPayload)
    expected = our_auth(sa, id_p, message, nonce, st["auth_mid"], msk=st["msk"], peer=True)
    return (
        auth_p is not None
        and auth_p.method == AuthMethod.SHARED_KEY_MIC
        and hmac.compare_digest(auth_p.data, expected.data)
    )


# -- initiator (EAP peer) ---------------------------------------------------------------------


def client_step(
    sa: IkeSa,
    h: IkeHeader,
    payloads: tuple[Payload, ...],
    now: float,
    context: RequestContext,
    verify: Verify,
    our_auth: OurAuth,
) -> tuple[IdPayload, int, tuple[bytes, ...]] | None:
    """One IKE_AUTH response in the EAP flow; returns ``(IDr, method, certs)`` once the final
    AUTH verified, None while EAP goes on (the next request is sent). ``verify``/``our_auth``
    are auth_exchange's AUTH helpers (passed in to keep one implementation)."""
    st = _state(sa)
    auth = sa.config.auth
    assert isinstance(auth, EapAuth)
    if "peer" not in st:  # first response: the responder's own AUTH and the first EAP request
        idr = one(payloads, IdPayload, PayloadType.IDr)
        if idr is None:
            raise Refuse(0, "IKE_AUTH answer without IDr", respond=False, fatal=True)
        method, certs = verify(sa, payloads, idr, sa.neg.init_response, sa.neg.ni, st["auth_mid"])
        st["peer"] = EapPeer(auth.identity.encode(), auth.password.reveal().decode("utf-8"), sa.rng)
        st["result"] = (idr, method, certs)
    elif "msk" in st:  # the final answer: the responder's AUTH over the MSK
        if not _msk_auth_ok(sa, payloads, st["idr"], sa.neg.init_response, sa.neg.ni, our_auth):
            raise _auth_failed("the responder's AUTH over the EAP MSK does not verify", respond=False)
        return st["result"]
    eap_p = one(payloads, EapPayload)
    if eap_p is None:
        raise _auth_failed("IKE_AUTH answer without EAP payload during EAP", respond=False)
    try:
        answer = st["peer"].handle(eap_p.data)
    except EapError as e:
        raise _auth_failed(f"EAP-MSCHAPv2: {e.reason}", fault="ours", received=True, respond=False) from None
    if answer is not None:
        sa.send_request(_X, [EapPayload(answer)], now, context)
        return None
    st["msk"] = st["peer"].msk
    st["idr"] = st["result"][0]
    idi = IdPayload(PayloadType.IDi, sa.config.local_id.id_type, sa.config.local_id.data)
    sa.send_request(
        _X, [our_auth(sa, idi, sa.neg.init_request, sa.neg.nr, st["auth_mid"], msk=st["msk"])], now, context
    )
    return None


# -- responder (EAP server) ----------------------------------------------------------------------


def server_step(
    sa: IkeSa,
    h: IkeHeader,
    payloads: tuple[Payload, ...],
    src: Endpoint,
    dst: Endpoint,
    our_first: list[Payload],
    our_auth: OurAuth,
) -> tuple[tuple[Payload, ...], list[Payload]] | None:
    """One IKE_AUTH request of an initiator doing EAP. Returns ``(first request payloads,
    final answer start)`` once its AUTH over the MSK verified (the caller adds the CHILD SA
    and sends), None after answering an EAP round itself. ``our_first`` is what the first
    answer carries before the EAP payload (IDr, CERT, AUTH)."""
    st = _state(sa)
    if "server" not in st:
        idi = one(payloads, IdPayload, PayloadType.IDi)
        users = {name.encode(): pw.reveal().decode("utf-8") for name, pw in sa.config.eap_users}
        server = EapServer(users, sa.rng, name=sa.config.local_id.data)
        assert idi is not None  # handle_request starts EAP only for a request with IDi
        st["server"], st["first"], st["idi"], st["auth_mid"] = server, payloads, idi, h.message_id
        sa.send_response(_X, h.message_id, [*our_first, EapPayload(server.start(idi.data))], src, dst)
        return None
    if "msk" in st:
        if not _msk_auth_ok(sa, payloads, st["idi"], sa.neg.init_request, sa.neg.nr, our_auth):
            raise _auth_failed("the initiator's AUTH over the EAP MSK does not verify")
        idr = IdPayload(PayloadType.IDr, sa.config.local_id.id_type, sa.config.local_id.data)
        return st["first"], [
            our_auth(sa, idr, sa.neg.init_response, sa.neg.ni, st["auth_mid"], msk=st["msk"])
        ]
    eap_p = one(payloads, EapPayload)
    if eap_p is None:
        raise _auth_failed("IKE_AUTH request without EAP payload during EAP")
    try:
        packet, outcome = st["server"].handle(eap_p.data)
    except EapError as e:
        raise _auth_failed(f"EAP-MSCHAPv2: {e.reason}") from None
    sa.send_response(_X, h.message_id, [EapPayload(packet)], src, dst)
    if outcome is True:
        st["msk"] = st["server"].msk
    elif outcome is False:
        raise _auth_failed(
            f"EAP-MSCHAPv2: wrong password for {st['server'].identity.decode('utf-8', 'replace')!r}",
            respond=False,
        )
    return None
