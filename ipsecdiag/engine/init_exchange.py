"""IKE_SA_INIT, both roles (RFC 7296 §1.2, §2.6, §2.10, §2.23; RFC 7383 §2.3; RFC 7427 §4;
RFC 5685 REDIRECT).

Initiator: SA, KE, Ni, NAT-D, IKEV2_FRAGMENTATION_SUPPORTED, SIGNATURE_HASH_ALGORITHMS,
REDIRECT_SUPPORTED (and COOKIE first when the responder asked for one). Its answer may be a
COOKIE (retry with it), INVALID_KE_PAYLOAD (retry with the group asked for, if we offered it),
REDIRECT (start again at the new gateway), an error, or the responder's SA, KE, Nr.
Each retry is bounded by the configuration.

Responder: stateless until it commits: COOKIE demands, INVALID_KE_PAYLOAD and
NO_PROPOSAL_CHOSEN answers use the zero responder SPI and leave no state (§2.6, §1.2).
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import TYPE_CHECKING

from ..crypto.auth import hash_algorithms_notify
from ..crypto.ke import InvalidKeyExchange, new_key_exchange
from ..crypto.prf import skeyseed
from ..crypto.rng import random_spi
from ..protocol.natd import natd_hash_v2
from ..protocol.select import (
    additional_groups,
    check_chosen,
    chosen_group,
    ke_choice,
    proposal_groups,
    select_proposal,
    transform_of,
)
from ..wire.ikev2 import IkeHeader, Payload
from ..wire.ikev2_payloads import CertReqPayload, KePayload, NoncePayload, NotifyPayload, VendorIdPayload
from ..wire.ikev2_sa import Proposal, SaPayload
from ..wire.registry import ExchangeType, GatewayIdType, NotifyType, TransformType
from . import events as ev
from . import intermediate
from .common import certreq, ike_sa_keys, name_of_group, one
from .config import CertAuth, Endpoint
from .cookies import cookie_valid, make_cookie
from .errors import Refuse
from .state import Trigger
from .window import RequestContext

if TYPE_CHECKING:
    from .ike_sa import IkeSa

NONCE_LEN = 32
_X = ExchangeType.IKE_SA_INIT


def _n(ntype: int, data: bytes = b"") -> NotifyPayload:
    return NotifyPayload(0, b"", ntype, data)


def _notify(payloads: tuple[Payload, ...], ntype: int) -> NotifyPayload | None:
    return next((p for p in payloads if isinstance(p, NotifyPayload) and p.notify_type == ntype), None)


def _capabilities(sa: IkeSa) -> list[Payload]:
    out: list[Payload] = []
    if sa.config.fragmentation:
        out.append(_n(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
    if sa.config.signature_hash_algorithms:
        out.append(hash_algorithms_notify(sa.config.signature_hash_algorithms))
    return out


def _natd(sa: IkeSa, spi_r: bytes, source: Endpoint, destination: Endpoint) -> list[Payload]:
    src_hash = natd_hash_v2(sa.spi_i, spi_r, source.host, source.port)
    if sa.config.force_encap:
        # strongSwan encap=yes: a source hash that matches no address makes the peer see a NAT.
        src_hash = sa.rng.bytes(len(src_hash))
    dst_hash = natd_hash_v2(sa.spi_i, spi_r, destination.host, destination.port)
    return [
        _n(NotifyType.NAT_DETECTION_SOURCE_IP, src_hash),
        _n(NotifyType.NAT_DETECTION_DESTINATION_IP, dst_hash),
    ]


def _detect_nat(sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, dst: Endpoint) -> None:
    """``nat_remote``: the peer's source hash matches none of its addresses as we see them;
    ``nat_local``: its destination hash does not match our address (§2.23)."""
    srcs = [
        p.data
        for p in payloads
        if isinstance(p, NotifyPayload) and p.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP
    ]
    dst_n = _notify(payloads, NotifyType.NAT_DETECTION_DESTINATION_IP)
    if not srcs or dst_n is None:
        return  # the peer does not do NAT-T: no detection, no move to 4500
    sa.neg.nat_remote = natd_hash_v2(h.spi_i, h.spi_r, src.host, src.port) not in srcs
    sa.neg.nat_local = dst_n.data != natd_hash_v2(h.spi_i, h.spi_r, dst.host, dst.port)


def _record_capabilities(sa: IkeSa, payloads: tuple[Payload, ...]) -> None:
    sa.neg.peer_fragmentation = _notify(payloads, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None
    sh = _notify(payloads, NotifyType.SIGNATURE_HASH_ALGORITHMS)
    sa.neg.peer_hashes = (sh.signature_hash_algorithms() or ()) if sh is not None else ()
    sa.neg.peer_vendor_ids = tuple(p.data for p in payloads if isinstance(p, VendorIdPayload))
    sa.neg.peer_certreq = any(isinstance(p, CertReqPayload) for p in payloads)
    sa.neg.peer_intermediate = _notify(payloads, NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is not None


def _derive(sa: IkeSa, shared: bytes) -> None:
    p: Proposal = sa.neg.chosen
    prf_t = transform_of(p, TransformType.PRF)
    assert prf_t is not None
    seed = skeyseed(prf_t.id, sa.neg.ni, sa.neg.nr, shared)
    sa.install_keys(ike_sa_keys(p, seed, sa.neg.ni, sa.neg.nr, sa.spi_i, sa.spi_r))


def _done_event(sa: IkeSa, payloads: tuple[Payload, ...]) -> None:
    assert sa.keys is not None
    sa.emit(
        ev.IkeSaInitDone(
            sa.neg.chosen,
            sa.neg.ke_group,
            sa.keys,
            sa.neg.nat_local,
            sa.neg.nat_remote,
            sa.encap or sa.neg.nat_local or sa.neg.nat_remote or sa.config.force_encap,
            sa.neg.peer_fragmentation and sa.config.fragmentation,
            sa.neg.peer_hashes,
            sa.neg.peer_vendor_ids,
            tuple(p.name for p in payloads if isinstance(p, NotifyPayload) and not p.is_error),
        )
    )


# -- initiator ---------------------------------------------------------------------------------


def start(sa: IkeSa, now: float, group: int | None = None) -> None:
    """Queue an IKE_SA_INIT request (first try, or a retry after COOKIE/INVALID_KE/REDIRECT)."""
    groups = proposal_groups(sa.config.ike_proposals)
    if not groups:
        raise ValueError("the IKE proposals name no key exchange method")
    group = group or sa.neg.ke_group or groups[0]
    if sa.neg.ke is None or sa.neg.ke_group != group:
        sa.neg.ke = new_key_exchange(group, sa.rng)
        sa.neg.ke_group = group
    if not sa.neg.ni:
        sa.neg.ni = sa.rng.bytes(NONCE_LEN)
    payloads: list[Payload] = []
    if sa.neg.cookie:
        payloads.append(_n(NotifyType.COOKIE, sa.neg.cookie))  # first payload (§2.6)
    proposals = tuple(replace(p, number=i, spi=b"") for i, p in enumerate(sa.config.ike_proposals, 1))
    payloads += [SaPayload(proposals), KePayload(group, sa.neg.ke.public_value()), NoncePayload(sa.neg.ni)]
    payloads += _natd(sa, bytes(8), sa.source, sa.remote)
    payloads += _capabilities(sa)
    if any(additional_groups(p) for p in proposals):
        payloads.append(_n(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED))
    if sa.config.follow_redirect:
        if sa.neg.redirected_from is not None:
            payloads.append(_n(NotifyType.REDIRECTED_FROM, _gateway(sa.neg.redirected_from.host)))
        else:
            payloads.append(_n(NotifyType.REDIRECT_SUPPORTED))
    payloads += [VendorIdPayload(v) for v in sa.config.vendor_ids]
    sa.send_request(_X, payloads, now)


def _gateway(host: str) -> bytes:
    ip = ipaddress.ip_address(host)
    gw_type = GatewayIdType.IPV4_ADDR if ip.version == 4 else GatewayIdType.IPV6_ADDR
    return bytes((gw_type, len(ip.packed))) + ip.packed


def _retry(sa: IkeSa, now: float, group: int | None = None) -> None:
    sa.transition(Trigger.INIT_RETRY)
    start(sa, now, group)


def handle_response(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, now: float, context: RequestContext
) -> None:
    neg, cfg = sa.neg, sa.config
    cookie = _notify(payloads, NotifyType.COOKIE)
    if cookie is not None:
        if neg.cookie_retries >= cfg.max_cookie_retries:
            raise Refuse(
                NotifyType.COOKIE,
                f"responder asked for a cookie {neg.cookie_retries + 1} times",
                fault="peer",
                received=True,
                fatal=True,
            )
        if not 1 <= len(cookie.data) <= 64:
            raise Refuse(
                NotifyType.COOKIE,
                f"cookie of {len(cookie.data)} octets (RFC 7296 §3.10.1: 1-64)",
                received=True,
                fatal=True,
            )
        neg.cookie, neg.cookie_retries = cookie.data, neg.cookie_retries + 1
        sa.emit(ev.CookieRequested(len(cookie.data)))
        _retry(sa, now)
        return
    invalid_ke = _notify(payloads, NotifyType.INVALID_KE_PAYLOAD)
    if invalid_ke is not None:
        wanted = invalid_ke.requested_group()
        offered = proposal_groups(cfg.ike_proposals)
        if (
            wanted is None
            or wanted not in offered
            or wanted == neg.ke_group
            or neg.ke_retries >= cfg.max_ke_retries
        ):
            raise Refuse(
                NotifyType.INVALID_KE_PAYLOAD,
                f"responder wants group {name_of_group(wanted)}, which we cannot retry with (offered {', '.join(name_of_group(g) for g in offered)})",
                fault="ours",
                received=True,
                fatal=True,
            )
        neg.ke_retries += 1
        sa.emit(ev.KeRetry(wanted, neg.ke_group))
        _retry(sa, now, wanted)
        return
    redirect = _notify(payloads, NotifyType.REDIRECT)
    if redirect is not None:
        _follow_redirect(sa, redirect, now)
        return
    errors = [p for p in payloads if isinstance(p, NotifyPayload) and p.is_error]
    if errors:
        e = errors[0]
        raise Refuse(
            e.notify_type,
            f"responder refused IKE_SA_INIT with {e.name}",
            fault="ours",
            received=True,
            fatal=True,
        )
    sa_p, ke_p, nonce = one(payloads, SaPayload), one(payloads, KePayload), one(payloads, NoncePayload)
    if sa_p is None or ke_p is None or nonce is None:
        raise Refuse(
            NotifyType.INVALID_SYNTAX,
            "IKE_SA_INIT response without SA, KE or Nonce",
            respond=False,
            fatal=True,
        )
    offered = tuple(replace(p, number=i, spi=b"") for i, p in enumerate(cfg.ike_proposals, 1))
    why = check_chosen(offered, sa_p.proposals)
    if why is not None:
        raise Refuse(
            NotifyType.NO_PROPOSAL_CHOSEN,
            f"unacceptable IKE proposal in the response: {why}",
            respond=False,
            fatal=True,
        )
    chosen = sa_p.proposals[0]
    if ke_p.group != neg.ke_group or chosen_group(chosen) != neg.ke_group:
        raise Refuse(
            NotifyType.INVALID_KE_PAYLOAD,
            f"response KE group {name_of_group(ke_p.group)} is not the {name_of_group(neg.ke_group)} we sent",
            respond=False,
            fatal=True,
        )
    if not 16 <= len(nonce.data) <= 256:
        raise Refuse(
            NotifyType.INVALID_SYNTAX,
            f"responder nonce of {len(nonce.data)} octets (§3.9: 16-256)",
            respond=False,
            fatal=True,
        )
    if h.spi_r == bytes(8):
        raise Refuse(
            NotifyType.INVALID_SYNTAX,
            "IKE_SA_INIT response with a zero responder SPI",
            respond=False,
            fatal=True,
        )
    try:
        shared = neg.ke.shared_secret(ke_p.data)
    except InvalidKeyExchange as e:
        raise Refuse(
            NotifyType.INVALID_SYNTAX, f"responder's key exchange value: {e}", respond=False, fatal=True
        ) from None
    sa.spi_r = h.spi_r
    neg.chosen, neg.nr = chosen, nonce.data
    # RealMessage2 as received (header length is authoritative; the marker is already gone).
    neg.init_response = sa.last_raw
    _record_capabilities(sa, payloads)
    _detect_nat(sa, h, payloads, src, sa.source)
    _derive(sa, shared)
    neg.ke = None  # the private value is not needed any more
    if neg.nat_local or neg.nat_remote or cfg.force_encap:
        sa.move_to_natt()
    _done_event(sa, payloads)
    neg.pending_addke = additional_groups(chosen)
    if neg.pending_addke and not neg.peer_intermediate:
        raise Refuse(
            0,
            "additional key exchanges chosen without INTERMEDIATE_EXCHANGE_SUPPORTED",
            respond=False,
            fatal=True,
        )
    intermediate.start(sa, now)  # the additional key exchanges (RFC 9370), then IKE_AUTH



def _follow_redirect(sa: IkeSa, n: NotifyPayload, now: float) -> None:
    info = n.redirect()
    if info is None:
        raise Refuse(NotifyType.REDIRECT, "malformed REDIRECT notify", received=True, fatal=True)
    target = info.display()
    if info.nonce and info.nonce != sa.neg.ni:
        raise Refuse(
            NotifyType.REDIRECT,
            f"REDIRECT to {target} does not echo our nonce (RFC 5685 §7)",
            received=True,
            fatal=True,
        )
    if not sa.config.follow_redirect or sa.neg.redirects >= sa.config.max_redirects:
        sa.emit(ev.Redirected(target, False))
        raise Refuse(
            NotifyType.REDIRECT,
            f"redirected to {target}, not followed (limit {sa.config.max_redirects})",
            fault="ours",
            received=True,
            fatal=True,
        )
    if info.gw_type not in (GatewayIdType.IPV4_ADDR, GatewayIdType.IPV6_ADDR):
        sa.emit(ev.Redirected(target, False))
        raise Refuse(
            NotifyType.REDIRECT,
            f"redirected to the name {target}: resolve it and start again",
            fault="ours",
            received=True,
            fatal=True,
        )
    old = sa.remote
    new = Endpoint(target, sa.config.natt_port if sa.encap else 500)
    sa.neg.redirects += 1
    sa.neg.redirected_from = old
    sa.neg.cookie, sa.neg.cookie_retries, sa.neg.ni = b"", 0, b""
    sa.spi_i = random_spi(sa.rng, 8)  # a new IKE SA with the new gateway (RFC 5685 §5)
    sa.remote = new
    sa.emit(ev.Redirected(target, True, new))
    _retry(sa, now)


# -- responder ----------------------------------------------------------------------------------


def handle_request(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, dst: Endpoint, now: float
) -> None:
    cfg, neg = sa.config, sa.neg
    sa_p, ke_p, nonce = one(payloads, SaPayload), one(payloads, KePayload), one(payloads, NoncePayload)
    if sa_p is None or ke_p is None or nonce is None:
        raise Refuse(
            NotifyType.INVALID_SYNTAX,
            "IKE_SA_INIT request without SA, KE or Nonce",
            stateless=True,
            fatal=True,
        )
    if not 16 <= len(nonce.data) <= 256:
        raise Refuse(
            NotifyType.INVALID_SYNTAX,
            f"initiator nonce of {len(nonce.data)} octets (§3.9: 16-256)",
            stateless=True,
            fatal=True,
        )
    sa.spi_i = h.spi_i  # the reply, even a stateless one, goes to this SA
    sa.remote = src
    if cfg.redirect_to is not None and _notify(payloads, NotifyType.REDIRECT_SUPPORTED) is not None:
        data = _gateway(cfg.redirect_to.host) + nonce.data
        sa.send_response(_X, h.message_id, [_n(NotifyType.REDIRECT, data)], src, dst, stateless=True)
        sa.emit(ev.Redirected(cfg.redirect_to.host, True, cfg.redirect_to))
        sa.close(f"redirected the initiator to {cfg.redirect_to.host}", by_peer=False)
        return
    if cfg.cookie_secret is not None:
        c = _notify(payloads, NotifyType.COOKIE)
        ip = ipaddress.ip_address(src.host).packed
        if c is None or not cookie_valid(
            cfg.cookie_secret, now, cfg.cookie_lifetime, c.data, nonce.data, ip, h.spi_i
        ):
            cookie = make_cookie(cfg.cookie_secret, now, cfg.cookie_lifetime, nonce.data, ip, h.spi_i)
            sa.send_response(_X, h.message_id, [_n(NotifyType.COOKIE, cookie)], src, dst, stateless=True)
            sa.emit(ev.CookieRequested(len(cookie), sent_by_us=True))
            return
    chosen = select_proposal([p for p in sa_p.proposals if p.protocol_id == 1], cfg.ike_proposals)
    if chosen is None:
        raise Refuse(NotifyType.NO_PROPOSAL_CHOSEN, "no IKE proposal in common", stateless=True, fatal=True)
    ok, want = ke_choice(chosen, ke_p.group)
    if not ok:
        sa.emit(ev.KeRetry(want, ke_p.group, sent_by_us=True))
        raise Refuse(
            NotifyType.INVALID_KE_PAYLOAD,
            f"initiator sent KE {name_of_group(ke_p.group)}, the chosen proposal has {name_of_group(want)}",
            data=want.to_bytes(2, "big"),
            stateless=True,
        )
    try:
        ke = new_key_exchange(want, sa.rng)
        our_value, shared = ke.respond(ke_p.data)
    except InvalidKeyExchange as e:
        raise Refuse(
            NotifyType.INVALID_SYNTAX, f"initiator's key exchange value: {e}", stateless=True, fatal=True
        ) from None
    sa.spi_r = random_spi(sa.rng, 8)
    neg.chosen, neg.ke_group, neg.ni, neg.nr = chosen, want, nonce.data, sa.rng.bytes(NONCE_LEN)
    neg.init_request = sa.last_raw
    _record_capabilities(sa, payloads)
    _detect_nat(sa, h, payloads, src, dst)
    out: list[Payload] = [SaPayload((chosen,)), KePayload(want, our_value), NoncePayload(neg.nr)]
    out += _natd(sa, sa.spi_r, dst, src)
    if isinstance(cfg.auth, CertAuth) and cfg.send_certreq and cfg.ca_certs:
        out.append(certreq(cfg.ca_certs))
    out += _capabilities(sa)
    if neg.peer_intermediate:
        out.append(_n(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED))
    neg.pending_addke = additional_groups(chosen)
    out += [VendorIdPayload(v) for v in cfg.vendor_ids]
    neg.init_response = sa.send_response(_X, h.message_id, out, src, dst)
    if sa.rx_marked or neg.nat_local or neg.nat_remote:
        sa.encap = True  # later messages (ours and the peer's) use the NAT-T port (§2.23)
    _derive(sa, shared)
    sa.transition(Trigger.INIT_OK)
    _done_event(sa, payloads)

