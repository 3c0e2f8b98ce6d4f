"""Dead peer detection: IKEv2 empty INFORMATIONAL liveness checks and IKEv1 R_U_THERE."""

from __future__ import annotations

from checks_builders import exchange, hidden_msg, ike_sa, msg, report, run, v1_notify

from ipsecdiag.diagnosis.checks.dpd import DpdCheck, empty_sk_size
from ipsecdiag.reconstruction.model import Severity
from ipsecdiag.wire.ikev2 import DeletePayload

GCM = {"encr": "ENCR_AES_GCM_16", "encr_key_bits": 256, "prf": "PRF_HMAC_SHA2_256", "ke": "ECP_256"}
CBC = {"encr": "ENCR_AES_CBC", "encr_key_bits": 128, "integ": "AUTH_HMAC_SHA2_256_128"}


def test_empty_sk_sizes() -> None:
    # header 28 + SK header 4 + IV + padded pad-length byte + ICV (RFC 7296 §3.14)
    assert empty_sk_size(ike_sa(proposal=GCM)) == 28 + 4 + 8 + 1 + 16
    assert empty_sk_size(ike_sa(proposal=CBC)) == 28 + 4 + 16 + 16 + 16
    tdes = {"encr": "ENCR_3DES", "integ": "AUTH_HMAC_SHA1_96"}
    assert empty_sk_size(ike_sa(proposal=tdes)) == 28 + 4 + 8 + 8 + 12
    assert empty_sk_size(ike_sa(proposal=None)) is None


def probe(mid, frame, *, answered=False, resend=(), hidden=False, size=57):
    kw = {"frame": frame, "ts": frame, "natt": True, "resend": resend, "size": size}
    req = hidden_msg(**kw) if hidden else msg(inner=[], **kw)
    resp = msg(from_initiator=False, response=True, inner=[], frame=frame + 1, ts=frame + 0.01, natt=True)
    return exchange("INFORMATIONAL", mid, req, resp if answered else None)


def test_unanswered_liveness_checks_until_the_capture_ends() -> None:
    sa = ike_sa(probe(2, 10, resend=[(11, 11.0), (12, 12.4), (13, 14.4)]), proposal=GCM)
    [f] = run(DpdCheck(), report(sa, last_ts=20.0))
    assert (f.id, f.severity, f.explains) == ("dpd-timeout", Severity.ERROR, ["ike-unanswered"])
    assert f.frames == [10, 11, 12, 13]
    assert f.data == {"probes": 1, "transmissions": 4, "certain": True, "peer": "198.51.100.2"}
    assert "the capture ends 5.6 s after the last transmission" in f.evidence
    assert f.explanation.startswith("Liveness checks")


def test_new_ike_sa_after_giving_up_is_named() -> None:
    old = ike_sa(probe(2, 10, resend=[(11, 11.0), (12, 12.4)]), proposal=GCM)
    new = ike_sa(exchange("IKE_SA_INIT", 0, msg(frame=20, ts=15.0)), spi_i=b"\x99" * 8, state="incomplete")
    [f] = run(DpdCheck(), report(old, new))
    assert "192.0.2.2 gave up and started a new IKE SA at frame 20, 2.6 s later" in f.evidence


def test_answered_probes_and_later_answers_mean_the_peer_lives() -> None:
    assert run(DpdCheck(), report(ike_sa(probe(2, 10, answered=True), proposal=GCM))) == []
    # one lost probe, then the next one answered: transient loss
    sa = ike_sa(probe(2, 10, resend=[(11, 11.0)]), probe(3, 30, answered=True), proposal=GCM)
    assert run(DpdCheck(), report(sa, last_ts=40)) == []


def test_probe_still_in_flight_at_capture_end() -> None:
    assert run(DpdCheck(), report(ike_sa(probe(2, 10), proposal=GCM), last_ts=10.5)) == []


def test_informational_with_payloads_is_no_liveness_check() -> None:
    ex = exchange(
        "INFORMATIONAL", 2, msg(inner=[DeletePayload(1, 0, ())], frame=10, ts=10, resend=[(11, 11.0)])
    )
    assert run(DpdCheck(), report(ike_sa(ex, proposal=GCM), last_ts=30)) == []


def test_encrypted_probe_of_empty_size_is_probable() -> None:
    sa = ike_sa(probe(2, 10, hidden=True, resend=[(11, 11.0), (12, 12.4)]), proposal=GCM)
    [f] = run(DpdCheck(), report(sa, last_ts=30))
    assert f.data["certain"] is False and "probably" in f.explanation
    assert any("57 bytes" in e for e in f.evidence)
    bigger = ike_sa(probe(2, 10, hidden=True, size=65, resend=[(11, 11.0)]), proposal=GCM)
    assert run(DpdCheck(), report(bigger, last_ts=30)) == []


def v1_info(frame, name, seq, *, from_initiator=True, hidden=False):
    kw = {"frame": frame, "ts": frame, "version": 1, "from_initiator": from_initiator}
    m = hidden_msg(**kw) if hidden else msg(inner=[v1_notify(name, data=seq.to_bytes(4, "big"))], **kw)
    return exchange("INFORMATIONAL_V1", 1000 + frame, None, messages=[m], by_initiator=from_initiator)


def test_ikev1_r_u_there_without_ack() -> None:
    sa = ike_sa(
        v1_info(10, "R_U_THERE", 7), v1_info(15, "R_U_THERE", 8), v1_info(20, "R_U_THERE", 9), version=1
    )
    [f] = run(DpdCheck(), report(sa, last_ts=25))
    assert f.data == {"probes": 3, "certain": True, "peer": "198.51.100.2"}
    assert "no R_U_THERE_ACK" in f.evidence[0]


def test_ikev1_acknowledged_r_u_there() -> None:
    sa = ike_sa(
        v1_info(10, "R_U_THERE", 7),
        v1_info(11, "R_U_THERE_ACK", 7, from_initiator=False),
        v1_info(20, "R_U_THERE", 8),
        v1_info(21, "R_U_THERE_ACK", 8, from_initiator=False),
        version=1,
    )
    assert run(DpdCheck(), report(sa, last_ts=25)) == []


def test_ikev1_hidden_one_way_informationals_are_probable() -> None:
    sa = ike_sa(*(v1_info(f, "R_U_THERE", 0, hidden=True) for f in (10, 15, 20)), version=1)
    [f] = run(DpdCheck(), report(sa, last_ts=25))
    assert f.data["certain"] is False
    answered = ike_sa(
        *(v1_info(f, "R_U_THERE", 0, hidden=True) for f in (10, 15, 20)),
        v1_info(21, "R_U_THERE_ACK", 0, hidden=True, from_initiator=False),
        version=1,
    )
    assert run(DpdCheck(), report(answered, last_ts=25)) == []


def test_one_transmission_is_no_dead_peer() -> None:
    """Issue 11: DPD death needs retransmissions of one liveness request; a single lost request
    long before the capture ends is an unanswered request, not 'retransmitted until given up'."""
    assert run(DpdCheck(), report(ike_sa(probe(2, 10), proposal=GCM), last_ts=600.0)) == []


def test_out_of_time_order_transmissions_give_a_positive_span() -> None:
    # a merged capture: the retransmission's frame comes before the first transmission's
    sa = ike_sa(probe(2, 10, resend=[(5, 14.0)]), proposal=GCM)
    [f] = run(DpdCheck(), report(sa, last_ts=30.0))
    assert "between frames 5 and 10 over 4.0 s" in f.evidence[0]
