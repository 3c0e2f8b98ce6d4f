"""NAT-D hashes against what real implementations computed in negotiations without NAT.

RFC 7296 §2.23 and RFC 3947 §3.2 give no test vectors; captures of peers with no NAT between
them are the known answer: every NAT-D hash a peer sent equals the hash of the addresses and
ports in the captured datagram (the source hash of the sender's own endpoint, the destination
hash of the receiver's). The bundled strongSwan captures force UDP encapsulation (random
source hashes), so only their destination hashes are known answers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from corpus import CORPUS, REPO_ROOT, needs_corpus

from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.protocol.natd import judge_side, natd_hash_v1, natd_hash_v2, v1_hash_name
from ipsecdiag.reconstruction.model import MessageRecord
from ipsecdiag.wire import ikev1 as v1
from ipsecdiag.wire import ikev2 as v2
from ipsecdiag.wire.registry import NotifyType

SAMPLES = REPO_ROOT / "sample_pcaps"


def _messages(path: Path) -> list[MessageRecord]:
    r = analyze_capture(path)
    return [m for sa in r.ike_sas for ex in sa.exchanges for m in ex.all_messages()]


def _v2_checked(path: Path, *, sources: bool) -> int:
    checked = 0
    for m in _messages(path):
        hdr = m.parsed.header
        for p in m.all_payloads():
            if not isinstance(p, v2.NotifyPayload):
                continue
            if p.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP and sources:
                assert p.data == natd_hash_v2(hdr.spi_i, hdr.spi_r, m.src, m.sport)
                checked += 1
            elif p.notify_type == NotifyType.NAT_DETECTION_DESTINATION_IP:
                assert p.data == natd_hash_v2(hdr.spi_i, hdr.spi_r, m.dst, m.dport)
                checked += 1
    return checked


def test_v2_natd_destination_matches_strongswan() -> None:
    assert _v2_checked(SAMPLES / "ikev2-psk-ok.pcap", sources=False) == 2


@needs_corpus
def test_v2_natd_matches_wireshark_testsuite() -> None:
    # Source and destination hashes of the IKE_SA_INIT request and response.
    path = CORPUS / "external" / "wireshark-testsuite" / "ikev2-decrypt-aes256cbc.pcapng"
    assert _v2_checked(path, sources=True) == 4


@needs_corpus
def test_v1_natd_matches_main_mode() -> None:
    checked = 0
    path = CORPUS / "external" / "suricata-verify" / "ikev1-rules" / "ikev1-isakmp-main-mode.pcap"
    for m in _messages(path):
        hashes = [p.hash for p in m.all_payloads() if isinstance(p, v1.V1NatDPayload)]
        if not hashes:
            continue
        hdr = m.parsed.header
        alg = v1_hash_name(None, hashes[0])
        assert alg is not None
        # RFC 3947 §3.2: the first NAT-D is the peer's address, the rest the sender's own.
        assert hashes[0] == natd_hash_v1(alg, hdr.cookie_i, hdr.cookie_r, m.dst, m.dport)
        assert natd_hash_v1(alg, hdr.cookie_i, hdr.cookie_r, m.src, m.sport) in hashes[1:]
        checked += 1
    assert checked == 2


def test_packed_and_text_addresses_agree() -> None:
    spi_i, spi_r = bytes(range(8)), bytes(8)
    assert natd_hash_v2(spi_i, spi_r, "192.0.2.1", 500) == natd_hash_v2(
        spi_i, spi_r, bytes([192, 0, 2, 1]), 500
    )
    want = hashlib.sha1(spi_i + spi_r + bytes([192, 0, 2, 1]) + (4500).to_bytes(2, "big")).digest()
    assert natd_hash_v2(spi_i, spi_r, "192.0.2.1", 4500) == want
    assert len(natd_hash_v2(spi_i, spi_r, "2001:db8::1", 500)) == 20


def test_v1_hash_name() -> None:
    assert v1_hash_name("SHA2_256", b"x" * 20) == "SHA2_256"  # the negotiated hash wins
    assert v1_hash_name(None, b"x" * 20) == "SHA"
    assert v1_hash_name(None, b"x" * 48) == "SHA2_384"
    assert v1_hash_name("TIGER", b"x" * 24) is None
    assert v1_hash_name(None, b"x" * 7) is None


def test_judge_side_tells_what_the_hashes_can_and_cannot_show() -> None:
    # RFC 7296 §2.23: a source mismatch alone is a NAT in front of the sender or forced encapsulation
    assert judge_side(False, True, False).verdict == "nat-or-forced" and judge_side(False, True, False).nat is None
    assert judge_side(False, False, False).verdict == "none" and judge_side(False, False, False).nat is False
    # a translated source port shows a NAPT in front of the sender
    assert judge_side(False, True, True).behind == "outside"
    # a mismatching hash of S's address in a message to S: S is behind a NAT, seen from inside it,
    # where S's own source hash would match unless S forces encapsulation
    inside = judge_side(True, True, False)
    assert inside.behind == "inside" and inside.forced and inside.nat is True and inside.verdict == "nat"
