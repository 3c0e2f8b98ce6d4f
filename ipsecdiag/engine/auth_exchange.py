"""IKE_AUTH, both roles (RFC 7296 §1.2, §2.15, §2.19, §3.5-§3.8; RFC 7427; RFC 4945 §3.1).

Initiator: SK{IDi, [CERT+], [N(INITIAL_CONTACT)], [CERTREQ], [IDr], AUTH, [CP(CFG_REQUEST)],
[N(USE_TRANSPORT_MODE)], SA, TSi, TSr}. Responder: SK{IDr, [CERT+], AUTH, [CP(CFG_REPLY)],
[N(USE_TRANSPORT_MODE)], SA, TSi, TSr}, or AUTH plus an error notify when the CHILD SA cannot be
made (the IKE SA still comes up, §1.2), or only N(AUTHENTICATION_FAILED) when the initiator
did not authenticate (§2.21.2).

Peer certificates are checked against ``IkeConfig.ca_certs``: each link of the chain must be
signed by the next (intermediates from the CERT payloads), ending at a configured anchor;
the identity must appear in the end-entity certificate (RFC 4945 §3.1). Validity periods are
not checked here: the engine has no wall clock (``now`` is monotonic).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from cryptography import x509

from ..crypto.auth import (
    AuthError,
    auth_method_for_key,
    eap_auth,
    id_body,
    psk_auth,
    sign_auth,
    signed_octets,
    verify_auth,
)
from ..crypto.rng import random_spi
from ..crypto.x509 import CertificateDecodeError, issued_by, load_certificates, match_identity
from ..wire.ikev2 import IkeHeader, Payload
from ..wire.ikev2_payloads import AuthPayload, CertPayload, CfgAttribute, CpPayload, IdPayload, NotifyPayload
from ..wire.registry import (
    AuthMethod,
    CertEncoding,
    CfgAttr,
    CfgType,
    ExchangeType,
    NotifyType,
    PayloadType,
    name_of,
)
from . import child_sa, eap_exchange
from . import events as ev
from .common import certreq, int_auth, one
from .config import CertAuth, EapAuth, Endpoint, Identity, PskAuth
from .errors import Refuse
from .negotiation import EapState
from .state import Trigger
from .window import RequestContext

if TYPE_CHECKING:
    from .ike_sa import IkeSa

_X = ExchangeType.IKE_AUTH
_CHAIN_DEPTH = 8
# Error notifies about the CHILD SA in an IKE_AUTH response: the IKE SA itself is up (§1.2).
CHILD_ERRORS = frozenset(
    {
        NotifyType.NO_PROPOSAL_CHOSEN,
        NotifyType.TS_UNACCEPTABLE,
        NotifyType.SINGLE_PAIR_REQUIRED,
        NotifyType.INTERNAL_ADDRESS_FAILURE,
        NotifyType.FAILED_CP_REQUIRED,
        NotifyType.NO_ADDITIONAL_SAS,
        NotifyType.INVALID_SELECTORS,
        NotifyType.TEMPORARY_FAILURE,
    }
)


def _id_payload(which: int, ident: Identity) -> IdPayload:
    return IdPayload(which, ident.id_type, ident.data)


def _our_auth(
    sa: IkeSa,
    id_p: IdPayload,
    message: bytes,
    peer_nonce: bytes,
    mid: int,
    *,
    msk: bytes | None = None,
    peer: bool = False,
) -> AuthPayload:
    """Our AUTH payload; with ``msk`` the EAP one (§2.16), and with ``peer`` the AUTH the peer
    must send (its SK_p), to compare with what came."""
    keys = sa.keys
    assert keys is not None and keys.prf is not None
    sk_p = keys.sk_pi if sa.is_initiator != peer else keys.sk_pr
    octets = signed_octets(message, peer_nonce, keys.prf, sk_p.reveal(), id_body(id_p)) + int_auth(sa.neg, mid)
    if msk is not None:
        return AuthPayload(AuthMethod.SHARED_KEY_MIC, eap_auth(keys.prf, msk, sk_p.reveal(), octets))
    auth = sa.config.auth
    if isinstance(auth, EapAuth):
        raise ValueError("an EAP client has no AUTH of its own before EAP completes")
    if isinstance(auth, PskAuth):
        return AuthPayload(AuthMethod.SHARED_KEY_MIC, psk_auth(keys.prf, auth.psk.reveal(), octets))
    peer_hashes = sa.neg.peer_hashes if auth.rfc7427 else ()
    method, hash_alg = auth_method_for_key(auth.private_key, peer_hashes=peer_hashes)  # type: ignore[arg-type]
    return AuthPayload(method, sign_auth(method, auth.private_key, octets, hash_alg=hash_alg))  # type: ignore[arg-type]


def _cert_payloads(sa: IkeSa) -> list[Payload]:
    auth = sa.config.auth
    if not isinstance(auth, CertAuth):
        return []
    return [CertPayload(CertEncoding.X509_CERT_SIGNATURE, der) for der in auth.certs]


def _verify_peer(
    sa: IkeSa, payloads: tuple[Payload, ...], id_p: IdPayload, message: bytes, our_nonce: bytes, mid: int
) -> tuple[int, tuple[bytes, ...]]:
    """Check the peer's AUTH (and certificate chain); returns (method, DER certs)."""
    keys = sa.keys
    assert keys is not None and keys.prf is not None
    auth_p = one(payloads, AuthPayload)
    if auth_p is None:
        raise Refuse(NotifyType.AUTHENTICATION_FAILED, "no AUTH payload", fatal=True)
    ident = Identity(id_p.id_type, id_p.data)
    want = sa.config.remote_id
    if want is not None and want != ident:
        raise Refuse(
            NotifyType.AUTHENTICATION_FAILED,
            f"peer identity {id_p.display()} is not the configured {IdPayload(0, want.id_type, want.data).display()}",
            fatal=True,
        )
    sk_p = keys.sk_pr if sa.is_initiator else keys.sk_pi
    octets = signed_octets(message, our_nonce, keys.prf, sk_p.reveal(), id_body(id_p)) + int_auth(sa.neg, mid)
    certs = tuple(
        p.data
        for p in payloads
        if isinstance(p, CertPayload) and p.encoding == CertEncoding.X509_CERT_SIGNATURE
    )
    try:
        if auth_p.method == AuthMethod.SHARED_KEY_MIC:
            psk = sa.config.psk_peer or (sa.config.auth.psk if isinstance(sa.config.auth, PskAuth) else None)
            if psk is None:
                raise AuthError("the peer used a pre-shared key and we have none")
            verify_auth(auth_p.method, auth_p.data, octets, psk=psk.reveal(), prf_id=keys.prf)
        else:
            end_entity = _trusted_chain(sa, certs, id_p)
            verify_auth(auth_p.method, auth_p.data, octets, public_key=end_entity)
    except AuthError as e:
        raise Refuse(
            NotifyType.AUTHENTICATION_FAILED,
            f"{name_of(AuthMethod, auth_p.method)} AUTH of {id_p.display()}: {e.reason}",
            fatal=True,
        ) from None
    return auth_p.method, certs


