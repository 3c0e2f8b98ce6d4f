"""Repeated attempts (issue 11): an initiator that retries against a gateway that keeps rejecting
is one finding with the count, the attempts' frames and first/last time, not one per IKE SA."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ipsecdiag.capture.reader import open_capture
from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.diagnosis.knowledge import CATALOGUE
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.report.json import report_dict

ROOT = Path(__file__).resolve().parents[2]
NO_PROPOSAL = ROOT / "sample_pcaps" / "ikev2-no-proposal.pcap"


def _retries(path: Path, attempts: int, *, gap: float = 10.0, second_initiator: bool = False) -> None:
    """The bundled NO_PROPOSAL_CHOSEN exchange replayed ``attempts`` times with a new initiator SPI
    each time (what a retrying initiator sends); with ``second_initiator`` the last attempt comes
    from another address, so it is another pair of peers."""
    with open_capture(NO_PROPOSAL) as cap:
        frames = [(ts, bytearray(data)) for _fr, ts, _lt, data, _orig in cap.frames()]
    t0 = frames[0][0]
    with PcapWriter(path, 1) as w:
        for k in range(attempts):
            for ts, data in frames:
                pkt = bytearray(data)
                ihl = (pkt[14] & 0x0F) * 4
                udp = 14 + ihl
                ike = udp + 8 + (4 if struct.unpack_from("!H", pkt, udp + 2)[0] == 4500 else 0)
                pkt[ike : ike + 8] = struct.pack("!Q", 0x5EED_0000_0000_0000 + k)
                pkt[udp + 6 : udp + 8] = b"\0\0"  # UDP checksum 0 (allowed over IPv4)
                if second_initiator and k == attempts - 1:
                    # the initiator's address is the source of its request, the destination of the answer
                    off = 14 + (12 if pkt[ike + 19] & 0x20 == 0 else 16)
                    pkt[off + 3] ^= 0x40
                    pkt[24:26] = b"\0\0"
                    csum = sum(struct.unpack_from("!10H", pkt, 14))
                    while csum >> 16:
                        csum = (csum & 0xFFFF) + (csum >> 16)
                    pkt[24:26] = struct.pack("!H", ~csum & 0xFFFF)
                w.write(ts - t0 + 1_700_000_000 + k * gap, bytes(pkt))


def test_one_finding_for_a_gateway_that_keeps_rejecting(tmp_path: Path) -> None:
    p = tmp_path / "retries.pcap"
    _retries(p, 4)
    report = analyze_capture(p)
    assert len(report.ike_sas) == 4
    npc = [f for f in report.findings if f.id == "ike-no-proposal-chosen"]
    assert len(npc) == 1
    [f] = npc
    assert f.severity == CATALOGUE["ike-no-proposal-chosen"].severity
    att = f.data["attempts"]
    assert att["count"] == 4 and att["ike_sas"] == [sa.key for sa in report.ike_sas]
    assert [a["frames"] for a in att["attempts"]] == [[1, 2], [3, 4], [5, 6], [7, 8]]
    assert f.frames == list(range(1, 9))
    assert att["first_time"].startswith("2023-11-14 22:13:20") and att["last_time"].startswith("2023-11-14 22:13:50")
    assert f.evidence[0].startswith("repeated in 4 IKE SAs between ")
    # the posture finding of each attempt is one too, listing the IKE SAs
    [weak] = [f for f in report.findings if f.id == "weak-crypto"]
    assert weak.data["attempts"]["count"] == 4
    # and the JSON carries it as documented (data.attempts)
    doc = json.loads(json.dumps(report_dict(report)))
    [j] = [x for x in doc["findings"] if x["id"] == "ike-no-proposal-chosen"]
    assert j["data"]["attempts"]["count"] == 4


def test_other_peers_are_another_finding(tmp_path: Path) -> None:
    p = tmp_path / "two.pcap"
    _retries(p, 3, second_initiator=True)
    report = analyze_capture(p)
    npc = [f for f in report.findings if f.id == "ike-no-proposal-chosen"]
    assert sorted(f.data.get("attempts", {}).get("count", 1) for f in npc) == [1, 2]


def test_a_single_attempt_is_left_as_it_was(tmp_path: Path) -> None:
    report = analyze_capture(NO_PROPOSAL)
    [f] = [f for f in report.findings if f.id == "ike-no-proposal-chosen"]
    assert "attempts" not in f.data and not f.evidence[0].startswith("repeated")
