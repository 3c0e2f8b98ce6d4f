"""ESP one way answered by ICMP errors (issue 11): the ICMP errors are the evidence, and the
capture is never said to hold nothing from that host. Synthesized with the project's writer."""

from __future__ import annotations

import struct
from pathlib import Path

from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.pipeline import analyze_capture

A, B = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 20])
LINKTYPE_RAW = 101


def _ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, ident: int) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0, src, dst)
    csum = sum(struct.unpack("!10H", hdr))
    while csum >> 16:
        csum = (csum & 0xFFFF) + (csum >> 16)
    return hdr[:10] + struct.pack("!H", ~csum & 0xFFFF) + hdr[12:] + payload


def _icmp(code: int, quoted: bytes) -> bytes:
    body = struct.pack("!BBHI", 3, code, 0, 0) + quoted[:28]
    csum = sum(struct.unpack(f"!{len(body) // 2}H", body))
    while csum >> 16:
        csum = (csum & 0xFFFF) + (csum >> 16)
    return body[:2] + struct.pack("!H", ~csum & 0xFFFF) + body[4:]


def _capture(path: Path, *, icmp: bool) -> None:
    with PcapWriter(path, LINKTYPE_RAW) as w:
        for seq in range(1, 21):
            esp = _ipv4(A, B, 50, struct.pack("!II", 0xC0FFEE01, seq) + bytes(64), seq)
            t = 1_780_000_000 + seq * 0.5
            w.write(t, esp)
            if icmp:
                w.write(t + 0.001, _ipv4(B, A, 1, _icmp(2, esp), 1000 + seq))


def test_icmp_protocol_unreachable_is_the_evidence(tmp_path: Path) -> None:
    p = tmp_path / "esp-icmp.pcap"
    _capture(p, icmp=True)
    report = analyze_capture(p)
    [f] = [f for f in report.findings if f.id == "esp-one-way"]
    text = " ".join([f.explanation, *f.evidence])
    assert "holds no IPsec packet" not in text
    assert "198.51.100.20 answered with ICMP protocol unreachable x20" in text
    assert "protocol 50 (ESP) is not handled there" in f.explanation
    assert f.data["icmp_errors"] == 20 and f.data["reverse_seen"]
    assert set(e.frame for e in report.icmp_errors) <= set(f.frames)


def test_without_icmp_the_one_way_capture_is_still_said(tmp_path: Path) -> None:
    p = tmp_path / "esp-only.pcap"
    _capture(p, icmp=False)
    report = analyze_capture(p)
    [f] = [f for f in report.findings if f.id == "esp-one-way"]
    assert "icmp_errors" not in f.data and "holds no IPsec packet" in " ".join(f.evidence)