def _trusted_chain(sa: IkeSa, certs: tuple[bytes, ...], id_p: IdPayload) -> x509.Certificate:
    if not certs:
        raise AuthError("signature authentication without a CERT payload (certificates are not looked up)")
    try:
        parsed = [c for der in certs for c in load_certificates(der)]
        anchors = [c for der in sa.config.ca_certs for c in load_certificates(der)]
    except CertificateDecodeError as e:
        raise AuthError(f"certificate does not parse: {e}") from None
    if not anchors:
        raise AuthError("no CA certificate configured to verify the peer's certificate with")
    ee = parsed[0]
    match = match_identity(id_p.id_type, id_p.data, ee)
    if match.matched is False:
        raise AuthError(f"identity {id_p.display()} is not in the certificate's {match.against}")
    cur, path = ee, [ee]
    for _ in range(_CHAIN_DEPTH):
        if any(cur == a or issued_by(cur, a) for a in anchors):
            _check_dates(sa, path)
            return ee
        nxt = next((c for c in parsed[1:] if c != cur and issued_by(cur, c)), None)
        if nxt is None:
            break
        cur = nxt
        path.append(cur)
    raise AuthError(f"certificate {ee.subject.rfc4514_string()} does not chain to a configured CA")


def _check_dates(sa: IkeSa, path: list[x509.Certificate]) -> None:
    """The end-entity and intermediate certificates must be valid at the caller's wall time
    (RFC 5280 §4.1.2.5; trust anchors are configuration, not checked here). Without a wall
    time (the engine has no clock of its own) nothing is checked."""
    when = sa.wall_time
    if when is None:
        return
    for i, cert in enumerate(path):
        nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
        if nb <= when <= na:
            continue
        problem = "expired" if when > na else "not-yet-valid"
        subject = cert.subject.rfc4514_string()
        iso = "%Y-%m-%dT%H:%M:%SZ"
        sa.emit(
            ev.CertificateInvalid(
                subject, problem, nb.strftime(iso), na.strftime(iso), when.strftime(iso), end_entity=i == 0
            )
        )
        what = f"expired on {na.strftime(iso)}" if problem == "expired" else f"not valid before {nb.strftime(iso)}"
        kind = "end-entity" if i == 0 else "intermediate"
        raise AuthError(f"{kind} certificate {subject} {what} (wall time {when.strftime(iso)})")


