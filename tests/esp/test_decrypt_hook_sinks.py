"""Where the ESP decrypt hook sends a decrypted packet: inner IPv4/IPv6 (tunnel mode) to
``ip_out`` when given, TFC padding cut by the inner header (RFC 4303 §2.4, §2.7); everything
else to ``plain``; dummy packets (next header 59, RFC 4303 §2.6) nowhere."""

from __future__ import annotations

import itertools
import struct

from ipsecdiag.decryption.esp import EspDecryptHook, trim_tfc
from ipsecdiag.esp.sa import EspEncryptor
from ipsecdiag.keys.model import ChildSaKeys, KeyStore, SecretBytes
from ipsecdiag.reconstruction.esp_tracker import FlowState
from ipsecdiag.wire.registry import EncrId, IntegId

SRC, DST = bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))


def _v4(payload: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 17, 0, SRC, DST) + payload


def _v6(payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), 17, 64, bytes(16), bytes(16)) + payload


def test_trim_tfc() -> None:
    v4, v6 = _v4(b"abc"), _v6(b"defg")
    assert trim_tfc(4, v4 + bytes(9)) == v4
    assert trim_tfc(41, v6 + bytes(9)) == v6
    assert trim_tfc(4, v4) is v4  # nothing to cut: no copy
    assert trim_tfc(41, v6) is v6
    # a length field past the data, below the header, or a packet too short: left as it is
    long4 = v4[:2] + b"\xff\xff" + v4[4:]
    assert trim_tfc(4, long4) is long4
    short4 = v4[:2] + b"\x00\x13" + v4[4:]
    assert trim_tfc(4, short4) is short4
    long6 = v6[:4] + b"\xff\xff" + v6[6:]
    assert trim_tfc(41, long6) is long6
    assert trim_tfc(4, b"\x45" * 19) == b"\x45" * 19
    assert trim_tfc(17, v4 + bytes(9)) == v4 + bytes(9)  # not an IP packet: no length to trust


class _Tracker:
    def on_esp(self, *a: object) -> None:  # nested ESP: not in these packets
        raise AssertionError(a)


def test_inner_ip_goes_to_ip_out_and_the_rest_to_plain() -> None:
    keys = ChildSaKeys(
        spi=0x1001,
        encr=EncrId.ENCR_AES_CBC,
        encr_key=SecretBytes(bytes(range(16))),
        integ=IntegId.AUTH_HMAC_SHA2_256_128,
        integ_key=SecretBytes(bytes(range(32))),
        esn=False,
        src="10.0.0.1",
        dst="10.0.0.2",
    )
    c = itertools.count(1)
    enc = EspEncryptor(keys, lambda n: next(c).to_bytes(n, "big"))
    ip_out: list[tuple[float, bytes]] = []
    plain: list[tuple[int, int, bytes]] = []
    hook = EspDecryptHook(
        _Tracker(),  # type: ignore[arg-type]
        KeyStore([keys]),
        plain=lambda frame, ts, f, nh, p: plain.append((frame, nh, p)),
        ip_out=lambda ts, p: ip_out.append((ts, p)),
    )
    flow = FlowState(0x1001, SRC, DST, 0, 0)
    v4, v6 = _v4(b"udp-v4"), _v6(b"udp-v6")
    packets = [(4, v4, 5), (41, v6, 3), (17, b"transport", 0), (59, b"dummy", 0)]
    for seq, (nh, inner, tfc) in enumerate(packets, 1):
        pkt = enc.encrypt(inner, nh, seq=seq, tfc_padding=tfc)
        hook(flow, seq, 100.0 + seq, pkt, 0, len(pkt))
    assert ip_out == [(101.0, v4), (102.0, v6)]
    assert plain == [(3, 17, b"transport")]
    assert flow.decrypted == 4
    # without ip_out, the inner IP packets go to plain as before
    plain.clear()
    hook = EspDecryptHook(
        _Tracker(),  # type: ignore[arg-type]
        KeyStore([keys]),
        plain=lambda frame, ts, f, nh, p: plain.append((frame, nh, p)),
    )
    flow = FlowState(0x1001, SRC, DST, 0, 0)
    for seq, (nh, inner, tfc) in enumerate(packets, 1):
        pkt = enc.encrypt(inner, nh, seq=seq, tfc_padding=tfc)
        hook(flow, seq, 100.0 + seq, pkt, 0, len(pkt))
    assert plain == [(1, 4, v4), (2, 41, v6), (3, 17, b"transport")]
