"""Proposal mismatch diagnosis: suites, config lines, NO_PROPOSAL_CHOSEN and INVALID_KE_PAYLOAD."""

from __future__ import annotations

import pytest
from checks_builders import (
    RESP,
    exchange,
    hidden_msg,
    ike_sa,
    msg,
    notify,
    proposal,
    report,
    run,
    sa_payload,
    transform,
    v1_notify,
)
from checks_builders import TE as E
from checks_builders import TI as I
from checks_builders import TK as K
from checks_builders import TN as N
from checks_builders import TP as P
from checks_keyed import EXTERNAL, SAMPLES, analyze, needs_decryption
from corpus import needs_corpus

from ipsecdiag.diagnosis.checks.proposals import ProposalCheck
from ipsecdiag.keys._swnames import encr_keyword, integ_keyword, prf_keyword
from ipsecdiag.protocol.suites import (
    Algo,
    Suite,
    compare,
    config_lines,
    libreswan_proposal,
    strongswan_keyword,
    strongswan_proposal,
    suites_from_v1,
    suites_from_v2,
)
from ipsecdiag.reconstruction.model import Severity
from ipsecdiag.wire.ikev1_payloads import V1Attribute, V1Proposal, V1SaPayload, V1Transform
from ipsecdiag.wire.ikev2 import KePayload
from ipsecdiag.wire.registry import EncrId, EsnId, IntegId, KeGroup, PrfId, ProtocolId

GCM256 = transform(E, EncrId.ENCR_AES_GCM_16, 256)
CBC128 = transform(E, EncrId.ENCR_AES_CBC, 128)
CBC256 = transform(E, EncrId.ENCR_AES_CBC, 256)
SHA1 = transform(I, IntegId.AUTH_HMAC_SHA1_96)
SHA256 = transform(I, IntegId.AUTH_HMAC_SHA2_256_128)
PRF_SHA1 = transform(P, PrfId.PRF_HMAC_SHA1)
PRF_SHA256 = transform(P, PrfId.PRF_HMAC_SHA2_256)
PRF_SHA384 = transform(P, PrfId.PRF_HMAC_SHA2_384)
MODP1024 = transform(K, KeGroup.MODP_1024)
MODP2048 = transform(K, KeGroup.MODP_2048)
ECP256 = transform(K, KeGroup.ECP_256)
ECP384 = transform(K, KeGroup.ECP_384)
NOESN = transform(N, EsnId.NO_EXT_SEQ)
ESN = transform(N, EsnId.EXT_SEQ)

MODERN = proposal(GCM256, PRF_SHA384, ECP384)
LEGACY = proposal(CBC128, SHA1, PRF_SHA1, MODP2048)


def suite(*transforms, protocol=ProtocolId.IKE):
    return suites_from_v2(sa_payload(proposal(*transforms, protocol=protocol)))[0]


# -- configuration keywords -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("transforms", "protocol", "strongswan", "libreswan"),
    [
        (
            (GCM256, PRF_SHA384, ECP384),
            ProtocolId.IKE,
            "aes256gcm16-prfsha384-ecp384",
            "aes_gcm256-sha2_384;dh20",
        ),
        (
            (CBC256, SHA256, PRF_SHA256, MODP2048),
            ProtocolId.IKE,
            "aes256-sha256-modp2048",
            "aes256-sha2_256;modp2048",
        ),
        # a PRF other than the one implied by the integrity algorithm must be spelled out
        (
            (CBC128, SHA1, PRF_SHA256, ECP256),
            ProtocolId.IKE,
            "aes128-sha1-prfsha256-ecp256",
            "aes128-sha1;dh19",
        ),
        ((GCM256, NOESN), ProtocolId.ESP, "aes256gcm16", "aes_gcm256"),
        ((GCM256, ESN, NOESN), ProtocolId.ESP, "aes256gcm16-esn-noesn", "aes_gcm256"),
        (
            (CBC128, SHA256, MODP2048, NOESN),
            ProtocolId.ESP,
            "aes128-sha256-modp2048",
            "aes128-sha2_256;modp2048",
        ),
        (
            (
                transform(E, EncrId.ENCR_CHACHA20_POLY1305),
                transform(P, PrfId.PRF_HMAC_SHA2_512),
                transform(K, KeGroup.CURVE25519),
            ),
            ProtocolId.IKE,
            "chacha20poly1305-prfsha512-curve25519",
            "chacha20_poly1305-sha2_512;dh31",
        ),
        (
            (transform(E, EncrId.ENCR_3DES), transform(I, IntegId.AUTH_HMAC_MD5_96), MODP1024),
            ProtocolId.IKE,
            "3des-md5-modp1024",
            "3des-md5;modp1024",
        ),
    ],
)
def test_config_keywords(transforms, protocol, strongswan, libreswan) -> None:
    s = suite(*transforms, protocol=protocol)
    assert strongswan_proposal(s) == strongswan
    assert libreswan_proposal(s) == libreswan


