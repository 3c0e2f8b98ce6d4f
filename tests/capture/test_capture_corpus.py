"""Every capture in the shared corpus reads and decodes; several agree with tshark.

How the tshark comparison is made fair (each difference was checked by hand):
  * tshark's ``esp``/``isakmp`` also match packets quoted inside ICMP errors; we report those
    as ``on_icmp_error``, so frames containing ``icmp``/``icmpv6`` are left out of its sets.
  * AH followed by ESP shows ``esp`` in tshark; the decoder hands such frames to ``on_ah``
    only (analysis decides), so ESP-after-AH frames count as AH.
  * An IP-fragmented IKE message is one ``on_ike`` whose ``frame`` is its last fragment, the
    frame where tshark shows the reassembled ``isakmp``; so message frames compare 1:1.
  * tshark still dissects what we report as malformed (a UDP length beyond the IP payload)
    or truncated (a fragment cut by the snaplen, which cannot be reassembled); those frames
    are removed from tshark's sets.
  * Wireshark rejects an IKE header whose length field is below 28 and shows "Data"; we pass
    such messages on (the wire codecs report them), so they are removed from ours.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from capture_helpers import RecordingSink
from corpus import CORPUS, needs_corpus

from ipsecdiag.capture.decode import Decoder
from ipsecdiag.capture.reader import open_capture

EXTENSIONS = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")


def corpus_captures() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name.endswith(EXTENSIONS))


def decode(path: Path) -> tuple[Decoder, RecordingSink, int]:
    sink = RecordingSink()
    dec = Decoder(sink)
    with open_capture(path) as cap:
        for fr in cap.frames():
            dec.feed(*fr)
        frames = cap.stats.frames
    dec.finish()
    return dec, sink, frames


@needs_corpus
def test_every_corpus_capture_reads_and_decodes() -> None:
    paths = corpus_captures()
    assert len(paths) > 50
    total_ike = total_esp = 0
    for path in paths:
        dec, sink, frames = decode(path)
        assert frames > 0, path
        assert dec.ipsec_frames + sum(dec.skipped.values()) == frames, path
        total_ike += len(sink.ike)
        total_esp += len(sink.esp)
    # The corpus is IPsec captures: most of what it holds must come out as IKE and ESP.
    assert total_ike > 900 and total_esp > 900


# A spread of link types, NAT-T, IP fragments, AH, ICMP, IPv6 and broken files (each tshark
# start costs most of a second, so not all of them).
TSHARK_FILES = [
    "lab/ikev2-fragmentation/capture.pcap",
    "external/ndpi/ipsec_isakmp_esp.pcap",
    "external/zeek-spicy-ipsec/traces/ipsec_client.pcap",
    "external/zeek-spicy-ipsec/traces/IPsec_ESP-AH_tunnel_mode.cap",
    "external/zeek-spicy-ipsec/traces/ipsec-ikev1-zero-length.pcap",
    "external/zeek/ip6_esp.pcap",
    "external/wireshark-wiki/ipsec_esp_capture_2/capture.pcap",
    "external/tcpdump/ikev2four.pcap",
    "external/tcpdump/esp_truncated.pcap",
    "external/tcpdump/isakmp-delete-segfault.pcap",
]


def tshark_protocols(path: Path) -> dict[int, list[str]]:
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "frame.protocols"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    rows = (line.split("\t") for line in out.splitlines() if line)
    return {int(num): protos.split(":") for num, protos in rows}


@needs_corpus
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed: no oracle")
@pytest.mark.parametrize("rel", TSHARK_FILES)
def test_ike_esp_ah_frames_match_tshark(rel: str) -> None:
    path = CORPUS / rel
    if not path.is_file():
        pytest.skip(f"{rel} not in this corpus")
    dec, sink, _ = decode(path)
    protos = tshark_protocols(path)
    ours_problem = {m[0] for m in sink.malformed} | {
        t[0] for t in sink.truncated if not _esp_frame(sink, t[0])
    }

    def theirs(name: str) -> set[int]:
        return {
            n
            for n, p in protos.items()
            if name in p and "icmp" not in p and "icmpv6" not in p and (name == "ah" or "ah" not in p)
        } - ours_problem

    ike_ours = {m.frame for m in sink.ike if struct.unpack_from("!I", m.data, 24)[0] >= 28}
    assert ike_ours == theirs("isakmp")
    assert {e.frame for e in sink.esp} == theirs("esp")
    assert {a[0] for a in sink.ah} == theirs("ah")


def _esp_frame(sink: RecordingSink, frame: int) -> bool:
    return any(e.frame == frame for e in sink.esp)