def _virtual_ip_request(sa: IkeSa) -> CpPayload:
    """CFG_REQUEST with an empty INTERNAL_IP4/6_ADDRESS per wanted family (RFC 7296 §3.15)."""
    attrs = {4: CfgAttr.INTERNAL_IP4_ADDRESS, 6: CfgAttr.INTERNAL_IP6_ADDRESS}
    return CpPayload(CfgType.CFG_REQUEST, tuple(CfgAttribute(attrs[f]) for f in child_sa.vip_families(sa)))


# -- initiator ---------------------------------------------------------------------------------


def start(sa: IkeSa, now: float) -> None:
    cfg = sa.config
    idi = _id_payload(PayloadType.IDi, cfg.local_id)
    payloads: list[Payload] = [idi, *_cert_payloads(sa)]
    if cfg.initial_contact:
        payloads.append(NotifyPayload(0, b"", NotifyType.INITIAL_CONTACT))
    if cfg.send_certreq and cfg.ca_certs:
        payloads.append(certreq(cfg.ca_certs))
    if cfg.remote_id is not None:
        payloads.append(_id_payload(PayloadType.IDr, cfg.remote_id))
    if isinstance(cfg.auth, EapAuth):
        sa.neg.eap = EapState(auth_mid=sa.next_message_id)  # no AUTH: EAP follows (§2.16)
    else:
        payloads.append(_our_auth(sa, idi, sa.neg.init_request, sa.neg.nr, sa.next_message_id))
    context = RequestContext()
    if cfg.child is not None:
        if cfg.request_virtual_ip:
            payloads.append(_virtual_ip_request(sa))
        spi = random_spi(sa.rng, 4)
        sa.neg.child_spi = spi
        offer = child_sa.offer(sa, cfg.child, spi)
        payloads += offer
        context["requested_ts"] = child_sa.default_ts(sa, cfg.child)
    sa.send_request(_X, payloads, now, context)


