"""IKE SA states at the edges of a capture (review 2, items 6, 8, 14): a request still in flight
when the capture ends has not failed, an IKE SA created by an answered IKE rekey is established
(RFC 7296 §1.3.2), and an RFC 5685 REDIRECT is a hand-off, not a failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import CORPUS, REPO_ROOT

from ipsecdiag.capture.reader import CaptureFile
from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.keys.load import load_key_sources
from ipsecdiag.keys.model import KeyStore
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.presentation import TextOptions, terminal_text
from ipsecdiag.reconstruction.model import Report

SAMPLE = REPO_ROOT / "sample_pcaps" / "ikev2-psk-ok.pcap"  # 1-2 IKE_SA_INIT, 3-4 IKE_AUTH
EXTERNAL = CORPUS / "external"


def _frames(path: Path) -> list[tuple[float, int, bytes]]:
    with CaptureFile(path.open("rb"), path.name) as cap:
        out = [(ts, lt, bytes(data)) for _n, ts, lt, data, _orig in cap.frames()]
    return out


def _cut(tmp: Path, picks: list[tuple[int, float]], sample: Path = SAMPLE) -> Path:
    """A capture of the sample's frames ``picks`` (1-based frame, time shift in seconds)."""
    frames = _frames(sample)
    out = tmp / "cut.pcap"
    with PcapWriter(out, frames[0][1]) as w:
        for n, shift in picks:
            ts, _lt, data = frames[n - 1]
            w.write(ts + shift, data)
    return out


def _keyed(path: Path) -> Report:
    store = load_key_sources([REPO_ROOT / "sample_pcaps" / "ikev2-psk-ok.charon.log"]).store
    return analyze_capture(path, keys=store)


def test_ike_auth_request_last_in_capture_is_in_flight(tmp_path: Path) -> None:
    r = _keyed(_cut(tmp_path, [(1, 0.0), (2, 0.0), (3, 0.0)]))
    assert r.ike_sas[0].state == "incomplete"
    assert not any(f.id == "ike-unanswered" for f in r.findings)
    text = terminal_text([r], TextOptions(ladders=True), width=100, terminal=False)  # type: ignore[arg-type]
    assert "IKE_AUTH #1: capture ended before a response could arrive" in text and "no response" not in text


def test_ike_auth_request_retransmitted_and_unanswered_failed(tmp_path: Path) -> None:
    # the same request again 3 s later: the initiator waited and got nothing
    r = _keyed(_cut(tmp_path, [(1, 0.0), (2, 0.0), (3, 0.0), (3, 3.0)]))
    assert r.ike_sas[0].state == "failed"


def test_ike_sa_init_request_alone_is_in_flight(tmp_path: Path) -> None:
    r = analyze_capture(_cut(tmp_path, [(1, 0.0)]), keys=KeyStore())
    assert r.ike_sas[0].state == "incomplete"
    r = analyze_capture(_cut(tmp_path, [(1, 0.0), (1, 1.0)]), keys=KeyStore())
    assert r.ike_sas[0].state == "failed"


def test_ikev1_first_message_alone_is_in_flight(tmp_path: Path) -> None:
    v1 = REPO_ROOT / "sample_pcaps" / "ikev1-main-psk.pcap"  # frame 1: Main Mode message 1
    r = analyze_capture(_cut(tmp_path, [(1, 0.0)], v1), keys=KeyStore())
    assert r.ike_sas[0].version == 1 and r.ike_sas[0].state == "incomplete"
    r = analyze_capture(_cut(tmp_path, [(1, 0.0), (1, 4.0)], v1), keys=KeyStore())
    assert r.ike_sas[0].state == "failed"  # sent again, still no answer: the responder never answered


def _corpus(rel: str) -> Path:
    p = EXTERNAL / rel
    if not p.is_file():
        pytest.skip(f"{p} not present (shared corpus)")
    return p


