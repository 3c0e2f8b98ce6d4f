"""AUTHENTICATION_FAILED (who rejected whom, method, identities, EAP) and generic error notifies."""

from __future__ import annotations

from checks_builders import (
    exchange,
    ike_sa,
    msg,
    notify,
    report,
    run,
    v1_notify,
)
from checks_keyed import LAB, SAMPLES, analyze, needs_decryption
from corpus import needs_corpus

from ipsecdiag.diagnosis.checks.auth import AuthCheck
from ipsecdiag.diagnosis.checks.notify import ErrorNotifyCheck
from ipsecdiag.reconstruction.model import Severity
from ipsecdiag.wire.ikev1_payloads import V1IdPayload
from ipsecdiag.wire.ikev2 import AuthPayload, EapPayload, IdPayload
from ipsecdiag.wire.registry import AuthMethod, IdType

IDI = IdPayload(35, IdType.ID_FQDN, b"client.example")
IDR_WANTED = IdPayload(36, IdType.ID_FQDN, b"gateway.example")
PSK_AUTH = AuthPayload(AuthMethod.SHARED_KEY_MIC, b"\x01" * 32)
SIG_AUTH = AuthPayload(AuthMethod.DIGITAL_SIGNATURE, b"\x02" * 64)


def _auth(req_inner, resp_inner, mid=1, frame=3):
    return exchange(
        "IKE_AUTH",
        mid,
        msg(inner=req_inner, frame=frame, ts=frame, natt=True),
        msg(
            from_initiator=False, response=True, inner=resp_inner, frame=frame + 1, ts=frame + 0.1, natt=True
        ),
    )


def test_responder_rejects_initiator_psk() -> None:
    sa = ike_sa(_auth([IDI, IDR_WANTED, PSK_AUTH], [notify("AUTHENTICATION_FAILED")]), state="failed")
    [f] = run(AuthCheck(), report(sa))
    assert (f.id, f.severity) == ("auth-failed", Severity.ERROR)
    assert f.data["rejected"] == "initiator" and f.data["rejecting"] == "responder"
    assert f.data["kind"] == "psk" and f.data["method"] == "SHARED_KEY_MIC"
    assert "rejected the initiator's authentication (pre-shared key)" in f.explanation
    assert "IDi: client.example (ID_FQDN)" in f.evidence
    assert f.data["identities"] == {"IDi": "client.example", "IDr_requested": "gateway.example"}
    assert "pre-shared keys differ" in f.remediation
    assert f.frames == [3, 4]


def test_initiator_rejects_responder_in_informational() -> None:
    auth = _auth(
        [IDI, IDR_WANTED, SIG_AUTH],
        [IdPayload(36, IdType.ID_FQDN, b"gateway.example"), SIG_AUTH],
    )
    info = exchange(
        "INFORMATIONAL",
        2,
        msg(inner=[notify("AUTHENTICATION_FAILED")], frame=5, ts=3.2, natt=True),
        msg(from_initiator=False, response=True, inner=[], frame=6, ts=3.3, natt=True),
    )
    [f] = run(AuthCheck(), report(ike_sa(auth, info, state="failed")))
    assert f.data["rejected"] == "responder" and f.data["rejecting"] == "initiator"
    assert f.data["kind"] == "signature" and f.data["method"] == "DIGITAL_SIGNATURE"
    assert any("new INFORMATIONAL request after the IKE_AUTH response" in e for e in f.evidence)
    assert "The initiator (192.0.2.2:4500) rejected the responder's authentication" in f.explanation
    assert "trusts the issuing CA" in f.remediation


def test_identity_mismatch_is_named() -> None:
    auth = _auth([IDI, IDR_WANTED, SIG_AUTH], [IdPayload(36, IdType.ID_FQDN, b"vpn.other.example"), SIG_AUTH])
    info = exchange(
        "INFORMATIONAL", 2, msg(inner=[notify("AUTHENTICATION_FAILED")], frame=5, ts=4, natt=True)
    )
    [f] = run(AuthCheck(), report(ike_sa(auth, info, state="failed")))
    assert any(
        e.startswith(
            "identity mismatch: the initiator asked for IDr gateway.example (ID_FQDN) but the responder "
            "identified as vpn.other.example (ID_FQDN)"
        )
        for e in f.evidence
    )
    assert "identities do not match" in f.remediation


