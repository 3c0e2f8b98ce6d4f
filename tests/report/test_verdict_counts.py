"""What the verdict counts: a tunnel is a CHILD SA (an IKE SA whose only CHILD SA was refused is
not a tunnel up), an IKE SA whose peer stopped answering its liveness checks is not up, a
consequence another finding explains is not one more error, and an ESP direction nobody judged
is not stated as a problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import CORPUS
from report_samples import sample_report

from ipsecdiag.keys.model import KeyStore
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Finding, IkeSaRecord, Report, Severity
from ipsecdiag.report.verdict import verdict


@pytest.mark.parametrize(("stem", "notify"), [("ikev2-ts-unacceptable", "TS_UNACCEPTABLE"), ("ikev2-child-no-proposal", "NO_PROPOSAL_CHOSEN")])
def test_refused_child_sa_is_no_tunnel(stem: str, notify: str) -> None:
    # IKE_AUTH decrypted: the IKE SA came up (RFC 7296 §2.21.2), its only CHILD SA was refused,
    # then the initiator deleted the IKE SA
    text = verdict(sample_report(stem)).text
    assert f"failed: {notify}" in text
    assert "tunnel up" not in text
    assert text.endswith("; IKE SA up, no CHILD SA (closed by DELETE), no ESP")


def test_tunnels_still_counted_with_a_child_sa() -> None:
    assert verdict(sample_report("ikev2-psk-ok")).text.startswith("1 tunnel up (closed by DELETE), ESP both ways")
    # without keys the IKE_AUTH's CHILD SA cannot be read: its ESP shows it
    assert verdict(sample_report("ikev2-psk-ok", keyed=False)).text.startswith("1 tunnel up (inferred")


def _sa(key: str) -> IkeSaRecord:
    sa = IkeSaRecord(2, bytes.fromhex(key), bytes(8), ("192.0.2.2", 4500), ("198.51.100.2", 4500))
    sa.state = "established"
    return sa


def test_dead_peer_sa_is_lost_not_up() -> None:
    sa = _sa("0102030405060708")
    dpd = Finding("dpd-timeout", Severity.ERROR, "Dead peer: liveness checks unanswered", "", "", ike_sa=sa.key)
    text = verdict(Report(ike_sas=[sa], findings=[dpd])).text
    assert "tunnel up" not in text and "1 tunnel lost (peer stopped answering)" in text
    # without the finding the same SA is up; with no CHILD SA read and no ESP of its own, the
    # verdict does not call it a tunnel (an IKE SA may have none, RFC 6023)
    text = verdict(Report(ike_sas=[_sa("0102030405060708")])).text
    assert text.startswith("IKE SA up, CHILD SA not seen (not in the capture)") and "tunnel" not in text


def test_consequence_is_not_another_error() -> None:
    r = sample_report("ikev2-frag-blackhole")
    ids = [f.id for f in r.findings]
    assert ids[:2] == ["ike-fragment-loss", "ike-unanswered"] and "ike-unanswered" in r.findings[0].explains
    assert "more error" not in verdict(r).text
    # a second error that nothing explains is still counted
    other = Finding("auth-failed", Severity.ERROR, "Authentication failed", "", "", ike_sa="ffff/0000")
    r2 = Report(ike_sas=r.ike_sas, esp_flows=r.esp_flows, findings=[*r.findings, other])
    assert verdict(r2).text.endswith("see finding 1 (+1 more error)")


def test_one_way_esp_stated_only_when_a_finding_says_so() -> None:
    judged = sample_report("esp-one-way")
    assert any(f.id == "esp-one-way" for f in judged.findings)
    assert "ESP one way only on" in verdict(judged).text
    path = CORPUS / "external" / "tcpdump" / "isakmp4500.pcap"
    if not path.is_file():
        pytest.skip(f"{path} not present (shared corpus)")
    # all-zero timestamps: esp-one-way cannot tell replies still on their way, so it declines
    r = analyze_capture(Path(path), keys=KeyStore())
    assert not any(f.id == "esp-one-way" for f in r.findings)
    text = verdict(r).text
    assert "ESP one way only" not in text and "ESP seen one way on 1 of 1 CHILD SA (too little to judge)" in text


def _corpus_report(rel: str) -> Report:
    path = CORPUS / "external" / rel
    if not path.is_file():
        pytest.skip(f"{path} not present (shared corpus)")
    return analyze_capture(Path(path), keys=KeyStore())


def test_answered_encrypted_ike_auth_is_outcome_unknown_not_failure() -> None:
    # wireshark-wiki ipsec.cap: 60 IKE_AUTH answered (1220-byte responses), no keys; the 62nd's
    # request is the last frame (in flight), one SA shown up by a CREATE_CHILD_SA
    text = verdict(_corpus_report("wireshark-wiki/ipsec.cap")).text
    assert (
        "60 of 62 IKE SAs outcome unknown (IKE_AUTH answered, encrypted), "
        "1 of 62 IKE SAs still negotiating when the capture ended, no ESP" in text
    )
    assert "not established" not in text
    # without keys, the auth-failed sample cannot show its AUTHENTICATION_FAILED either
    text = verdict(sample_report("ikev2-auth-failed", keyed=False)).text
    assert text.startswith("1 IKE SA outcome unknown (IKE_AUTH answered, encrypted)")


def test_rekey_successor_is_the_same_tunnel_and_redirect_is_no_failure() -> None:
    # one IKE SA up, not two (the successor is the same); its CHILD SA came in the first one's
    # encrypted IKE_AUTH, so without keys and without ESP no tunnel is claimed
    text = verdict(_corpus_report("tcpdump/ikev2four.pcap")).text
    assert text.startswith("IKE SA up (inferred: created by rekey") and "CHILD SA not seen (encrypted)" in text
    r = _corpus_report("scapy/ikev2_notify_redirect.pcap")
    r2 = Report(ike_sas=r.ike_sas)  # without its findings the verdict shows its traffic half
    assert verdict(r2).text.startswith("1 of 2 IKE SAs not established, 1 of 2 IKE SAs redirected to another gateway")


def test_request_in_flight_at_the_end_is_still_negotiating() -> None:
    # openswan-unit parentI2.pcap: one decrypted IKE_AUTH request, nothing after it
    path = CORPUS / "external" / "openswan-unit" / "lp12-parentR2" / "parentI2.pcap"
    if not path.is_file():
        pytest.skip(f"{path} not present (shared corpus)")
    from ipsecdiag.keys.load import load_key_sources

    r = analyze_capture(path, keys=load_key_sources([path.parent / "output1.txt"]).store)
    text = verdict(r).text
    assert text.startswith("1 IKE SA still negotiating when the capture ended, no ESP")
    assert "no finding explains why" not in text and "not established" not in text


def test_ike_sa_set_up_before_the_capture_is_not_counted_failed() -> None:
    # icmp-too-big holds only an INFORMATIONAL request (message id 2, sent at the end) of an IKE
    # SA whose IKE_SA_INIT and IKE_AUTH came before the capture: nothing shows it failed
    text = verdict(sample_report("icmp-too-big")).text
    assert "not established" not in text
    assert text.startswith("1 IKE SA set up before the capture, state unknown (no answered exchange seen), ESP both ways")
    # one that sent IKE_SA_INIT in the capture and got no answer still failed
    assert "failed: IKE requests never answered" in verdict(sample_report("ikev2-unanswered")).text


def test_ike_sa_up_without_keys_and_without_esp_is_not_a_tunnel() -> None:
    # esp-missing without keys: the IKE SA is inferred up from a later INFORMATIONAL, but its
    # IKE_AUTH (and any CHILD SA in it) is encrypted and no ESP flowed: no tunnel is claimed
    text = verdict(sample_report("esp-missing", keyed=False)).text
    assert text.startswith("IKE SA up (inferred: INFORMATIONAL 30 s after the IKE_AUTH response), CHILD SA not seen (encrypted), no ESP")
    # with the keys the CHILD SA is read: a tunnel up without ESP, which esp-missing reports
    keyed = verdict(sample_report("esp-missing")).text
    assert keyed.startswith("1 tunnel up, no ESP") and "esp-missing" in keyed