@pytest.mark.parametrize(
    ("algo", "expected"),
    [
        (Algo(E, EncrId.ENCR_AES_CBC, 128), (EncrId.ENCR_AES_CBC, 128)),
        (Algo(E, EncrId.ENCR_AES_CBC, 256), (EncrId.ENCR_AES_CBC, 256)),
        (Algo(E, EncrId.ENCR_AES_CTR, 192), (EncrId.ENCR_AES_CTR, 192)),
        (Algo(E, EncrId.ENCR_AES_GCM_16, 256), (EncrId.ENCR_AES_GCM_16, 256)),
        (Algo(E, EncrId.ENCR_AES_GCM_8, 128), (EncrId.ENCR_AES_GCM_8, 128)),
        (Algo(E, EncrId.ENCR_AES_CCM_12, 256), (EncrId.ENCR_AES_CCM_12, 256)),
        (Algo(E, EncrId.ENCR_3DES), (EncrId.ENCR_3DES, None)),
        (Algo(E, EncrId.ENCR_CHACHA20_POLY1305), (EncrId.ENCR_CHACHA20_POLY1305, None)),
    ],
)
def test_encryption_keywords_parse_back(algo, expected) -> None:
    # keys/_swnames parses swanctl keywords independently: the two must agree.
    assert encr_keyword(strongswan_keyword(algo)) == expected


@pytest.mark.parametrize(
    "integ", [i for i in IntegId if i not in (IntegId.NONE, IntegId.AUTH_DES_MAC, IntegId.AUTH_KPDK_MD5)]
)
def test_integrity_keywords_parse_back(integ) -> None:
    assert integ_keyword(strongswan_keyword(Algo(I, integ))) == integ


@pytest.mark.parametrize(
    "prf", [p for p in PrfId if p not in (PrfId.PRF_HMAC_TIGER, PrfId.PRF_HMAC_STREEBOG_512)]
)
def test_prf_keywords_parse_back(prf) -> None:
    assert prf_keyword(strongswan_keyword(Algo(P, prf))) == prf


def test_ke_keywords() -> None:
    assert [strongswan_keyword(Algo(K, g)) for g in (14, 19, 20, 21, 31, 32, 2, 5)] == [
        "modp2048",
        "ecp256",
        "ecp384",
        "ecp521",
        "curve25519",
        "curve448",
        "modp1024",
        "modp1536",
    ]


def test_config_lines_join_suites() -> None:
    lines = config_lines(
        [suite(GCM256, PRF_SHA384, ECP384), suite(CBC256, SHA256, PRF_SHA256, MODP2048)], child=False
    )
    assert lines == {
        "strongswan": "proposals = aes256gcm16-prfsha384-ecp384, aes256-sha256-modp2048",
        "libreswan": "ike=aes_gcm256-sha2_384;dh20,aes256-sha2_256;modp2048",
    }
    esp = config_lines([suite(GCM256, NOESN, protocol=ProtocolId.ESP)], child=True)
    assert esp == {"strongswan": "esp_proposals = aes256gcm16", "libreswan": "esp=aes_gcm256"}


