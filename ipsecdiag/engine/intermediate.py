"""IKE_INTERMEDIATE exchanges (RFC 9242) carrying RFC 9370 additional key exchanges.

After IKE_SA_INIT chose ``ADDKEn`` transforms (e.g. ML-KEM-768 next to ECP-256), one
IKE_INTERMEDIATE exchange per additional key exchange, in transform type order, carries
SK{KEi(n)} and SK{KEr(n)}. Both messages are protected with the keys in force before it; after
it, both sides update every key (RFC 9370 §2.2.2)::

    SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
    {SK_d(n) | SK_ai(n) | ... | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)

and IKE_AUTH authenticates every IKE_INTERMEDIATE message through IntAuth (RFC 9242 §3.3.2)::

    IntAuth_iN = prf(SK_piN, IntAuth_i(N-1) | IntAuth_iNA | IntAuth_iNP)
    IntAuth    = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID

where A is the IKE header and the Encrypted payload header with their Length fields set as if
nothing were encrypted (no IV, padding or ICV), P the inner payloads, and SK_pN the key that
protected the exchange. The chains are built from the plaintext, so they are the same whether
the message travelled in SKF fragments or not.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ..crypto.ke import InvalidKeyExchange, new_key_exchange
from ..crypto.prf import prf, rekey_skeyseed
from ..wire.ikev2 import FLAG_INITIATOR, FLAG_RESPONSE, IkeHeader, Payload, serialize_payloads
from ..wire.ikev2_payloads import KePayload, NotifyPayload
from ..wire.registry import ExchangeType, NotifyType, PayloadType
from . import auth_exchange
from .common import ike_sa_keys, name_of_group
from .config import Endpoint
from .errors import Refuse
from .state import Trigger
from .window import RequestContext

if TYPE_CHECKING:
    from .ike_sa import IkeSa

_X = ExchangeType.IKE_INTERMEDIATE


def int_auth_data(
    spi_i: bytes, spi_r: bytes, message_id: int, flags: int, first_type: int, plaintext: bytes
) -> bytes:
    """IntAuth_*A | IntAuth_*P for a message whose only payload is SK (RFC 9242 §3.3.2)."""
    header = (
        spi_i
        + spi_r
        + struct.pack("!BBBBII", PayloadType.SK, 0x20, _X, flags, message_id, 28 + 4 + len(plaintext))
    )
    return header + struct.pack("!BBH", first_type, 0, 4 + len(plaintext)) + plaintext


def _chain(sa: IkeSa, from_initiator: bool, blob: bytes) -> None:
    keys = sa.keys
    assert keys is not None and keys.prf is not None
    neg = sa.neg
    if from_initiator:
        neg.int_auth_i = prf(keys.prf, keys.sk_pi.reveal(), neg.int_auth_i + blob)
    else:
        neg.int_auth_r = prf(keys.prf, keys.sk_pr.reveal(), neg.int_auth_r + blob)


def _update_keys(sa: IkeSa, shared: bytes) -> None:
    old = sa.keys
    assert old is not None and old.prf is not None
    seed = rekey_skeyseed(old.prf, old.sk_d.reveal(), shared, sa.neg.ni, sa.neg.nr)
    sa.install_keys(ike_sa_keys(sa.neg.chosen, seed, sa.neg.ni, sa.neg.nr, sa.spi_i, sa.spi_r, prf_id=old.prf))


def _flags(sa: IkeSa, *, response: bool) -> int:
    return (FLAG_INITIATOR if sa.is_initiator else 0) | (FLAG_RESPONSE if response else 0)


# -- initiator -----------------------------------------------------------------------------------


def start(sa: IkeSa, now: float) -> None:
    """Run the next additional key exchange, or go on to IKE_AUTH when none is left."""
    if not sa.neg.pending_addke:
        sa.transition(Trigger.INIT_OK)
        auth_exchange.start(sa, now)
        return
    ttype, group = sa.neg.pending_addke[0]
    ke = new_key_exchange(group, sa.rng)
    payloads: list[Payload] = [KePayload(group, ke.public_value())]
    mid = sa.next_message_id
    first, plain = serialize_payloads(payloads)
    blob = int_auth_data(sa.spi_i, sa.spi_r, mid, _flags(sa, response=False), first, plain)
    sa.transition(Trigger.INTERMEDIATE)
    sa.send_request(_X, payloads, now, RequestContext(ke=ke, group=group, blob=blob))


def handle_response(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, now: float, ctx: RequestContext
) -> None:
    errors = [p for p in payloads if isinstance(p, NotifyPayload) and p.is_error]
    if errors:
        e = errors[0]
        raise Refuse(
            e.notify_type,
            f"IKE_INTERMEDIATE refused with {e.name}",
            fault="ours",
            received=True,
            respond=False,
            fatal=True,
        )
    ke_p = next((p for p in payloads if isinstance(p, KePayload)), None)
    if ke_p is None or ke_p.group != ctx["group"]:
        raise Refuse(
            NotifyType.INVALID_SYNTAX,
            f"IKE_INTERMEDIATE answer without a {name_of_group(ctx['group'])} KE payload",
            respond=False,
            fatal=True,
        )
    try:
        shared = ctx["ke"].shared_secret(ke_p.data)
    except InvalidKeyExchange as e:
        raise Refuse(
            NotifyType.INVALID_SYNTAX, f"additional key exchange value: {e}", respond=False, fatal=True
        ) from None
    _chain(sa, True, ctx["blob"])
    first, plain = sa.last_plain
    _chain(sa, False, int_auth_data(h.spi_i, h.spi_r, h.message_id, h.flags, first, plain))
    _update_keys(sa, shared)
    sa.neg.pending_addke.pop(0)
    start(sa, now)


# -- responder -----------------------------------------------------------------------------------


def handle_request(
    sa: IkeSa, h: IkeHeader, payloads: tuple[Payload, ...], src: Endpoint, dst: Endpoint, now: float
) -> None:
    if not sa.neg.pending_addke:
        raise Refuse(
            NotifyType.INVALID_SYNTAX, "IKE_INTERMEDIATE without an additional key exchange left", fatal=True
        )
    ttype, group = sa.neg.pending_addke[0]
    ke_p = next((p for p in payloads if isinstance(p, KePayload)), None)
    if ke_p is None or ke_p.group != group:
        got = name_of_group(ke_p.group) if ke_p is not None else "none"
        raise Refuse(
            NotifyType.INVALID_SYNTAX,
            f"additional key exchange {ttype - 5} must be {name_of_group(group)}, got {got}",
            fatal=True,
        )
    try:
        value, shared = new_key_exchange(group, sa.rng).respond(ke_p.data)
    except InvalidKeyExchange as e:
        raise Refuse(NotifyType.INVALID_SYNTAX, f"additional key exchange value: {e}", fatal=True) from None
    first, plain = sa.last_plain
    _chain(sa, True, int_auth_data(h.spi_i, h.spi_r, h.message_id, h.flags, first, plain))
    answer: list[Payload] = [KePayload(group, value)]
    a_first, a_plain = serialize_payloads(answer)
    sa.send_response(_X, h.message_id, answer, src, dst)
    _chain(
        sa,
        False,
        int_auth_data(sa.spi_i, sa.spi_r, h.message_id, _flags(sa, response=True), a_first, a_plain),
    )
    _update_keys(sa, shared)
    sa.neg.pending_addke.pop(0)
