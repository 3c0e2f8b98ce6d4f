"""Proposal selection and the initiator's check (RFC 7296 §2.7, §3.3.6), KE choice (§1.2)."""

from __future__ import annotations

from dataclasses import replace

from ipsecdiag.protocol.proposal_strings import parse_proposals
from ipsecdiag.protocol.select import check_chosen, ke_choice, proposal_groups, select_proposal
from ipsecdiag.wire.ikev2_sa import proposal_summary
from ipsecdiag.wire.registry import KeGroup


def _p(text: str, protocol: str = "ike"):
    return parse_proposals(text, protocol=protocol)


def test_responder_preference_wins_and_one_transform_per_type() -> None:
    offered = _p("aes128-aes256-sha256-sha1-modp2048-ecp256")
    ours = _p("aes256-sha1-ecp256,aes128-sha256-modp2048")
    chosen = select_proposal(offered, ours)
    assert chosen is not None
    assert proposal_summary(chosen) == "IKE:AES_CBC_256/HMAC_SHA1_96/PRF_HMAC_SHA1/ECP_256"
    assert chosen.number == 1  # the peer's proposal number
    assert check_chosen(offered, [chosen]) is None


def test_key_length_must_match() -> None:
    assert select_proposal(_p("aes128gcm16-prfsha256-ecp256"), _p("aes256gcm16-prfsha256-ecp256")) is None


def test_different_transform_type_sets_do_not_match() -> None:
    # An ESP offer with PFS against a configuration without: types differ (§3.3.6).
    assert select_proposal(_p("aes128gcm16-modp2048", "esp"), _p("aes128gcm16", "esp")) is None
    assert select_proposal(_p("aes128gcm16", "esp"), _p("aes128gcm16", "esp")) is not None


def test_second_offered_proposal_number_is_echoed() -> None:
    offered = _p("aes256gcm16-prfsha384-ecp384,aes128-sha256-modp2048")
    chosen = select_proposal(offered, _p("aes128-sha256-modp2048"))
    assert chosen is not None and chosen.number == 2


def test_check_chosen_refusals() -> None:
    offered = _p("aes128-sha256-modp2048")
    good = select_proposal(offered, offered)
    assert good is not None
    assert "exactly one" in check_chosen(offered, [good, good])
    assert "not offered" in check_chosen(offered, [replace(good, number=9)])
    two_encr = replace(good, transforms=good.transforms + good.transforms[:1])
    assert "more than one" in check_chosen(offered, [two_encr])
    other = _p("aes256-sha256-modp2048")[0]
    assert "was not offered" in check_chosen(offered, [replace(other, number=1)])


def test_ke_choice_and_groups() -> None:
    chosen = select_proposal(_p("aes128-sha256-ecp256-modp2048"), _p("aes128-sha256-modp2048"))
    assert chosen is not None
    assert ke_choice(chosen, KeGroup.ECP_256) == (False, KeGroup.MODP_2048)
    assert ke_choice(chosen, KeGroup.MODP_2048) == (True, KeGroup.MODP_2048)
    assert proposal_groups(_p("aes128-sha256-ecp256-modp2048,aes256gcm16-prfsha256-curve25519-ecp256")) == [
        KeGroup.ECP_256,
        KeGroup.MODP_2048,
        KeGroup.CURVE25519,
    ]