def test_compare_names_differing_types() -> None:
    c = compare(suite(CBC128, SHA1, PRF_SHA1, MODP2048), suite(GCM256, PRF_SHA384, ECP384))
    assert not c.matches
    assert set(c.missing) == {E, I, P, K}
    assert compare(suite(GCM256, PRF_SHA384, ECP384, ECP256), suite(GCM256, PRF_SHA384, ECP256)).matches


def test_compare_pfs_and_esn() -> None:
    pfs = suite(GCM256, ECP256, NOESN, protocol=ProtocolId.ESP)
    nopfs = suite(GCM256, NOESN, protocol=ProtocolId.ESP)
    assert compare(pfs, nopfs).missing == (K,)
    assert compare(nopfs, nopfs).matches
    # KE NONE offered alongside a group means PFS is optional: it matches a side without PFS
    optional = suite(GCM256, ECP256, transform(K, 0), NOESN, protocol=ProtocolId.ESP)
    assert compare(optional, nopfs).matches
    assert compare(suite(GCM256, ESN, protocol=ProtocolId.ESP), nopfs).missing == (N,)
    # key length matters for variable-length ciphers
    assert compare(
        suite(CBC128, SHA256, protocol=ProtocolId.ESP), suite(CBC256, SHA256, protocol=ProtocolId.ESP)
    ).missing == (E,)


def test_ikev1_phase1_suite() -> None:
    t = V1Transform(
        1,
        1,
        (
            V1Attribute(1, 7, True),
            V1Attribute(14, 256, True),
            V1Attribute(2, 4, True),
            V1Attribute(3, 1, True),
            V1Attribute(4, 14, True),
        ),
    )
    s = suites_from_v1(V1SaPayload(1, 1, (V1Proposal(1, 1, b"", (t,)),)))[0]
    assert s.version == 1 and s.protocol == "IKE" and s.auth == "PRE_SHARED_KEY"
    assert strongswan_proposal(s) == "aes256-sha256-modp2048"
    assert libreswan_proposal(s) == "aes256-sha2_256;modp2048"


def test_ikev1_esp_suite() -> None:
    # ESP_AES_CBC (12) with key length 128, HMAC_SHA2_256 (5), group 14 (PFS), tunnel mode
    t = V1Transform(
        1,
        12,
        (
            V1Attribute(6, 128, True),
            V1Attribute(5, 5, True),
            V1Attribute(3, 14, True),
            V1Attribute(4, 1, True),
        ),
    )
    s = suites_from_v1(V1SaPayload(1, 1, (V1Proposal(1, 3, b"\x01\x02\x03\x04", (t,)),)))[0]
    assert s.protocol == "ESP" and s.has_ke
    assert strongswan_proposal(s) == "aes128-sha256-modp2048"


# -- NO_PROPOSAL_CHOSEN ------------------------------------------------------------------------


def _rejected_init(offer=LEGACY, *, frame=1, spi=b"\x11" * 8, src=None):
    req = msg(payloads=[sa_payload(offer), KePayload(14, b"k")], frame=frame, ts=frame, src=src)
    resp = msg(
        from_initiator=False,
        response=True,
        payloads=[notify("NO_PROPOSAL_CHOSEN")],
        frame=frame + 1,
        ts=frame + 0.01,
        dst=src,
    )
    init = src or ("192.0.2.2", 500)
    return ike_sa(
        exchange("IKE_SA_INIT", 0, req, resp), state="failed", spi_i=spi, spi_r=None, initiator=init
    )


def _accepted_init(chosen=MODERN, *, frame=20, spi=b"\x33" * 8, src=("203.0.113.9", 500)):
    req = msg(payloads=[sa_payload(MODERN, LEGACY)], frame=frame, ts=frame, src=src)
    resp = msg(
        from_initiator=False, response=True, payloads=[sa_payload(chosen)], frame=frame + 1, ts=frame, dst=src
    )
    return ike_sa(exchange("IKE_SA_INIT", 0, req, resp), spi_i=spi, initiator=src)


