"""esp/tunnel.py and esp/inner.py: userspace ESP for a CHILD SA, checked against the analyser's
EspDecryptor and against scapy (an independent ESP and ICMP implementation) as oracles."""

from __future__ import annotations

import warnings

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation

from ipsecdiag.crypto.rng import DeterministicRandom
from ipsecdiag.esp.inner import echo_reply, echo_request, internet_checksum, parse_icmp
from ipsecdiag.esp.sa import EspDecryptor, EspEncryptor, EspStatus
from ipsecdiag.esp.tunnel import EspTunnel, SequenceExhausted, is_esp_in_udp
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.wire.registry import EncrId, IntegId


def _keys(spi: int, *, gcm: bool = True, esn: bool = False, mode: str = "tunnel") -> ChildSaKeys:
    if gcm:
        return ChildSaKeys(spi, EncrId.ENCR_AES_GCM_16, SecretBytes(bytes(range(spi & 0xFF, (spi & 0xFF) + 36))), esn=esn, mode=mode)
    return ChildSaKeys(
        spi,
        EncrId.ENCR_AES_CBC,
        SecretBytes(bytes(range(16))),
        IntegId.AUTH_HMAC_SHA2_256_128,
        SecretBytes(bytes(range(32, 64))),
        esn=esn,
        mode=mode,
    )


def _pair(*, gcm: bool = True, esn: bool = False, mode: str = "tunnel") -> tuple[EspTunnel, EspTunnel]:
    a_out, b_out = _keys(0xC0000001, gcm=gcm, esn=esn), _keys(0xC0000002, gcm=gcm, esn=esn)
    a = EspTunnel(a_out, b_out, rng=DeterministicRandom("a"), mode=mode)
    b = EspTunnel(b_out, a_out, rng=DeterministicRandom("b"), mode=mode)
    return a, b


def test_echo_request_matches_scapy_ipv4_with_df() -> None:
    pkt = echo_request("10.1.0.2", "10.2.0.10", ident=0x1234, seq=7, size=100, df=True, ip_ident=9)
    s = IP(pkt)
    assert len(pkt) == 100 and s.len == 100 and s.flags.DF and s.proto == 1
    ref = IP(bytes(s))  # scapy recomputes nothing on a parsed packet: rebuild to compare checksums
    del ref.chksum, ref[ICMP].chksum
    assert bytes(IP(bytes(ref))) == pkt
    assert s[ICMP].type == 8 and s[ICMP].id == 0x1234 and s[ICMP].seq == 7
    assert parse_icmp(pkt) is None  # a request is neither a reply nor an error about one


def test_echo_request_matches_scapy_ipv6_checksum() -> None:
    pkt = echo_request("2001:db8::2", "2001:db8:1::10", ident=5, seq=1, size=80)
    s = IPv6(pkt)
    assert s.plen == 40 and s.nh == 58
    req = s[ICMPv6EchoRequest]
    got = req.cksum
    del req.cksum
    assert IPv6(bytes(s))[ICMPv6EchoRequest].cksum == got


def test_parse_reply_and_frag_needed() -> None:
    reply = bytes(IP(src="10.2.0.10", dst="10.1.0.2") / ICMP(type=0, id=3, seq=4) / (b"x" * 20))
    m = parse_icmp(reply)
    assert m is not None and m.is_reply and (m.ident, m.seq, m.size) == (3, 4, 48) and m.checksum_ok
    ours = echo_request("10.1.0.2", "10.2.0.10", ident=3, seq=9, size=1400)
    err = bytes(IP(src="10.2.0.1", dst="10.1.0.2") / ICMP(type=3, code=4, nexthopmtu=1280) / ours[:28])
    m = parse_icmp(err)
    assert m is not None and not m.is_reply and m.mtu == 1280 and (m.ident, m.seq) == (3, 9)
    assert parse_icmp(b"") is None and parse_icmp(b"\x45" + bytes(5)) is None
    assert internet_checksum(b"\x00\x01\xf2\x03\xf4\xf5\xf6\xf7") == 0x220D  # RFC 1071 §3 example


