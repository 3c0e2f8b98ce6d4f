"""strongSwan proposal strings to wire proposals (strongSwan docs: "Algorithm Proposals")."""

from __future__ import annotations

import pytest

from ipsecdiag.protocol.proposal_strings import ProposalSyntaxError, parse_proposals
from ipsecdiag.protocol.suites import strongswan_proposal, suites_from_v2
from ipsecdiag.wire.ikev2_sa import SaPayload, proposal_summary


@pytest.mark.parametrize(
    ("text", "protocol", "summary"),
    [
        ("aes256gcm16-prfsha256-ecp256", "ike", "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256"),
        ("aes128-sha256-modp2048", "ike", "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"),
        ("aes-sha1-x25519", "ike", "IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/CURVE25519"),
        ("aes256gcm16", "esp", "ESP:AES_GCM_16_256/NO_EXT_SEQ"),
        ("aes256gcm16-esn", "esp", "ESP:AES_GCM_16_256/EXT_SEQ"),
        ("aes128-sha256-modp2048-noesn", "esp", "ESP:AES_CBC_128/HMAC_SHA2_256_128/MODP_2048/NO_EXT_SEQ"),
        ("chacha20poly1305-prfsha256-curve25519-ke1_mlkem768", "ike", "IKE:CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE25519/KE1_ML_KEM_768"),
        ("aes128gcm128-prfsha256-ecp256!", "ike", "IKE:AES_GCM_16_128/PRF_HMAC_SHA2_256/ECP_256"),
    ],
)
def test_parse(text: str, protocol: str, summary: str) -> None:
    (p,) = parse_proposals(text, protocol=protocol)
    assert proposal_summary(p) == summary


def test_lists_are_numbered_and_round_trip_through_the_keyword_writer() -> None:
    ps = parse_proposals("aes256gcm16-prfsha384-ecp384, aes128-sha256-modp2048", protocol="ike")
    assert [p.number for p in ps] == [1, 2]
    texts = [strongswan_proposal(s) for s in suites_from_v2(SaPayload(ps))]
    assert texts == ["aes256gcm16-prfsha384-ecp384", "aes128-sha256-modp2048"]


@pytest.mark.parametrize(
    ("text", "protocol", "why"),
    [
        ("aes256gcm16-ecp256", "ike", "PRF"),
        ("aes128-ecp256", "ike", "PRF"),
        ("aes128-sha256", "ike", "key exchange"),
        ("aes128gcm16-aes128-sha256-modp2048", "ike", "AEAD and classic"),
        ("aes128-bogus-modp2048", "ike", "bogus"),
        ("aes128", "esp", "integrity"),
        ("aes128-sha256-esn", "ike", "esn"),
        ("aes128gcm16-prfsha256", "esp", "PRF"),
        ("", "ike", "no proposal"),
    ],
)
def test_refusals(text: str, protocol: str, why: str) -> None:
    with pytest.raises(ProposalSyntaxError, match=why):
        parse_proposals(text, protocol=protocol)