def test_ike_no_proposal_without_knowledge() -> None:
    [f] = run(ProposalCheck(), report(_rejected_init()))
    assert (f.id, f.severity) == ("ike-no-proposal-chosen", Severity.ERROR)
    assert f.frames == [1, 2]
    assert any(
        "offered #1: IKE:ENCR_AES_CBC_128/AUTH_HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048" in e for e in f.evidence
    )
    assert "`proposals = aes128-sha1-modp2048`" in f.remediation
    assert "ike=aes128-sha1;modp2048" in f.remediation
    assert f.data["offered"][0]["strongswan"] == "aes128-sha1-modp2048"
    assert f.data["acceptable"] == []


def test_ike_no_proposal_uses_what_the_responder_accepted_elsewhere() -> None:
    r = report(_rejected_init(), _accepted_init())
    [f] = run(ProposalCheck(), r)
    assert any(
        e.startswith(f"{RESP[0]} accepts IKE:ENCR_AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384")
        for e in f.evidence
    )
    diff = f.data["differences"]
    assert "encryption: offered ENCR_AES_CBC_128, accepted ENCR_AES_GCM_16_256" in diff
    assert "key exchange: offered MODP_2048, accepted ECP_384" in diff
    assert "`proposals = aes256gcm16-prfsha384-ecp384`" in f.remediation
    assert f.data["config"]["accepted"]["libreswan"] == "ike=aes_gcm256-sha2_384;dh20"


def test_ike_no_proposal_uses_what_the_responder_offers_as_initiator() -> None:
    # the rejecting host initiates its own IKE SA elsewhere: its offer shows its configuration
    own = msg(payloads=[sa_payload(MODERN)], frame=30, ts=30, src=RESP, dst=("203.0.113.5", 500))
    other = ike_sa(
        exchange("IKE_SA_INIT", 0, own, None),
        spi_i=b"\x44" * 8,
        initiator=RESP,
        responder=("203.0.113.5", 500),
        state="incomplete",
    )
    [f] = run(ProposalCheck(), report(_rejected_init(), other))
    assert f.data["acceptable"][0]["strongswan"] == "aes256gcm16-prfsha384-ecp384"
    assert "offered by it as initiator" in f.data["acceptable"][0]["source"]


def test_healthy_exchange_yields_nothing() -> None:
    assert run(ProposalCheck(), report(_accepted_init())) == []


def _auth_exchange(req_inner, resp_inner):
    return exchange(
        "IKE_AUTH",
        1,
        msg(inner=req_inner, frame=3, ts=3, natt=True),
        msg(from_initiator=False, response=True, inner=resp_inner, frame=4, ts=3.1, natt=True),
    )


def test_child_no_proposal_in_ike_auth() -> None:
    offer = proposal(CBC128, SHA256, NOESN, protocol=ProtocolId.ESP, spi=b"\x01\x02\x03\x04")
    sa = ike_sa(
        _accepted_init().exchanges[0], _auth_exchange([sa_payload(offer)], [notify("NO_PROPOSAL_CHOSEN")])
    )
    [f] = run(ProposalCheck(), report(sa))
    assert f.id == "child-no-proposal-chosen"
    assert any(
        "ESP:ENCR_AES_CBC_128/AUTH_HMAC_SHA2_256_128/NO_EXT_SEQ" in e and "`aes128-sha256`" in e
        for e in f.evidence
    )
    assert "esp_proposals = aes128-sha256" in f.remediation
    assert "IKE SA itself was set up" in f.explanation


def test_child_no_proposal_hidden_request() -> None:
    ex = exchange(
        "IKE_AUTH",
        1,
        hidden_msg(frame=3, ts=3, natt=True),
        msg(
            from_initiator=False,
            response=True,
            inner=[notify("NO_PROPOSAL_CHOSEN")],
            frame=4,
            ts=3.1,
            natt=True,
        ),
    )
    [f] = run(ProposalCheck(), report(ike_sa(ex)))
    assert f.id == "child-no-proposal-chosen"
    assert any("inside the encrypted request" in e for e in f.evidence)


