"""Decrypted TCP SYNs: the MSS they announce is compared with what the tunnel carries
(tunnel-mtu), read cheaply on the hot path through the inner-protocol code."""

from __future__ import annotations

import itertools
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsecdiag.capture.writer import PcapWriter
from ipsecdiag.decryption.ikev2 import DecryptionSetup
from ipsecdiag.esp.sa import EspEncryptor
from ipsecdiag.keys.model import ChildSaKeys, KeyStore, SecretBytes
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.inner import SYN_CODE, inner_code, inner_name
from ipsecdiag.wire.registry import EncrId

KEYS = ChildSaKeys(
    spi=0xC0FFEE01,
    encr=EncrId.ENCR_AES_GCM_16,
    encr_key=SecretBytes(bytes(range(20))),
    encr_key_bits=128,
    src="192.0.2.1",
    dst="192.0.2.2",
    esn=False,
)


def test_inner_code_reads_the_syn_mss() -> None:
    syn = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="S", options=[("NOP", None), ("MSS", 1460)]))
    ack = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="A"))
    syn_no_mss = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / TCP(flags="S"))
    assert inner_code(4, syn) == SYN_CODE | 1460 and inner_name(inner_code(4, syn)) == "IPv4/TCP"
    assert inner_code(4, ack) == 0x406 == inner_code(4, syn_no_mss)
    assert inner_code(4, syn[:30]) == 0x406  # cut short: no crash, no MSS


def _capture(tmp: Path, packets: list[bytes]) -> Path:
    ivs = (i.to_bytes(8, "big") for i in itertools.count(1))
    enc = EspEncryptor(KEYS, lambda n: next(ivs)[:n])
    cap = tmp / "syn.pcap"
    with PcapWriter(cap, 1) as w:
        for seq, inner in enumerate(packets, 1):
            esp = enc.encrypt(inner, 4, seq=seq)
            frame = Ether() / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=4500, dport=4500) / Raw(esp)
            w.write(1000.0 + seq, bytes(frame))
    return cap


def test_tunnel_mtu_flags_an_mss_that_does_not_fit(tmp_path: Path) -> None:
    syn = bytes(IP(src="10.1.0.2", dst="10.2.0.10") / TCP(flags="S", options=[("MSS", 1460)]))
    data = [bytes(IP(src="10.1.0.2", dst="10.2.0.10") / TCP(flags="A") / Raw(b"x" * 200))] * 3
    rep = analyze_capture(_capture(tmp_path, [syn, *data]), keys=KeyStore([KEYS]), decryption=DecryptionSetup())
    (flow,) = rep.esp_flows
    assert flow.syn_mss == {1460: 1} and flow.inner_protocols["IPv4/TCP"] == 4
    (f,) = [f for f in rep.findings if f.id == "tunnel-mtu"]
    assert any("MSS 1460" in e and "above what fits" in e for e in f.evidence)
    assert f.data["mss"] < 1460


def test_small_mss_raises_nothing(tmp_path: Path) -> None:
    syn = bytes(IP(src="10.1.0.2", dst="10.2.0.10") / TCP(flags="S", options=[("MSS", 1300)]))
    rep = analyze_capture(_capture(tmp_path, [syn]), keys=KeyStore([KEYS]), decryption=DecryptionSetup())
    assert not [f for f in rep.findings if f.id == "tunnel-mtu"]
