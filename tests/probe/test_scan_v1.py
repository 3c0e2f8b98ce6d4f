"""The IKEv1 probes of probe scan: offers built with the wire codecs read back as intended, and
answers classified (a HASH_R in an Aggressive Mode answer is flagged, RFC 2409 §5.4)."""

from __future__ import annotations

from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.engine.scan_v1 import MAIN_OFFER, aggressive_request, classify, main_mode_request
from ipsecdiag.protocol.suites import suites_from_v1
from ipsecdiag.wire.ikev1 import parse_v1_message, serialize_v1_message
from ipsecdiag.wire.ikev1_payloads import (
    V1HashPayload,
    V1IdPayload,
    V1KePayload,
    V1Message,
    V1NoncePayload,
    V1NotifyPayload,
    V1SaPayload,
    V1VendorIdPayload,
)
from ipsecdiag.wire.registry import V1Exchange, V1IdType, V1NotifyType

COOKIE = bytes(range(1, 9))


def test_main_mode_offer_reads_back() -> None:
    msg = parse_v1_message(main_mode_request(COOKIE))
    assert msg.header.exchange_type == V1Exchange.MAIN_MODE and msg.header.cookie_i == COOKIE
    sa = msg.payloads[0]
    assert isinstance(sa, V1SaPayload)
    suites = suites_from_v1(sa)
    assert len(suites) == len(MAIN_OFFER)
    assert suites[0].iana_text() == "IKE:ENCR_AES_CBC_256/AUTH_HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048/PRE_SHARED_KEY"
    assert [p.vendor for p in msg.payloads if isinstance(p, V1VendorIdPayload)] == ["NAT-T (RFC 3947)", "DPD (RFC 3706)", "FRAGMENTATION"]


def test_aggressive_offer_has_one_group_and_our_identity() -> None:
    msg = parse_v1_message(aggressive_request(COOKIE, DeterministicRandom("a"), b"client@example"))
    sa, ke = msg.payloads[0], msg.payloads[1]
    assert isinstance(sa, V1SaPayload) and isinstance(ke, V1KePayload) and len(ke.data) == 256
    assert {a.id for s in suites_from_v1(sa) for a in s.algos if a.type == 4} == {14}
    ident = next(p for p in msg.payloads if isinstance(p, V1IdPayload))
    assert ident.id_type == V1IdType.ID_USER_FQDN and ident.data == b"client@example"


def _answer(exchange: int, payloads: tuple) -> bytes:
    offer = parse_v1_message(main_mode_request(COOKIE))
    h = offer.header.__class__(COOKIE, b"R" * 8, 0, 1, 0, exchange, 0, 0, 0)
    return serialize_v1_message(V1Message(h, payloads))


def test_aggressive_answer_with_hash_is_flagged() -> None:
    offer = parse_v1_message(aggressive_request(COOKIE, DeterministicRandom("b")))
    sa = offer.payloads[0]
    assert isinstance(sa, V1SaPayload)
    chosen = V1SaPayload(sa.doi, sa.situation, (sa.proposals[0].__class__(1, 1, b"", sa.proposals[0].transforms[:1]),))
    data = _answer(
        V1Exchange.AGGRESSIVE_MODE,
        (chosen, V1KePayload(b"k" * 256), V1NoncePayload(b"n" * 32), V1IdPayload(2, 17, 500, b"gw"), V1HashPayload(b"h" * 32)),
    )
    a = classify("aggressive", data)
    assert a.answered and a.reveals_hash and a.chosen is not None and a.cookie_r == b"R" * 8


def test_refusal_and_garbage() -> None:
    refusal = _answer(V1Exchange.INFORMATIONAL, (V1NotifyPayload(1, 1, b"", V1NotifyType.NO_PROPOSAL_CHOSEN),))
    a = classify("main", refusal)
    assert a.answered and a.notifies == ["NO_PROPOSAL_CHOSEN"] and a.chosen is None and not a.reveals_hash
    bad = classify("main", refusal[:20] + b"\xff" * 12)
    assert not bad.answered and bad.malformed