def test_pfs_mismatch_on_child_rekey_is_explained() -> None:
    first = proposal(GCM256, NOESN, protocol=ProtocolId.ESP, spi=b"\x0a\x0b\x0c\x0d")
    auth = _auth_exchange([sa_payload(first)], [sa_payload(first)])
    rekey_offer = proposal(GCM256, ECP256, NOESN, protocol=ProtocolId.ESP, spi=b"\x0e\x0e\x0e\x0e")
    rekey = exchange(
        "CREATE_CHILD_SA",
        2,
        msg(
            inner=[
                notify("REKEY_SA", protocol=3, spi=b"\x0a\x0b\x0c\x0d"),
                sa_payload(rekey_offer),
                KePayload(19, b"k"),
            ],
            frame=10,
            ts=10,
            natt=True,
        ),
        msg(
            from_initiator=False,
            response=True,
            inner=[notify("NO_PROPOSAL_CHOSEN")],
            frame=11,
            ts=10.1,
            natt=True,
        ),
    )
    sa = ike_sa(_accepted_init().exchanges[0], auth, rekey)
    from ipsecdiag.reconstruction.model import ChildSaRecord

    sa.child_sas.append(ChildSaRecord(spi_i=0x0A0B0C0D, spi_r=0x0A0B0C0D, created_in="IKE_AUTH"))
    [f] = run(ProposalCheck(), report(sa))
    assert f.id == "child-no-proposal-chosen"
    pfs = next(e for e in f.evidence if e.startswith("PFS"))
    assert "ECP_256" in pfs and "configured without PFS" in pfs and "IKE_AUTH" in pfs
    assert "esp_proposals = aes256gcm16-ecp256" in pfs


def test_esn_only_offer_is_explained() -> None:
    offer = proposal(GCM256, ESN, protocol=ProtocolId.ESP, spi=b"\x01\x02\x03\x04")
    sa = ike_sa(_auth_exchange([sa_payload(offer)], [notify("NO_PROPOSAL_CHOSEN")]))
    [f] = run(ProposalCheck(), report(sa))
    assert any(e.startswith("ESN: the initiator offers extended sequence numbers only") for e in f.evidence)


def test_ike_rekey_rejection_is_an_ike_proposal_mismatch() -> None:
    offer = proposal(CBC128, SHA1, PRF_SHA1, MODP1024, spi=b"\x55" * 8)
    rekey = exchange(
        "CREATE_CHILD_SA",
        5,
        msg(inner=[sa_payload(offer), KePayload(2, b"k")], frame=10, ts=10, natt=True),
        msg(
            from_initiator=False,
            response=True,
            inner=[notify("NO_PROPOSAL_CHOSEN")],
            frame=11,
            ts=10.1,
            natt=True,
        ),
    )
    [f] = run(ProposalCheck(), report(ike_sa(rekey)))
    assert f.id == "ike-no-proposal-chosen"
    assert f.data["offered"][0]["strongswan"] == "aes128-sha1-modp1024"


def test_ikev1_phase1_no_proposal() -> None:
    t = V1Transform(
        1,
        1,
        (V1Attribute(1, 5, True), V1Attribute(2, 1, True), V1Attribute(3, 1, True), V1Attribute(4, 2, True)),
    )
    m1 = msg(payloads=[V1SaPayload(1, 1, (V1Proposal(1, 1, b"", (t,)),))], frame=1, ts=1, version=1)
    mm = exchange("MAIN_MODE", 0, None, messages=[m1])
    info = exchange(
        "INFORMATIONAL_V1",
        0x1234,
        None,
        messages=[
            msg(from_initiator=False, payloads=[v1_notify("NO_PROPOSAL_CHOSEN")], frame=2, ts=1.1, version=1)
        ],
        by_initiator=False,
    )
    [f] = run(ProposalCheck(), report(ike_sa(mm, info, version=1, state="failed")))
    assert f.id == "ike-no-proposal-chosen"
    assert (
        f.data["offered"][0]["iana"] == "IKE:ENCR_3DES/AUTH_HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024/PRE_SHARED_KEY"
    )
    assert f.data["offered"][0]["strongswan"] == "3des-md5-modp1024"


