"""AH in a capture: flows counted, ICVs verified during analysis when the key store has the SA
(RFC 4302), a tampered packet counted as an integrity failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.ipsec import AH, SecurityAssociation
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.decryption.ikev2 import DecryptionSetup
from ipsecdiag.keys.model import ChildSaKeys, KeyStore, SecretBytes
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.reconstructor import ip_header_before
from ipsecdiag.wire.registry import IntegId

KEY = bytes(range(20))


def _packets(v6: bool) -> list[bytes]:
    sa = SecurityAssociation(AH, spi=0x1234, auth_algo="HMAC-SHA1-96", auth_key=KEY)
    out = []
    for seq in range(1, 6):
        if v6:
            inner = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrDestOpt() / ICMP() / Raw(b"x" * 20)
        else:
            inner = IP(src="192.0.2.1", dst="192.0.2.2", options=[IPOption_NOP(), IPOption_RR()]) / ICMP()
        out.append(bytes(Ether() / sa.encrypt(inner, seq_num=seq)))
    return out


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4-options", "ipv6-ext"])
def test_ah_verified_in_analysis(tmp_path: Path, v6: bool) -> None:
    frames = _packets(v6)
    bad = bytearray(frames[-1])
    bad[-1] ^= 0xFF  # payload changed after the ICV was computed
    frames[-1] = bytes(bad)
    cap = tmp_path / "ah.pcap"
    with PcapWriter(cap, 1) as w:
        for i, f in enumerate(frames):
            w.write(1000.0 + i, f)
    src, dst = ("2001:db8::1", "2001:db8::2") if v6 else ("192.0.2.1", "192.0.2.2")
    keys = KeyStore(
        [
            ChildSaKeys(
                spi=0x1234,
                encr=0,
                encr_key=SecretBytes(),
                integ=IntegId.AUTH_HMAC_SHA1_96,
                integ_key=SecretBytes(KEY),
                protocol="ah",
                src=src,
                dst=dst,
            )
        ]
    )
    rep = analyze_capture(cap, keys=keys, decryption=DecryptionSetup())
    (flow,) = rep.ah_flows
    assert (flow.packets, flow.verified, flow.integrity_failed) == (5, 4, 1)
    assert (flow.seq_first, flow.seq_last) == (1, 5)


def test_ah_without_keys_is_only_counted(tmp_path: Path) -> None:
    cap = tmp_path / "ah.pcap"
    with PcapWriter(cap, 1) as w:
        for i, f in enumerate(_packets(False)):
            w.write(1000.0 + i, f)
    (flow,) = analyze_capture(cap).ah_flows
    assert (flow.packets, flow.verified, flow.integrity_failed) == (5, 0, 0)


def test_ip_header_located_before_ah() -> None:
    raw = _packets(False)[0]
    ip_off = 14
    ah_off = ip_off + (raw[ip_off] & 15) * 4
    assert ip_header_before(raw, ah_off, 51) == ip_off
    assert ip_header_before(raw, ah_off + 4, 51) is None
