"""Posture: weak algorithms, IKEv1 Aggressive Mode with PSK, rekeys without PFS, rekey collisions."""

from __future__ import annotations

from checks_builders import TE as E
from checks_builders import TI as I
from checks_builders import TK as K
from checks_builders import TN as N
from checks_builders import TP as P
from checks_builders import (
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
)
from checks_keyed import EXTERNAL, SAMPLES, analyze, needs_decryption
from corpus import needs_corpus

from ipsecdiag.diagnosis.checks.posture import PostureCheck
from ipsecdiag.reconstruction.model import ChildSaRecord, Severity
from ipsecdiag.wire.ikev1_payloads import (
    V1Attribute,
    V1HashPayload,
    V1IdPayload,
    V1Proposal,
    V1SaPayload,
    V1Transform,
)
from ipsecdiag.wire.ikev2 import KePayload
from ipsecdiag.wire.registry import EncrId, EsnId, IntegId, KeGroup, PrfId, ProtocolId

STRONG = proposal(
    transform(E, EncrId.ENCR_AES_GCM_16, 256),
    transform(P, PrfId.PRF_HMAC_SHA2_256),
    transform(K, KeGroup.ECP_256),
)
WEAK = proposal(
    transform(E, EncrId.ENCR_3DES),
    transform(I, IntegId.AUTH_HMAC_MD5_96),
    transform(P, PrfId.PRF_HMAC_MD5),
    transform(K, KeGroup.MODP_1024),
)


def init_exchange(offer, chosen, frame=1):
    return exchange(
        "IKE_SA_INIT",
        0,
        msg(payloads=[sa_payload(*offer)], frame=frame, ts=frame),
        msg(
            from_initiator=False,
            response=True,
            payloads=[sa_payload(chosen)] if chosen else [],
            frame=frame + 1,
            ts=frame + 0.01,
        ),
    )


def _esp(*transforms, spi=b"\x01\x02\x03\x04"):
    return proposal(*transforms, protocol=ProtocolId.ESP, spi=spi)


# -- weak-crypto ----------------------------------------------------------------------------------


def test_weak_ike_algorithms_negotiated() -> None:
    [f] = run(PostureCheck(), report(ike_sa(init_exchange([WEAK], WEAK))))
    assert (f.id, f.severity, f.title) == ("weak-crypto", Severity.WARNING, "Weak cryptography negotiated")
    weak = f.data["negotiated"][0]["weak"]
    assert any(w.startswith("ENCR_3DES: 3DES") for w in weak)
    assert any(w.startswith("AUTH_HMAC_MD5_96") for w in weak) and any(
        w.startswith("MODP_1024") for w in weak
    )
    assert "proposals = aes256gcm16-prfsha256-ecp256" in f.remediation


def test_weak_algorithms_only_offered_are_info() -> None:
    [f] = run(PostureCheck(), report(ike_sa(init_exchange([STRONG, WEAK], STRONG))))
    assert (f.severity, f.title) == (Severity.INFO, "Weak cryptography offered")
    assert f.data["negotiated"] == [] and f.data["offered_only"]


def test_offer_without_answer_is_info() -> None:
    [f] = run(PostureCheck(), report(ike_sa(init_exchange([WEAK], None), state="incomplete")))
    assert f.severity == Severity.INFO


def test_strong_algorithms_yield_nothing() -> None:
    assert run(PostureCheck(), report(ike_sa(init_exchange([STRONG], STRONG)))) == []


def test_weak_child_sa_from_decrypted_ike_auth() -> None:
    esp = _esp(
        transform(E, EncrId.ENCR_AES_CBC, 128),
        transform(I, IntegId.AUTH_HMAC_SHA1_96),
        transform(N, EsnId.NO_EXT_SEQ),
    )
    auth = exchange(
        "IKE_AUTH",
        1,
        msg(inner=[sa_payload(esp)], frame=3, ts=3, natt=True),
        msg(from_initiator=False, response=True, inner=[sa_payload(esp)], frame=4, ts=3.1, natt=True),
    )
    [f] = run(PostureCheck(), report(ike_sa(init_exchange([STRONG], STRONG), auth)))
    assert f.severity == Severity.WARNING
    assert f.data["negotiated"][0]["what"] == "CHILD SA (ESP)"
    assert "esp_proposals = aes256gcm16" in f.remediation