def test_ikev1_quick_mode_no_proposal_is_a_child_mismatch() -> None:
    t = V1Transform(1, 12, (V1Attribute(6, 128, True), V1Attribute(5, 2, True)))
    qm1 = msg(
        inner=[V1SaPayload(1, 1, (V1Proposal(1, 3, b"\x01\x02\x03\x04", (t,)),))], frame=7, ts=7, version=1
    )
    qm = exchange("QUICK_MODE", 77, None, messages=[qm1])
    info = exchange(
        "INFORMATIONAL_V1",
        0x99,
        None,
        messages=[
            msg(
                from_initiator=False,
                inner=[v1_notify("NO_PROPOSAL_CHOSEN", protocol=3)],
                frame=8,
                ts=7.1,
                version=1,
            )
        ],
        by_initiator=False,
    )
    [f] = run(ProposalCheck(), report(ike_sa(qm, info, version=1)))
    assert f.id == "child-no-proposal-chosen"
    assert f.data["offered"][0]["strongswan"] == "aes128-sha1"


# -- INVALID_KE_PAYLOAD ------------------------------------------------------------------------


def _invalid_ke_exchange(frame=1, guessed=14, wanted=19):
    req = msg(
        payloads=[
            sa_payload(proposal(CBC256, SHA256, PRF_SHA256, MODP2048, ECP256)),
            KePayload(guessed, b"k"),
        ],
        frame=frame,
        ts=frame,
    )
    resp = msg(
        from_initiator=False,
        response=True,
        payloads=[notify("INVALID_KE_PAYLOAD", wanted.to_bytes(2, "big"))],
        frame=frame + 1,
        ts=frame + 0.01,
    )
    return exchange("IKE_SA_INIT", 0, req, resp)


def _ok_init(frame=3, group=19):
    req = msg(
        payloads=[sa_payload(proposal(CBC256, SHA256, PRF_SHA256, ECP256)), KePayload(group, b"k")],
        frame=frame,
        ts=frame,
    )
    resp = msg(
        from_initiator=False,
        response=True,
        payloads=[sa_payload(proposal(CBC256, SHA256, PRF_SHA256, ECP256)), KePayload(group, b"k")],
        frame=frame + 1,
        ts=frame + 0.01,
    )
    return exchange("IKE_SA_INIT", 0, req, resp)


def test_invalid_ke_resolved_by_retry_is_a_warning() -> None:
    [f] = run(ProposalCheck(), report(ike_sa(_invalid_ke_exchange(), _ok_init())))
    assert (f.id, f.severity) == ("ke-group-mismatch", Severity.WARNING)
    assert f.data == {"requested": "ECP_256", "guessed": "MODP_2048", "resolved": True}
    assert "`ecp256`" in f.remediation


def test_invalid_ke_retry_in_a_new_ike_sa() -> None:
    first = ike_sa(_invalid_ke_exchange(), state="failed", spi_r=None)
    second = ike_sa(_ok_init(), spi_i=b"\x77" * 8)
    [f] = run(ProposalCheck(), report(first, second))
    assert f.severity == Severity.WARNING


def test_invalid_ke_never_resolved_is_an_error() -> None:
    [f] = run(ProposalCheck(), report(ike_sa(_invalid_ke_exchange(), state="failed", spi_r=None)))
    assert (f.id, f.severity) == ("ke-group-mismatch", Severity.ERROR)
    assert f.data["resolved"] is False
    assert "ike=...;dh19" in f.remediation


def test_invalid_ke_retry_with_another_group_does_not_count() -> None:
    [f] = run(ProposalCheck(), report(ike_sa(_invalid_ke_exchange(), _ok_init(group=14))))
    assert f.severity == Severity.ERROR


def test_invalid_ke_for_a_group_never_offered() -> None:
    [f] = run(ProposalCheck(), report(ike_sa(_invalid_ke_exchange(wanted=20), state="failed")))
    assert any("never offered" in e for e in f.evidence)