@pytest.mark.parametrize("gcm", [True, False])
@pytest.mark.parametrize("esn", [False, True])
def test_round_trip_and_analyser_decrypts(gcm: bool, esn: bool) -> None:
    a, b = _pair(gcm=gcm, esn=esn)
    pkt = echo_request("10.1.0.2", "10.2.0.10", ident=1, seq=1, size=84)
    esp = a.protect_packet(pkt)
    assert is_esp_in_udp(esp) and esp[:4] == (0xC0000001).to_bytes(4, "big")
    assert int.from_bytes(esp[4:8], "big") == 1  # RFC 4303 §3.3.3: starts at 1
    assert len(esp) == a.esp_size(len(pkt))
    got = b.unprotect(esp)
    assert got.ok and got.packet == pkt and got.next_header == 4 and got.seq == 1
    # the analyser's decryptor (what `analyze` runs) opens it too
    status, nh, payload, _hi = EspDecryptor(_keys(0xC0000001, gcm=gcm, esn=esn)).decrypt(esp, 0, len(esp))
    assert status == EspStatus.OK and nh == 4 and payload == pkt
    # and we open what the analyser's encryptor protects
    other = EspEncryptor(_keys(0xC0000001, gcm=gcm, esn=esn), DeterministicRandom("x").bytes).encrypt(pkt, 4, seq=2)
    assert b.unprotect(other).packet == pkt


def test_replay_window_and_wrong_spi() -> None:
    a, b = _pair()
    pkts = [a.protect_packet(echo_request("10.1.0.2", "10.2.0.10", ident=1, seq=i, size=60)) for i in range(1, 101)]
    assert b.unprotect(pkts[99]).ok
    assert b.unprotect(pkts[99]).status == "replay"
    assert b.unprotect(pkts[10]).status == "too-old"  # seq 11 is left of a 64-packet window at 100
    assert b.unprotect(pkts[60]).ok and b.unprotect(pkts[60]).status == "replay"
    tampered = pkts[98][:-1] + bytes([pkts[98][-1] ^ 1])
    assert b.unprotect(tampered).status == "integrity-failed"
    assert b.unprotect(pkts[98]).ok  # a forged copy must not have moved the window
    assert a.unprotect(pkts[0]).status == "unknown-spi"
    assert b.drops["replay"] == 2 and b.received == 3


def test_transport_mode_carries_the_l4_payload() -> None:
    a, b = _pair(mode="transport")
    pkt = echo_request("192.0.2.2", "198.51.100.2", ident=2, seq=3, size=64, df=False)
    esp = a.protect_packet(pkt)
    assert len(esp) == a.esp_size(64 - 20)  # only the ICMP message travels
    got = b.unprotect(esp, src="192.0.2.2", dst="198.51.100.2")
    assert got.next_header == 1 and got.packet == pkt  # the header rebuilt from the outer addresses
    assert b.unprotect(a.protect_packet(pkt)).packet == pkt[20:]  # without them: the bare payload


def test_sequence_counter_never_cycles() -> None:
    a, _b = _pair()
    a.next_seq = 0xFFFFFFFF
    a.protect(b"x", 59)
    with pytest.raises(SequenceExhausted):
        a.protect(b"x", 59)
    e, _ = _pair(esn=True)
    e.next_seq = 0x1_0000_0005
    esp = e.protect(b"y", 59)
    assert int.from_bytes(esp[4:8], "big") == 5  # only the low half travels


def test_scapy_opens_our_tunnel_mode_esp() -> None:
    """scapy's SecurityAssociation (independent code) decrypts our ESP and sees our ICMP."""
    key = bytes(range(0xC0000001 & 0xFF, (0xC0000001 & 0xFF) + 36))
    a, _b = _pair()
    pkt = echo_request("10.1.0.2", "10.2.0.10", ident=0x4242, seq=1, size=120)
    esp = a.protect_packet(pkt)
    sa = SecurityAssociation(ESP, spi=0xC0000001, crypt_algo="AES-GCM", crypt_key=key, tunnel_header=IP(src="192.0.2.2", dst="198.51.100.2"))
    outer = IP(src="192.0.2.2", dst="198.51.100.2", proto=50) / ESP(bytes(esp))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inner = sa.decrypt(IP(bytes(outer)))
    assert inner[ICMP].id == 0x4242 and bytes(inner) == pkt


def test_echo_reply_matches_what_scapy_builds() -> None:
    req = echo_request("10.1.0.2", "10.2.0.10", ident=0x99, seq=4, size=120, df=True, ip_ident=7)
    rep = echo_reply(req)
    assert rep is not None and len(rep) == 120
    ref = IP(src="10.2.0.10", dst="10.1.0.2", id=7, flags="DF") / ICMP(type=0, id=0x99, seq=4) / bytes(IP(req)[ICMP].payload)
    assert rep == bytes(ref)
    m = parse_icmp(rep)
    assert m is not None and m.is_reply and m.checksum_ok and (m.ident, m.seq) == (0x99, 4)
    rep6 = echo_reply(echo_request("2001:db8::2", "2001:db8:1::10", ident=1, seq=2, size=90))
    assert rep6 is not None
    m6 = parse_icmp(rep6)
    assert m6 is not None and m6.is_reply and m6.checksum_ok and m6.src == "2001:db8:1::10"
    assert echo_reply(rep) is None and echo_reply(b"\x45") is None