def test_same_identity_different_case_is_no_mismatch() -> None:
    auth = _auth([IDI, IDR_WANTED, PSK_AUTH], [IdPayload(36, IdType.ID_FQDN, b"Gateway.Example"), PSK_AUTH])
    info = exchange(
        "INFORMATIONAL", 2, msg(inner=[notify("AUTHENTICATION_FAILED")], frame=5, ts=4, natt=True)
    )
    [f] = run(AuthCheck(), report(ike_sa(auth, info)))
    assert not any(e.startswith("identity mismatch") for e in f.evidence)


def test_eap_failure() -> None:
    # RFC 3748: Response/MSCHAPv2 (type 26), then the server's Failure (code 4)
    round1 = _auth(
        [IDI, IDR_WANTED],
        [IdPayload(36, IdType.ID_FQDN, b"gateway.example"), SIG_AUTH, EapPayload(b"\x01\x01\x00\x05\x01")],
    )
    round2 = _auth(
        [EapPayload(b"\x02\x02\x00\x06\x1a\x00")], [EapPayload(b"\x04\x02\x00\x04")], mid=2, frame=5
    )
    [f] = run(AuthCheck(), report(ike_sa(round1, round2, state="failed")))
    assert f.data["kind"] == "eap" and f.data["eap_failure"] is True
    assert f.data["method"] == "EAP-MSCHAPV2"
    assert f.data["rejected"] == "initiator"
    assert any("EAP-Failure (code 4) in frame 6" in e for e in f.evidence)
    assert "EAP credentials" in f.remediation


def test_eap_success_is_no_failure() -> None:
    round1 = _auth([IDI], [SIG_AUTH, EapPayload(b"\x01\x01\x00\x05\x01")])
    round2 = _auth(
        [EapPayload(b"\x02\x02\x00\x06\x1a\x00")], [EapPayload(b"\x03\x02\x00\x04")], mid=2, frame=5
    )
    assert run(AuthCheck(), report(ike_sa(round1, round2))) == []


def test_successful_auth_yields_nothing() -> None:
    sa = ike_sa(
        _auth([IDI, IDR_WANTED, PSK_AUTH], [IdPayload(36, IdType.ID_FQDN, b"gateway.example"), PSK_AUTH])
    )
    assert run(AuthCheck(), report(sa)) == []


def test_ikev1_hash_failure() -> None:
    mm5 = msg(inner=[V1IdPayload(2, 17, 500, b"client.example")], frame=5, ts=5, version=1)
    mm = exchange("MAIN_MODE", 0, None, messages=[mm5])
    info = exchange(
        "INFORMATIONAL_V1",
        0x42,
        None,
        messages=[
            msg(
                from_initiator=False,
                payloads=[v1_notify("INVALID_HASH_INFORMATION")],
                frame=6,
                ts=5.1,
                version=1,
            )
        ],
        by_initiator=False,
    )
    sa = ike_sa(
        mm,
        info,
        version=1,
        state="failed",
        proposal={"protocol": "IKE", "encr": "AES_CBC", "auth": "PRE_SHARED_KEY"},
    )
    [f] = run(AuthCheck(), report(sa))
    assert f.data["kind"] == "psk" and f.data["rejected"] == "initiator"
    assert "ID (initiator): client.example" in f.evidence


# -- error-notify -------------------------------------------------------------------------------


def test_other_error_notifies_are_named() -> None:
    sa = ike_sa(_auth([IDI, PSK_AUTH], [notify("INTERNAL_ADDRESS_FAILURE")]))
    [f] = run(ErrorNotifyCheck(), report(sa))
    assert f.id == "error-notify" and f.title == "Error notify INTERNAL_ADDRESS_FAILURE"
    assert "virtual IP" in f.explanation
    assert f.data == {"notify": "INTERNAL_ADDRESS_FAILURE"}