def handle_response(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, now: float, context: RequestContext
) -> None:
    errors = [p for p in payloads if isinstance(p, NotifyPayload) and p.is_error]
    fatal = [e for e in errors if e.notify_type not in CHILD_ERRORS]
    eap = isinstance(sa.config.auth, EapAuth)
    idr = one(payloads, IdPayload, PayloadType.IDr)
    if fatal or (idr is None and not eap):
        e = fatal[0] if fatal else (errors[0] if errors else None)
        name = e.name if e is not None else "no IDr"
        raise Refuse(
            e.notify_type if e is not None else 0,
            f"responder refused IKE_AUTH ({name})",
            fault="ours",
            received=e is not None,
            respond=False,
            fatal=True,
        )
    try:
        if eap:
            done = eap_exchange.client_step(sa, h, payloads, now, context, _verify_peer, _our_auth)
            if done is None:
                return  # the next EAP round is on its way
            idr, method, certs = done
        else:
            assert idr is not None  # checked above: only EAP may answer without IDr yet
            method, certs = _verify_peer(sa, payloads, idr, sa.neg.init_response, sa.neg.ni, h.message_id)
    except Refuse as r:
        if r.received:
            r.respond = False
            raise
        # §2.21.2: tell the responder before giving up on the IKE SA.
        sa.send_oneway(ExchangeType.INFORMATIONAL, [NotifyPayload(0, b"", NotifyType.AUTHENTICATION_FAILED)])
        r.respond = False
        raise
    sa.peer_id = Identity(idr.id_type, idr.data)
    sa.transition(Trigger.AUTH_OK)
    sa.emit(ev.Authenticated(sa.peer_id, idr.display(), method, certs))
    child = sa.config.child
    if child is None:
        return
    child_errors = [e for e in errors if e.notify_type in CHILD_ERRORS]
    if child_errors:
        e = child_errors[0]
        raise Refuse(
            e.notify_type,
            f"no CHILD SA: the responder answered {e.name}",
            fault="ours",
            received=True,
            respond=False,
        )
    cp = one(payloads, CpPayload)
    if cp is not None and cp.cfg_type == CfgType.CFG_REPLY:
        sa.neg.virtual_ips = tuple(
            str(ipaddress.ip_address(a.value[:16] if a.type == CfgAttr.INTERNAL_IP6_ADDRESS else a.value[:4]))
            for a in cp.attributes
            if (a.type == CfgAttr.INTERNAL_IP4_ADDRESS and len(a.value) == 4)
            or (a.type == CfgAttr.INTERNAL_IP6_ADDRESS and len(a.value) == 17)
        )
    if sa.config.request_virtual_ip and not sa.neg.virtual_ips:
        raise Refuse(
            NotifyType.INTERNAL_ADDRESS_FAILURE,
            "asked for a virtual IP, none assigned",
            fault="ours",
            respond=False,
        )
    sel = child_sa.accept(sa, payloads, child, context["requested_ts"])
    child_sa.install(sa, sel, spi_in=sa.neg.child_spi, spi_out=sel.proposal.spi, ni=sa.neg.ni, nr=sa.neg.nr)


# -- responder ---------------------------------------------------------------------------------


def handle_request(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, dst: Endpoint, now: float
) -> None:
    cfg = sa.config
    eap_running = sa.neg.eap is not None
    idi = one(payloads, IdPayload, PayloadType.IDi)
    wants_eap = (
        not eap_running and idi is not None and one(payloads, AuthPayload) is None and bool(cfg.eap_users)
    )
    if eap_running or wants_eap:
        _eap_request(sa, h, payloads, src, dst, wants_eap)
        return
    if idi is None or one(payloads, AuthPayload) is None:
        raise Refuse(NotifyType.INVALID_SYNTAX, "IKE_AUTH request without IDi or AUTH", fatal=True)
    idr_wanted = one(payloads, IdPayload, PayloadType.IDr)
    if idr_wanted is not None and Identity(idr_wanted.id_type, idr_wanted.data) != cfg.local_id:
        raise Refuse(
            NotifyType.AUTHENTICATION_FAILED,
            f"initiator asked for identity {idr_wanted.display()}, we are {IdPayload(0, cfg.local_id.id_type, cfg.local_id.data).display()}",
            fatal=True,
        )
    if sa.neg.pending_addke:
        raise Refuse(
            NotifyType.INVALID_SYNTAX, "IKE_AUTH before the additional key exchanges (RFC 9370)", fatal=True
        )
    method, certs = _verify_peer(sa, payloads, idi, sa.neg.init_request, sa.neg.nr, h.message_id)
    idr = _id_payload(PayloadType.IDr, cfg.local_id)
    out: list[Payload] = [
        idr,
        *_cert_payloads(sa),
        _our_auth(sa, idr, sa.neg.init_response, sa.neg.ni, h.message_id),
    ]
    _answer_authenticated(sa, h, payloads, src, dst, idi, method, certs, out)


