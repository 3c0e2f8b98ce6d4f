"""IKEv1 CHILD SA (Quick Mode) proposals in the shape of the IKEv2 ones (review 2, item 16):
``encr``, ``encr_key_bits``, ``integ``, ``ke``, ``esn`` plus ``mode`` and ``encap``, which IKEv1
negotiates as IPsec SA attributes (RFC 2407 §4.5, RFC 3947 §5 for the UDP modes)."""

from __future__ import annotations

from checks_keyed import SAMPLES, analyze, needs_v1_decryption

from ipsecdiag.reconstruction.proposals import ipsec_transform_dict_v1, proposal_dicts_v1_all
from ipsecdiag.report.json import report_dict
from ipsecdiag.report.view import proposal_short
from ipsecdiag.wire.ikev1_payloads import V1Attribute, V1Proposal, V1Transform
from ipsecdiag.wire.registry import V1ProtocolId

ESP = V1ProtocolId.PROTO_IPSEC_ESP


def test_esp_transform_attributes_by_name() -> None:
    # RFC 2407 §4.5: class 1 life type (1 = seconds), 2 duration, 3 group (PFS), 4 encapsulation
    # mode (3 = UDP-Encapsulated-Tunnel, RFC 3947 §5), 5 authentication algorithm (5 = HMAC-SHA2-256),
    # 6 key length; transform id 12 = ESP_AES (RFC 2407 §4.4.4, "ESP_AES_CBC" in the registry)
    t = V1Transform(
        1,
        12,
        (
            V1Attribute(1, 1, True),
            V1Attribute(2, 3600, True),
            V1Attribute(3, 14, True),
            V1Attribute(4, 3, True),
            V1Attribute(5, 5, True),
            V1Attribute(6, 256, True),
        ),
    )
    d = ipsec_transform_dict_v1(ESP, t)
    assert d == {
        "protocol": "ESP",
        "encr": "ESP_AES_CBC",
        "encr_key_bits": 256,
        "integ": "HMAC_SHA2_256",
        "ke": "MODP_2048",
        "mode": "tunnel",
        "encap": "udp",
        "life_seconds": 3600,
    }
    assert proposal_short(d) == "AES_CBC_256/HMAC_SHA2_256/MODP_2048"


def test_transport_modes_and_esn() -> None:
    draft = V1Transform(1, 3, (V1Attribute(4, 61444, True), V1Attribute(5, 2, True), V1Attribute(11, 1, True)))
    d = ipsec_transform_dict_v1(ESP, draft)  # UDP-Encapsulated-Transport, draft value
    assert (d["mode"], d["encap"], d["encr"], d["integ"], d["esn"]) == (
        "transport",
        "udp",
        "ESP_3DES",
        "HMAC_SHA",
        "EXT_SEQ",
    )
    plain = ipsec_transform_dict_v1(ESP, V1Transform(1, 12, (V1Attribute(4, 2, True),)))
    assert (plain["mode"], plain["encap"]) == ("transport", "none")


def test_offered_quick_mode_proposals_have_the_same_shape() -> None:
    t = V1Transform(1, 12, (V1Attribute(6, 128, True), V1Attribute(5, 2, True), V1Attribute(4, 1, True)))
    [d] = proposal_dicts_v1_all(V1Proposal(1, ESP, b"\x01\x02\x03\x04", (t,)))
    assert d["encr"] == "ESP_AES_CBC" and d["encr_key_bits"] == 128 and d["integ"] == "HMAC_SHA"
    assert d["mode"] == "tunnel" and d["encap"] == "none" and d["spi"] == "01020304"
    assert d["summary"] == "ESP:AES_CBC_128/HMAC_SHA1/TUNNEL"


@needs_v1_decryption
def test_sample_quick_mode_child_sa_proposal_in_json_and_table() -> None:
    r = analyze(SAMPLES / "ikev1-main-psk.pcap", SAMPLES / "ikev1-main-psk.charon.log")
    [child] = [c for sa in r.ike_sas for c in sa.child_sas]
    assert proposal_short(child.proposal) == "AES_CBC_256/HMAC_SHA2_256"
    [j] = [c for sa in report_dict(r)["ike_sas"] for c in sa["child_sas"]]
    p = j["proposal"]
    assert (p["protocol"], p["encr"], p["encr_key_bits"], p["integ"]) == ("ESP", "ESP_AES_CBC", 256, "HMAC_SHA2_256")
    assert p["mode"] == j["mode"] == "tunnel" and p["encap"] in ("udp", "none")
