"""AH (RFC 4302) integrity verification and protection.

The ICV covers the whole IP packet with the fields that change in transit set to zero
(RFC 4302 §3.3.3.1 and Appendix A):

* IPv4: TOS, flags + fragment offset, TTL, header checksum, and every option not known to be
  immutable (the whole option, type and length included, becomes zero octets);
* IPv6: traffic class, flow label, hop limit, and the data of Hop-by-Hop / Destination options
  whose "may change en route" bit (0x20 of the option type) is set;
* the AH ICV field itself (with its alignment padding).

With ESN the high-order 32 sequence bits are appended to the data for the ICV only (§3.3.3.1.2
and RFC 4303 Appendix A for the inference). Routing headers are taken as they are on the wire
(mutable-but-predictable type 0 routing is deprecated, RFC 5095) and so are LSRR/SSRR
destinations.
"""

from __future__ import annotations

import hmac
import struct
from enum import IntEnum

from ..crypto.errors import CryptoError
from ..crypto.mac import Mac, make_mac
from ..keys.model import ChildSaKeys
from .replay import EsnTracker

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

# RFC 4302 Appendix A.1: immutable IPv4 options (EOL, NOP, Security, Extended Security,
# Commercial Security, Router Alert, Sender Directed Multi-Destination Delivery).
_V4_IMMUTABLE = frozenset({0, 1, 130, 133, 134, 148, 149})
# IPv6 extension headers that may sit between the IPv6 header and AH.
_V6_OPTIONS_HDRS = (0, 60)  # Hop-by-Hop, Destination Options
_V6_SKIP_HDRS = (43, 44)  # Routing (as-is), Fragment (should not occur before reassembly)


class AhStatus(IntEnum):
    OK = 0
    INTEGRITY_FAILED = 1
    MALFORMED = 2
    TRUNCATED = 3
    UNSUPPORTED = 4


def _ipv4_zeroed(pkt: bytearray, ip: int, ihl: int) -> None:
    pkt[ip + 1] = 0  # TOS
    pkt[ip + 6 : ip + 8] = b"\0\0"  # flags, fragment offset
    pkt[ip + 8] = 0  # TTL
    pkt[ip + 10 : ip + 12] = b"\0\0"  # checksum
    pos, end = ip + 20, ip + ihl
    while pos < end:
        typ = pkt[pos]
        if typ == 0:  # end of option list: the rest is padding
            break
        if typ == 1:
            pos += 1
            continue
        olen = pkt[pos + 1] if pos + 1 < end else 0
        if olen < 2 or pos + olen > end:
            raise ValueError("IPv4 option length")
        if typ not in _V4_IMMUTABLE:
            pkt[pos : pos + olen] = bytes(olen)
        pos += olen


def _ipv6_zeroed(pkt: bytearray, ip: int, ah: int) -> None:
    pkt[ip] &= 0xF0  # keep the version, zero the top of the traffic class
    pkt[ip + 1 : ip + 4] = b"\0\0\0"  # rest of traffic class, flow label
    pkt[ip + 7] = 0  # hop limit
    nxt, pos = pkt[ip + 6], ip + 40
    while pos < ah:
        if nxt not in _V6_OPTIONS_HDRS and nxt not in _V6_SKIP_HDRS:
            raise ValueError(f"unexpected IPv6 header {nxt} before AH")
        hlen = (pkt[pos + 1] + 1) * 8
        if nxt in _V6_OPTIONS_HDRS:
            o, oend = pos + 2, pos + hlen
            while o < oend:
                typ = pkt[o]
                if typ == 0:  # Pad1
                    o += 1
                    continue
                olen = pkt[o + 1]
                if o + 2 + olen > oend:
                    raise ValueError("IPv6 option length")
                if typ & 0x20:
                    pkt[o + 2 : o + 2 + olen] = bytes(olen)
                o += 2 + olen
        nxt, pos = pkt[pos], pos + hlen


class AhVerifier:
    """Verifies the AH packets of one SA (one SPI), keeping the ESN state like the ESP side."""

    def __init__(self, keys: ChildSaKeys) -> None:
        self.keys = keys
        self.esn: bool | None = keys.esn
        self.problem: str | None = None
        self._esn = EsnTracker((keys.esn_high or 0) << 32)
        self._mac: Mac | None = None
        try:
            self._mac = make_mac(keys.integ, keys.integ_key.reveal())
        except CryptoError as exc:
            self.problem = str(exc)

    @staticmethod
    def icv_input(ip_packet: bytes, ip_offset: int, ah_offset: int) -> tuple[bytes, bytes, int]:
        """(ICV input with mutable fields zeroed, received ICV field, sequence number).
        Raises ValueError when the headers do not hold together."""
        ver = ip_packet[ip_offset] >> 4
        if ver == 4:
            ihl = (ip_packet[ip_offset] & 0x0F) * 4
            end = ip_offset + _U16.unpack_from(ip_packet, ip_offset + 2)[0]
        elif ver == 6:
            ihl = 40
            end = ip_offset + 40 + _U16.unpack_from(ip_packet, ip_offset + 4)[0]
        else:
            raise ValueError(f"IP version {ver}")
        if end > len(ip_packet) or ah_offset + 12 > end or ah_offset < ip_offset + ihl:
            raise IndexError("packet shorter than its headers")
        ah_len = (ip_packet[ah_offset + 1] + 2) * 4
        if ah_len < 12 or ah_offset + ah_len > end:
            raise ValueError(f"AH length {ah_len}")
        pkt = bytearray(ip_packet[ip_offset:end])
        ah = ah_offset - ip_offset
        if ver == 4:
            _ipv4_zeroed(pkt, 0, ihl)
        else:
            _ipv6_zeroed(pkt, 0, ah)
        icv = bytes(pkt[ah + 12 : ah + ah_len])
        pkt[ah + 12 : ah + ah_len] = bytes(ah_len - 12)
        seq = _U32.unpack_from(pkt, ah + 8)[0]
        return bytes(pkt), icv, seq

    def verify(self, ip_packet: bytes, ip_offset: int, ah_offset: int) -> AhStatus:
        mac = self._mac
        if mac is None:
            return AhStatus.UNSUPPORTED
        try:
            data, icv_field, seq = self.icv_input(ip_packet, ip_offset, ah_offset)
        except IndexError:
            return AhStatus.TRUNCATED
        except ValueError:
            return AhStatus.MALFORMED
        if len(icv_field) < mac.icv_size:
            return AhStatus.MALFORMED
        icv = icv_field[: mac.icv_size]
        if self.esn is not True and hmac.compare_digest(mac.compute(data), icv):
            self.esn = False
            return AhStatus.OK
        if self.esn is False:
            return AhStatus.INTEGRITY_FAILED
        h = self._esn.guess(seq)
        for cand in (h, *self._esn.alternatives(seq, h)):
            if hmac.compare_digest(mac.compute(data, _U32.pack(cand)), icv):
                self.esn = True
                self._esn.update(cand, seq)
                return AhStatus.OK
        return AhStatus.INTEGRITY_FAILED


def verify_ah(keys: ChildSaKeys, ip_packet: bytes, ip_offset: int, ah_offset: int) -> AhStatus:
    """Verify one AH packet with a fresh :class:`AhVerifier` (no ESN state kept: a caller that
    verifies a flow keeps one verifier per SA, which then owns the keyed MAC)."""
    return AhVerifier(keys).verify(ip_packet, ip_offset, ah_offset)