def test_child_invalid_ke_reads_the_decrypted_request() -> None:
    offer = proposal(GCM256, MODP2048, NOESN, protocol=ProtocolId.ESP, spi=b"\x01\x02\x03\x04")
    ex = exchange(
        "CREATE_CHILD_SA",
        2,
        msg(inner=[sa_payload(offer), KePayload(14, b"k")], frame=9, ts=9, natt=True),
        msg(
            from_initiator=False,
            response=True,
            inner=[notify("INVALID_KE_PAYLOAD", b"\x00\x13")],
            frame=10,
            ts=9.1,
            natt=True,
        ),
    )
    [f] = run(ProposalCheck(), report(ike_sa(ex)))
    assert f.data["guessed"] == "MODP_2048" and f.data["requested"] == "ECP_256"
    assert "PFS" in f.explanation and "esp_proposals" in f.remediation


# -- real captures -----------------------------------------------------------------------------


@needs_decryption
def test_sample_invalid_ke_keeps_spi_and_retry_succeeds() -> None:
    r = analyze(SAMPLES / "ikev2-invalid-ke.pcap", SAMPLES / "ikev2-invalid-ke.charon.log")
    # strongSwan keeps its SPIi for the retried IKE_SA_INIT (RFC 7296 §1.2 allows either)
    [sa] = r.ike_sas
    assert [e.type for e in sa.exchanges[:2]] == ["IKE_SA_INIT", "IKE_SA_INIT"]
    [f] = [f for f in r.findings if f.id == "ke-group-mismatch"]
    assert f.severity == Severity.WARNING
    assert f.data == {"requested": "ECP_256", "guessed": "MODP_2048", "resolved": True}


@needs_decryption
def test_sample_no_proposal() -> None:
    r = analyze(SAMPLES / "ikev2-no-proposal.pcap", SAMPLES / "ikev2-no-proposal.charon.log")
    f = r.findings[0]
    assert f.id == "ike-no-proposal-chosen"
    assert f.data["offered"][0]["strongswan"] == "aes128-sha1-modp2048"


@needs_decryption
def test_sample_child_no_proposal_shows_decrypted_offer() -> None:
    r = analyze(SAMPLES / "ikev2-child-no-proposal.pcap", SAMPLES / "ikev2-child-no-proposal.charon.log")
    f = r.findings[0]
    assert f.id == "child-no-proposal-chosen"
    assert f.data["offered"][0]["strongswan"] == "aes128-sha256"
    assert f.data["config"]["offered"] == {
        "strongswan": "esp_proposals = aes128-sha256",
        "libreswan": "esp=aes128-sha2_256",
    }


def test_suite_iana_text() -> None:
    s = Suite("ESP", (Algo(E, 20, 256), Algo(N, 0)))
    assert s.iana_text() == "ESP:ENCR_AES_GCM_16_256/NO_EXT_SEQ"


def test_transport_mode_refused_with_matching_algorithms_says_the_mode() -> None:
    """Issue 11: the same responder accepted these ESP algorithms for another CHILD SA; the
    rejected request differs only by USE_TRANSPORT_MODE, so the mode is what was refused."""
    offer = proposal(GCM256, NOESN, protocol=ProtocolId.ESP, spi=b"\x01\x02\x03\x04")
    chosen = proposal(GCM256, NOESN, protocol=ProtocolId.ESP, spi=b"\x0a\x0b\x0c\x0d")
    ok = ike_sa(_accepted_init().exchanges[0], _auth_exchange([sa_payload(offer)], [sa_payload(chosen)]))
    refused = ike_sa(
        _accepted_init().exchanges[0],
        _auth_exchange([notify("USE_TRANSPORT_MODE"), sa_payload(offer)], [notify("NO_PROPOSAL_CHOSEN")]),
        spi_i=b"\x33" * 8,
    )
    fs = [f for f in run(ProposalCheck(), report(ok, refused)) if f.id == "child-no-proposal-chosen"]
    assert len(fs) == 1
    [f] = fs
    assert any(e.startswith("Mode:") and "transport mode" in e for e in f.evidence), f.evidence
    assert "mode = tunnel" in f.remediation and "kernel-libipsec" in f.remediation