def test_dedicated_notifies_are_left_to_their_checks() -> None:
    for name in ("AUTHENTICATION_FAILED", "NO_PROPOSAL_CHOSEN", "TS_UNACCEPTABLE", "INVALID_KE_PAYLOAD"):
        sa = ike_sa(_auth([IDI, PSK_AUTH], [notify(name)]))
        assert run(ErrorNotifyCheck(), report(sa)) == [], name


def test_status_notifies_are_not_errors() -> None:
    sa = ike_sa(_auth([IDI, PSK_AUTH, notify("INITIAL_CONTACT")], [PSK_AUTH, notify("MOBIKE_SUPPORTED")]))
    assert run(ErrorNotifyCheck(), report(sa)) == []


def test_ikev1_invalid_id_information_depends_on_phase() -> None:
    def info(frame):
        return exchange(
            "INFORMATIONAL_V1",
            frame,
            None,
            messages=[
                msg(
                    from_initiator=False,
                    inner=[v1_notify("INVALID_ID_INFORMATION")],
                    frame=frame,
                    ts=frame,
                    version=1,
                )
            ],
            by_initiator=False,
        )

    phase1 = ike_sa(
        exchange("MAIN_MODE", 0, None, messages=[msg(frame=1, ts=1, version=1)]), info(2), version=1
    )
    [f] = run(ErrorNotifyCheck(), report(phase1))
    assert f.data == {"notify": "INVALID_ID_INFORMATION"}
    qm = exchange("QUICK_MODE", 9, None, messages=[msg(inner=[], frame=3, ts=3, version=1)])
    phase2 = ike_sa(
        exchange("MAIN_MODE", 0, None, messages=[msg(frame=1, ts=1, version=1)]), qm, info(4), version=1
    )
    assert run(ErrorNotifyCheck(), report(phase2)) == []


# -- real captures ------------------------------------------------------------------------------


@needs_decryption
def test_sample_auth_failed() -> None:
    r = analyze(SAMPLES / "ikev2-auth-failed.pcap", SAMPLES / "ikev2-auth-failed.charon.log")
    f = r.findings[0]
    assert f.id == "auth-failed"
    assert f.data["rejected"] == "initiator" and f.data["kind"] == "psk"
    assert f.data["identities"]["IDi"] == "client.example"


@needs_corpus
@needs_decryption
def test_lab_auth_failed_with_wireshark_keys() -> None:
    lab = LAB / "ikev2-auth-failed"
    r = analyze(lab / "capture.pcap", lab / "wireshark-keys")
    f = r.findings[0]
    assert (f.id, f.data["rejecting"], f.data["kind"]) == ("auth-failed", "responder", "psk")
    assert f.frames[-1] == 4  # truth.json: AUTHENTICATION_FAILED in frame 4


def test_explain_knows_every_id_these_checks_emit() -> None:
    from ipsecdiag.diagnosis.checks.auth import AuthCheck as A
    from ipsecdiag.diagnosis.checks.notify import ErrorNotifyCheck as N
    from ipsecdiag.diagnosis.checks.proposals import ProposalCheck as P
    from ipsecdiag.diagnosis.checks.selectors import SelectorCheck as S
    from ipsecdiag.diagnosis.knowledge import explain_text

    for check in (A, N, P, S):
        for fid in check.finding_ids:
            title, rows = explain_text(fid)
            assert title.startswith(fid) and rows[0][0] == "Severity"


def test_temporary_failure_is_a_warning() -> None:
    ex = exchange(
        "CREATE_CHILD_SA",
        2,
        msg(inner=[], frame=7, ts=7, natt=True),
        msg(
            from_initiator=False,
            response=True,
            inner=[notify("TEMPORARY_FAILURE")],
            frame=8,
            ts=7.1,
            natt=True,
        ),
    )
    [f] = run(ErrorNotifyCheck(), report(ike_sa(ex)))
    assert (f.id, f.severity) == ("error-notify", Severity.WARNING)
    assert "retry" in f.explanation
