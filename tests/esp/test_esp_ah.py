"""AH verification (RFC 4302) against packets built by scapy's SecurityAssociation(AH, ...)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import HBHOptUnknown, IPv6, IPv6ExtHdrDestOpt
from scapy.layers.ipsec import AH, SecurityAssociation
from scapy.packet import Packet, Raw

from ipsecdiag.esp.ah import AhStatus, AhVerifier, verify_ah
from ipsecdiag.keys.model import ChildSaKeys, SecretBytes
from ipsecdiag.wire.registry import IntegId

ALGS = [
    ("HMAC-SHA1-96", IntegId.AUTH_HMAC_SHA1_96, 20),
    ("HMAC-MD5-96", IntegId.AUTH_HMAC_MD5_96, 16),
    ("SHA2-256-128", IntegId.AUTH_HMAC_SHA2_256_128, 32),
    ("SHA2-512-256", IntegId.AUTH_HMAC_SHA2_512_256, 64),
    ("AES-CMAC-96", IntegId.AUTH_AES_CMAC_96, 16),
]


def _v4() -> Packet:
    # Record Route is mutable (zeroed for the ICV), NOP is not (RFC 4302 Appendix A.1).
    return (
        IP(src="192.0.2.1", dst="192.0.2.2", tos=0x10, ttl=9, options=[IPOption_NOP(), IPOption_RR()])
        / ICMP()
        / Raw(b"v4" * 20)
    )


def _v6() -> Packet:
    # A destination option with the "may change en route" bit (0x20) set and one without.
    opts = [HBHOptUnknown(otype=0x3E, optdata=b"\x11\x22"), HBHOptUnknown(otype=0x1E, optdata=b"\x33\x44")]
    return (
        IPv6(src="2001:db8::1", dst="2001:db8::2", tc=3, fl=77, hlim=5)
        / IPv6ExtHdrDestOpt(options=opts)
        / TCP()
        / Raw(b"v6")
    )


def _ah_offset(raw: bytes) -> int:
    if raw[0] >> 4 == 4:
        return (raw[0] & 0x0F) * 4
    nxt, off = raw[6], 40
    while nxt != 51:
        nxt, off = raw[off], off + (raw[off + 1] + 1) * 8
    return off


def _mutate_in_transit(raw: bytes, ah: int) -> bytes:
    b = bytearray(raw)
    if raw[0] >> 4 == 4:
        b[1] ^= 0xFF  # TOS
        b[8] -= 1  # TTL
        b[10:12] = b"\x12\x34"  # checksum
        b[20 + 1 + 2] = 0x99  # Record Route pointer (the option is mutable)
    else:
        b[1] ^= 0x0F  # traffic class / flow label
        b[7] -= 1  # hop limit
        b[40 + 2 + 2] ^= 0xFF  # data of the mutable (0x20) destination option
    return bytes(b)


@pytest.mark.parametrize(("name", "integ", "klen"), ALGS)
@pytest.mark.parametrize("make", [_v4, _v6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("esn", [False, True])
def test_scapy_ah_verifies(name: str, integ: int, klen: int, make: object, esn: bool) -> None:
    key = bytes(range(klen))
    sa = SecurityAssociation(
        AH, spi=0x4242, seq_num=3, auth_algo=name, auth_key=key, esn_en=esn, esn=7 if esn else 0
    )
    raw = bytes(sa.encrypt(make()))  # type: ignore[operator]
    ah = _ah_offset(raw)
    keys = ChildSaKeys(
        spi=0x4242,
        encr=0,
        encr_key=SecretBytes(b""),
        integ=integ,
        integ_key=SecretBytes(key),
        protocol="ah",
        esn=None,
        esn_high=7 if esn else None,
    )
    v = AhVerifier(keys)
    assert v.verify(b"L2" + _mutate_in_transit(raw, ah), 2, ah + 2) == AhStatus.OK
    assert v.esn is esn
    # An immutable byte changed: the ICV no longer matches.
    bad = bytearray(raw)
    bad[-1] ^= 1
    assert AhVerifier(keys).verify(bytes(bad), 0, ah) == AhStatus.INTEGRITY_FAILED
    if raw[0] >> 4 == 6:
        bad = bytearray(raw)
        bad[40 + 2 + 4 + 2] ^= 0xFF  # the immutable destination option's data
        assert AhVerifier(keys).verify(bytes(bad), 0, ah) == AhStatus.INTEGRITY_FAILED


def test_ah_statuses_and_cached_helper() -> None:
    key = bytes(20)
    sa = SecurityAssociation(AH, spi=1, auth_algo="HMAC-SHA1-96", auth_key=key)
    raw = bytes(sa.encrypt(IP(src="1.1.1.1", dst="2.2.2.2") / ICMP()))
    keys = ChildSaKeys(
        spi=1,
        encr=0,
        encr_key=SecretBytes(b""),
        integ=IntegId.AUTH_HMAC_SHA1_96,
        integ_key=SecretBytes(key),
        protocol="ah",
    )
    assert verify_ah(keys, raw, 0, 20) == AhStatus.OK
    assert verify_ah(keys, raw[:30], 0, 20) == AhStatus.TRUNCATED
    bad_len = bytearray(raw)
    bad_len[21] = 200  # AH Payload Len past the packet
    assert verify_ah(keys, bytes(bad_len), 0, 20) == AhStatus.MALFORMED
    nokey = ChildSaKeys(
        spi=1, encr=0, encr_key=SecretBytes(b""), integ=IntegId.AUTH_AES_128_GMAC, protocol="ah"
    )
    v = AhVerifier(nokey)
    assert v.verify(raw, 0, 20) == AhStatus.UNSUPPORTED and v.problem