def _v1_phase1_with_initiator_notify(state: str) -> list:
    """Main Mode 1 and 2, then an unprotected N(NO_PROPOSAL_CHOSEN) from the INITIATOR (the side
    that made the offer), then (if ``state`` says so) the rest of Main Mode and a Quick Mode."""
    t = V1Transform(
        1,
        1,
        (V1Attribute(1, 5, True), V1Attribute(2, 2, True), V1Attribute(3, 1, True), V1Attribute(4, 2, True)),
    )
    sa = [V1SaPayload(1, 1, (V1Proposal(1, 1, b"", (t,)),))]
    mm = [msg(payloads=sa, frame=1, ts=0.0, version=1)]
    mm.append(msg(from_initiator=False, payloads=sa, frame=2, ts=0.015, resend=[(4, 10.05)], version=1))
    if state != "failed":
        mm += [msg(from_initiator=i % 2 == 0, frame=5 + i, ts=10.07 + i / 100, version=1) for i in range(4)]
    info = exchange(
        "INFORMATIONAL_V1",
        0,
        None,
        messages=[msg(payloads=[v1_notify("NO_PROPOSAL_CHOSEN")], frame=3, ts=0.042, version=1)],
    )
    exchanges = [exchange("MAIN_MODE", 0, None, messages=mm), info]
    if state != "failed":
        qm = [msg(from_initiator=i % 2 == 0, frame=9 + i, ts=10.2 + i / 100, version=1) for i in range(3)]
        exchanges.append(exchange("QUICK_MODE", 572501820, None, messages=qm))
    return run(ProposalCheck(), report(ike_sa(*exchanges, version=1, state=state)))


def test_ikev1_notify_from_the_offering_side_that_phase1_survived_is_a_warning() -> None:
    """zeek ipsec.cap: the initiator sent N(14) with a zero responder cookie 42 ms after Main
    Mode 2; the responder resent MM2 and Main and Quick Mode completed. No "no IKE SA was created"."""
    [f] = _v1_phase1_with_initiator_notify("established")
    assert f.id == "ike-no-proposal-chosen" and f.severity == Severity.WARNING
    assert "no IKE SA was created" not in f.explanation
    assert "did not end the negotiation" in f.explanation and "the IKE SA was created" in f.explanation
    assert f.explanation.startswith("The initiator (192.0.2.2:500) made the offer itself (frame 1)")
    assert "refused the answer it got (frame 2)" in f.explanation
    assert any("to the responder (198.51.100.2:500) in an unprotected INFORMATIONAL, frame 3" in e for e in f.evidence)
    assert "after it: MAIN_MODE frames 4-8; QUICK_MODE frames 9-11" in f.evidence
    assert f.data["ignored"] is True and f.data["sent_by"] == "initiator"


def test_ikev1_notify_from_the_offering_side_that_ended_phase1_names_the_direction() -> None:
    [f] = _v1_phase1_with_initiator_notify("failed")
    assert f.severity == Severity.ERROR and "no IKE SA was created" in f.explanation
    # the sender is the proposer: it refused the peer's answer, never "accepted none of its own offer"
    assert "itself sent NO_PROPOSAL_CHOSEN to the responder (198.51.100.2:500)" in f.explanation
    assert "accepted none" not in f.explanation


@needs_corpus
def test_zeek_ipsec_cap_notify_that_did_not_end_main_mode() -> None:
    pcap = EXTERNAL / "zeek-spicy-ipsec" / "traces" / "ipsec.cap"
    if not pcap.is_file():
        pytest.skip(f"{pcap} not in the corpus")
    r = analyze(pcap)
    [f] = [f for f in r.findings if f.id == "ike-no-proposal-chosen"]
    assert f.severity == Severity.WARNING and "did not end the negotiation" in f.explanation
    assert r.ike_sas[0].state == "established"
    assert not [f for f in r.findings if f.severity == Severity.ERROR]