def _v1_transform(encr=7, bits=128, hash_=2, auth=1, group=2):
    attrs = [
        V1Attribute(1, encr, True),
        V1Attribute(2, hash_, True),
        V1Attribute(3, auth, True),
        V1Attribute(4, group, True),
    ]
    if bits:
        attrs.append(V1Attribute(14, bits, True))
    return V1Transform(1, 1, tuple(attrs))


def _v1_sa(t):
    return V1SaPayload(1, 1, (V1Proposal(1, 1, b"", (t,)),))


def test_ikev1_main_mode_weak_phase1() -> None:
    t = _v1_transform(encr=5, bits=0, hash_=1)
    mm = exchange(
        "MAIN_MODE",
        0,
        None,
        messages=[
            msg(payloads=[_v1_sa(t)], frame=1, ts=1, version=1),
            msg(from_initiator=False, payloads=[_v1_sa(t)], frame=2, ts=1.1, version=1),
        ],
    )
    [f] = run(PostureCheck(), report(ike_sa(mm, version=1)))
    assert f.severity == Severity.WARNING
    assert (
        f.data["negotiated"][0]["suite"]
        == "IKE:ENCR_3DES/AUTH_HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024/PRE_SHARED_KEY"
    )


# -- Aggressive Mode ---------------------------------------------------------------------------------


def _aggressive(auth=1, answered=True):
    t = _v1_transform(auth=auth, group=14, hash_=4, bits=256)
    m1 = msg(payloads=[_v1_sa(t), V1IdPayload(2, 17, 500, b"vpnuser.example")], frame=1, ts=1, version=1)
    msgs = [m1]
    if answered:
        msgs.append(
            msg(
                from_initiator=False,
                payloads=[_v1_sa(t), V1HashPayload(b"\x00" * 32)],
                frame=2,
                ts=1.1,
                version=1,
            )
        )
    ex = exchange("AGGRESSIVE_MODE", 0, None, messages=msgs)
    return ike_sa(
        ex, version=1, proposal={"protocol": "IKE", "auth": {1: "PRE_SHARED_KEY", 3: "RSA_SIGNATURES"}[auth]}
    )


def test_aggressive_mode_psk() -> None:
    [f] = [x for x in run(PostureCheck(), report(_aggressive())) if x.id == "ikev1-aggressive-psk"]
    assert f.severity == Severity.WARNING and f.frames == [1, 2]
    assert any("vpnuser.example" in e for e in f.evidence)
    assert "offline" in f.explanation


def test_aggressive_mode_without_psk_or_answer_is_not_reported() -> None:
    for sa in (_aggressive(auth=3), _aggressive(answered=False)):
        assert not [x for x in run(PostureCheck(), report(sa)) if x.id == "ikev1-aggressive-psk"]


@needs_corpus
def test_external_aggressive_mode_capture() -> None:
    from ipsecdiag.pipeline import analyze_capture

    r = analyze_capture(EXTERNAL / "zeek-spicy-ipsec" / "traces" / "ipsec-ikev1-isakmp-aggressive-mode.pcap")
    ids = {(f.id, f.severity) for f in r.findings}
    assert ("ikev1-aggressive-psk", Severity.WARNING) in ids
    assert ("weak-crypto", Severity.WARNING) in ids  # SHA-1 and MODP-1024 negotiated


@needs_corpus
def test_external_weak_dh_offer() -> None:
    from ipsecdiag.pipeline import analyze_capture

    r = analyze_capture(EXTERNAL / "suricata-verify" / "ikev2-weak-dh" / "IKEv2_SA_INIT_2-8-weak.pcap")
    [f] = [f for f in r.findings if f.id == "weak-crypto"]
    assert f.severity == Severity.INFO and "MODP_1024" in f.explanation


# -- no PFS ------------------------------------------------------------------------------------------

GCM_ESP = _esp(transform(E, EncrId.ENCR_AES_GCM_16, 256), transform(N, EsnId.NO_EXT_SEQ))


def rekey(mid, frame, *, by_initiator=True, spi=b"\x01\x02\x03\x04", ke=False, kind="child", resp_ts=None):
    req_inner = []
    if kind == "child":
        req_inner.append(notify("REKEY_SA", protocol=3, spi=spi))
        req_inner.append(sa_payload(GCM_ESP))
    else:
        req_inner.append(sa_payload(proposal(*STRONG.transforms, spi=b"\x55" * 8)))
    if ke:
        req_inner.append(KePayload(19, b"k"))
    resp_inner = [sa_payload(GCM_ESP if kind == "child" else proposal(*STRONG.transforms, spi=b"\x66" * 8))]
    return exchange(
        "CREATE_CHILD_SA",
        mid,
        msg(inner=req_inner, frame=frame, ts=frame, natt=True, from_initiator=by_initiator),
        msg(
            from_initiator=not by_initiator,
            response=True,
            inner=resp_inner,
            frame=frame + 1,
            ts=resp_ts if resp_ts is not None else frame + 0.01,
            natt=True,
        ),
        by_initiator=by_initiator,
    )