def test_wiki_last_ike_auth_in_flight() -> None:
    r = analyze_capture(_corpus("wireshark-wiki/ipsec.cap"), keys=KeyStore())
    assert r.ike_sas[61].responder[0] and r.ike_sas[61].state == "incomplete"  # IKE SA #62, frame 346


def test_openswan_single_ike_auth_request_not_failed() -> None:
    p = _corpus("openswan-unit/lp12-parentR2/parentI2.pcap")
    store = load_key_sources([p.parent / "output1.txt"]).store
    assert [sa.state for sa in analyze_capture(p, keys=store).ike_sas] == ["incomplete"]


def test_ike_sa_created_by_rekey_is_established() -> None:
    r = analyze_capture(_corpus("tcpdump/ikev2four.pcap"), keys=KeyStore())
    old, new = r.ike_sas
    assert new.rekeyed_from == old.key and new.state == "established" and new.state_basis == "inferred"
    assert new.state_evidence == f"created by rekey of IKE SA {old.key} (its CREATE_CHILD_SA at frames 19, 20)"
    text = terminal_text([r], TextOptions(ladders=True), width=100, terminal=False)  # type: ignore[arg-type]
    assert "INFORMATIONAL #0: capture ended before a response could arrive" in text
    # up, inferred; its CHILD SA was in the first IKE SA's encrypted IKE_AUTH: not claimed
    assert text.splitlines()[0].startswith("IKE SA up (inferred: created by rekey")


def test_redirect_is_a_hand_off() -> None:
    r = analyze_capture(_corpus("scapy/ikev2_notify_redirect.pcap"), keys=KeyStore())
    first, second = r.ike_sas
    assert first.state == "redirected" and second.responder[0] == "10.5.2.53"
    red = [f for f in r.findings if f.id == "ike-redirected"]
    assert len(red) == 1 and red[0].ike_sa == first.key
    assert red[0].data == {"gateway": "moneybin.duckburg.disney.com", "follow_up": second.key}
    assert "IKE SA #2 to 10.5.2.53:500 (frame 3) carries REDIRECTED_FROM 10.5.2.52" in " ".join(red[0].evidence)
    # the initiator is behind NAT whichever gateway it talks to: said once, over both IKE SAs
    nat = [f for f in r.findings if f.id == "nat-detected"]
    assert len(nat) == 1 and nat[0].frames == [1, 3]
    assert nat[0].data["attempts"]["ike_sas"] == [first.key, second.key]


def test_merge_keeps_same_peers_and_joins_one_sided_only() -> None:
    from ipsecdiag.diagnosis.repeats import merge_repeats
    from ipsecdiag.reconstruction.model import Finding, IkeSaRecord, Severity

    def sa(n: int, resp: str) -> IkeSaRecord:
        return IkeSaRecord(2, bytes([n]) * 8, bytes(8), ("10.0.0.1", 500), (resp, 500))

    a, b, c = sa(1, "192.0.2.1"), sa(2, "192.0.2.1"), sa(3, "192.0.2.9")
    r = Report(ike_sas=[a, b, c])

    def f(fid: str, s: IkeSaRecord, expl: str) -> Finding:
        return Finding(fid, Severity.ERROR, "t", expl, "fix", frames=[1], ike_sa=s.key, cause="c")

    # same peers: merged whatever the words (as before)
    out = merge_repeats(r, [f("ike-unanswered", a, "192.0.2.1:500 never answered 1"), f("ike-unanswered", b, "192.0.2.1:500 never answered 2")])
    assert len(out) == 1
    # about the initiator only, same words, two gateways: merged
    nat = "the initiator 10.0.0.1:500 is behind NAT"
    assert len(merge_repeats(r, [f("nat-detected", a, nat), f("nat-detected", c, nat)])) == 1
    # about each gateway: two findings
    out = merge_repeats(r, [f("auth-failed", a, "192.0.2.1 refused"), f("auth-failed", c, "192.0.2.9 refused")])
    assert len(out) == 2
    # one-sided but different words: two findings
    assert len(merge_repeats(r, [f("nat-detected", a, nat), f("nat-detected", c, nat + " (port 4500)")])) == 2