def _eap_request(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, dst: Endpoint, first: bool
) -> None:
    our_first: list[Payload] = []
    if first:
        idr = _id_payload(PayloadType.IDr, sa.config.local_id)
        our_first = [
            idr,
            *_cert_payloads(sa),
            _our_auth(sa, idr, sa.neg.init_response, sa.neg.ni, h.message_id),
        ]
    done = eap_exchange.server_step(sa, h, payloads, src, dst, our_first, _our_auth)
    if done is not None:
        first_payloads, out = done
        idi = one(first_payloads, IdPayload, PayloadType.IDi)
        _answer_authenticated(sa, h, first_payloads, src, dst, idi, AuthMethod.SHARED_KEY_MIC, (), out)


def _answer_authenticated(
    sa: IkeSa,
    h: IkeHeader,
    payloads: tuple[Payload, ...],
    src: Endpoint,
    dst: Endpoint,
    idi: IdPayload,
    method: int,
    certs: tuple[bytes, ...],
    out: list[Payload],
) -> None:
    """The initiator is authenticated: answer with ``out`` plus the CHILD SA (from the request
    that carried SA/TSi/TSr: the first one when EAP ran)."""
    cfg = sa.config
    sa.peer_id = Identity(idi.id_type, idi.data)
    pending_child = None
    if cfg.child is not None and one(payloads, child_sa.SaPayload) is not None:
        try:
            vip = _assign_virtual_ip(sa, payloads)
            spi = random_spi(sa.rng, 4)
            sel = child_sa.select(sa, payloads, cfg.child, spi, virtual_ip=vip)
            if vip is not None:
                attr = CfgAttr.INTERNAL_IP4_ADDRESS if ":" not in vip else CfgAttr.INTERNAL_IP6_ADDRESS
                value = ipaddress.ip_address(vip).packed + (b"\x80" if ":" in vip else b"")
                out.append(CpPayload(CfgType.CFG_REPLY, (CfgAttribute(attr, value),)))
                sa.neg.virtual_ips = (vip,)
            out += child_sa.answer(sel)
            pending_child = (sel, spi)
        except Refuse as r:
            out.append(NotifyPayload(0, b"", r.notify))
            sa.emit(ev.ProtocolError(r.notify, r.notify_name, "peer", False, r.detail, "IKE_AUTH", False))
    sa.send_response(_X, h.message_id, out, src, dst)
    sa.transition(Trigger.AUTH_OK)
    sa.emit(ev.Authenticated(sa.peer_id, idi.display(), method, certs))
    if pending_child is not None:
        sel, spi = pending_child
        peer_spi = next(
            p.spi for p in one(payloads, child_sa.SaPayload).proposals if p.number == sel.proposal.number
        )
        child_sa.install(sa, sel, spi_in=spi, spi_out=peer_spi, ni=sa.neg.ni, nr=sa.neg.nr)


def _assign_virtual_ip(sa: IkeSa, payloads: tuple[Payload, ...]) -> str | None:
    cp = one(payloads, CpPayload)
    if cp is None or cp.cfg_type != CfgType.CFG_REQUEST:
        return None
    wants = [
        a for a in cp.attributes if a.type in (CfgAttr.INTERNAL_IP4_ADDRESS, CfgAttr.INTERNAL_IP6_ADDRESS)
    ]
    if not wants:
        return None
    if sa.pool is None:
        raise Refuse(
            NotifyType.INTERNAL_ADDRESS_FAILURE, "virtual IP requested, no pool configured", fatal=False
        )
    # Our one pool serves one family: answer the request of that family (§3.15.1 lets a
    # responder return fewer addresses than asked for).
    v6_pool = sa.pool.network.version == 6
    wants = [a for a in wants if (a.type == CfgAttr.INTERNAL_IP6_ADDRESS) == v6_pool]
    if not wants:
        raise Refuse(
            NotifyType.INTERNAL_ADDRESS_FAILURE,
            f"virtual IP requested only for the other family than the IPv{sa.pool.network.version} pool",
            fatal=False,
        )
    hint = None
    if wants[0].value and len(wants[0].value) in (4, 17):
        hint = str(ipaddress.ip_address(wants[0].value[:16] if len(wants[0].value) == 17 else wants[0].value))
    addr = sa.pool.allocate(sa.spi_i + sa.spi_r, hint if hint not in ("0.0.0.0", "::") else None)
    if addr is None:
        raise Refuse(NotifyType.INTERNAL_ADDRESS_FAILURE, "virtual IP pool exhausted", fatal=False)
    return addr