def _posture(sa, fid):
    return [f for f in run(PostureCheck(), report(sa)) if f.id == fid]


def test_child_rekey_without_ke_is_no_pfs() -> None:
    [f] = _posture(ike_sa(rekey(2, 10)), "no-pfs")
    assert f.severity == Severity.INFO and f.data == {"rekeys": 1}
    assert "rekeyed 0x01020304 without a KE payload" in f.evidence[0]


def test_rekey_with_ke_new_child_and_ike_rekey_are_not_no_pfs() -> None:
    new_child = rekey(3, 20)
    new_child.request.inner = tuple(
        p for p in new_child.request.inner if getattr(p, "name", "") != "REKEY_SA"
    )
    for ex in (rekey(2, 10, ke=True), new_child, rekey(4, 30, kind="ike")):
        assert _posture(ike_sa(ex), "no-pfs") == []


# -- rekey collisions --------------------------------------------------------------------------------


def _pair_sa(*exs):
    sa = ike_sa(*exs)
    sa.child_sas.append(ChildSaRecord(spi_i=0x01020304, spi_r=0x0A0B0C0D, created_in="IKE_AUTH"))
    return sa


def test_simultaneous_child_rekeys() -> None:
    a = rekey(2, 10, spi=b"\x01\x02\x03\x04", resp_ts=12.5)
    b = rekey(0, 11, by_initiator=False, spi=b"\x0a\x0b\x0c\x0d", resp_ts=11.6)
    [f] = _posture(_pair_sa(a, b), "rekey-collision")
    assert f.severity == Severity.WARNING and f.data == {"target": "child"}
    assert f.frames == [10, 11, 12] or set(f.frames) >= {10, 11}


def test_sequential_rekeys_are_no_collision() -> None:
    a = rekey(2, 10, spi=b"\x01\x02\x03\x04")  # answered at 10.01
    b = rekey(0, 11, by_initiator=False, spi=b"\x0a\x0b\x0c\x0d")
    assert _posture(_pair_sa(a, b), "rekey-collision") == []


def test_rekeys_of_different_children_are_no_collision() -> None:
    a = rekey(2, 10, spi=b"\x01\x02\x03\x04", resp_ts=12.5)
    b = rekey(0, 11, by_initiator=False, spi=b"\x77\x77\x77\x77", resp_ts=11.6)
    assert _posture(_pair_sa(a, b), "rekey-collision") == []


def test_simultaneous_ike_rekeys() -> None:
    a = rekey(2, 10, kind="ike", resp_ts=12.5)
    b = rekey(0, 11, kind="ike", by_initiator=False, resp_ts=11.6)
    [f] = _posture(ike_sa(a, b), "rekey-collision")
    assert f.data == {"target": "ike"}


def test_encrypted_overlapping_requests_are_a_probable_collision() -> None:
    a = exchange(
        "CREATE_CHILD_SA",
        2,
        hidden_msg(frame=10, ts=10, natt=True),
        hidden_msg(from_initiator=False, response=True, frame=13, ts=12.5, natt=True),
    )
    b = exchange(
        "CREATE_CHILD_SA",
        0,
        hidden_msg(from_initiator=False, frame=11, ts=11, natt=True),
        hidden_msg(response=True, frame=12, ts=11.6, natt=True),
        by_initiator=False,
    )
    [f] = _posture(ike_sa(a, b), "rekey-collision")
    assert f.data == {"target": "probable"} and "probably" in f.explanation


# -- samples ------------------------------------------------------------------------------------------


@needs_decryption
def test_sample_no_proposal_offers_sha1() -> None:
    r = analyze(SAMPLES / "ikev2-no-proposal.pcap", SAMPLES / "ikev2-no-proposal.charon.log")
    [f] = [f for f in r.findings if f.id == "weak-crypto"]
    assert f.severity == Severity.INFO
    assert any("AUTH_HMAC_SHA1_96" in w for w in f.data["offered_only"][0]["weak"])
