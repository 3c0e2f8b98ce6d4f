"""Userspace ESP for one negotiated CHILD SA (both directions), sans-I/O (RFC 4303, RFC 3948).

:class:`EspTunnel` is built from the two :class:`~ipsecdiag.keys.model.ChildSaKeys` an engine's
``ChildSaUp`` event carries and does what a kernel's SA pair would:

* outbound, :meth:`EspTunnel.protect_packet` wraps an IP packet: in tunnel mode the whole
  packet with Next Header 4 or 41 (RFC 4303 §3.1.2), in transport mode only its upper-layer
  payload with the IP header's protocol (§3.1.1). Sequence numbers start at 1 (§3.3.3) and are
  64-bit with ESN; the counter never cycles: at its end the SA must be rekeyed, so
  :class:`SequenceExhausted` is raised instead of reusing a number.
* inbound, :meth:`EspTunnel.unprotect` checks the anti-replay window before the ICV (cheap
  rejection, §3.4.3) and moves it only after the ICV verified, using the project's one window
  (:class:`~ipsecdiag.esp.replay.ReplayWindow`). The cipher work is :mod:`ipsecdiag.esp.sa`'s,
  the same transforms ``analyze`` decrypts with.

ESP-in-UDP (RFC 3948 §2.1): the ESP packet is the UDP payload as it is, with no marker; a
non-zero SPI is what tells it from IKE (which carries the 4-byte zero non-ESP marker on the same
port) and from a one-byte NAT-keepalive. IVs come from the injected ``RandomSource``.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass

from ..crypto.rng import RandomSource
from ..keys.model import ChildSaKeys
from ..wire.registry import IpProto
from .inner import IPV4_HEADER, IPV6_HEADER, ip_version, ipv4_header, ipv6_header
from .replay import ReplayStatus, ReplayWindow
from .sa import EspDecryptor, EspEncryptor, EspStatus

ESP_HEADER = 8  # SPI + sequence number
NON_ESP_MARKER = b"\x00\x00\x00\x00"
_U32 = struct.Struct("!I")
_SEQ_LIMIT_32 = 0xFFFFFFFF
_SEQ_LIMIT_64 = 0xFFFFFFFFFFFFFFFF


class SequenceExhausted(Exception):
    """The outbound sequence counter reached its end: the SA must be rekeyed (RFC 4303 §3.3.3)."""


@dataclass(frozen=True)
class Unprotected:
    """What :meth:`EspTunnel.unprotect` made of one inbound ESP packet.

    ``status`` is ``ok``, ``replay`` (seen before), ``too-old`` (left of the window),
    ``unknown-spi``, or the decryptor's verdict (``integrity-failed``, ``malformed``,
    ``truncated``, ``unsupported``, ``implausible``). ``packet`` is the inner IP packet (tunnel
    mode: trimmed to its own length, TFC padding dropped; transport mode: rebuilt with the outer
    addresses given), ``seq`` the full sequence number.
    """

    status: str
    seq: int = 0
    next_header: int = -1
    packet: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def is_esp_in_udp(payload: bytes) -> bool:
    """Is this UDP payload on the NAT-T port ESP (RFC 3948 §2.2: not a keepalive, not IKE)?"""
    return len(payload) >= ESP_HEADER and payload[:4] != NON_ESP_MARKER


class EspTunnel:
    """ESP protection for one CHILD SA: ``keys_out`` protects what we send, ``keys_in`` opens
    what the peer sends. ``mode`` is ``tunnel`` or ``transport``; ``esn`` None takes the keys'."""

    def __init__(
        self,
        keys_out: ChildSaKeys,
        keys_in: ChildSaKeys,
        *,
        rng: RandomSource,
        mode: str = "tunnel",
        esn: bool | None = None,
        replay_window: int = 64,
    ) -> None:
        if mode not in ("tunnel", "transport"):
            raise ValueError(f"ESP mode {mode!r}: tunnel or transport")
        if keys_out.spi == 0 or keys_in.spi == 0:
            raise ValueError("SPI 0 is reserved (RFC 4303 §2.1) and would read as a non-ESP marker")
        self.mode = mode
        self.esn = bool(keys_out.esn if esn is None else esn)
        self.spi_out, self.spi_in = keys_out.spi, keys_in.spi
        self._enc = EspEncryptor(keys_out, rng.bytes)
        self._enc.esn = self.esn
        self._dec = EspDecryptor(keys_in)
        self._dec.esn = bool(keys_in.esn if esn is None else esn)
        self.window = ReplayWindow(replay_window, esn=self._dec.esn)
        self.next_seq = 1  # RFC 4303 §3.3.3: the first packet sent on an SA has sequence number 1
        self.sent = 0
        self.received = 0
        self.drops: Counter[str] = Counter()

    # -- sizes
    def esp_size(self, payload_len: int) -> int:
        """Octets of the ESP packet (header to ICV) that carries ``payload_len`` octets."""
        t = self._enc.transform
        body = payload_len + 2
        body += -body % t.align
        return ESP_HEADER + t.iv_size + body + t.icv_size

    def largest_payload(self, esp_budget: int) -> int:
        """The largest payload whose ESP packet fits in ``esp_budget`` octets (0 if none)."""
        best = 0
        for n in range(max(0, esp_budget - ESP_HEADER - 256), max(0, esp_budget)):
            if self.esp_size(n) <= esp_budget:
                best = n
        return best

    # -- outbound
    def protect(self, payload: bytes, next_header: int) -> bytes:
        """The ESP packet (SPI to ICV) for ``payload`` with the next sequence number."""
        seq = self.next_seq
        limit = _SEQ_LIMIT_64 if self.esn else _SEQ_LIMIT_32
        if seq > limit:
            raise SequenceExhausted(f"SPI 0x{self.spi_out:08x}: sequence number {limit} used; rekey the CHILD SA")
        packet = self._enc.encrypt(payload, next_header, seq=seq)
        self.next_seq = seq + 1
        self.sent += 1
        return packet

    def protect_packet(self, packet: bytes) -> bytes:
        """ESP for an IP packet according to the SA's mode (ValueError for a non-IP packet)."""
        version = ip_version(packet)
        if not version:
            raise ValueError("not an IPv4 or IPv6 packet")
        if self.mode == "tunnel":
            return self.protect(packet, int(IpProto.IPIP if version == 4 else IpProto.IPV6))
        if version == 4:
            ihl = (packet[0] & 0x0F) * 4
            return self.protect(packet[ihl:], packet[9])
        return self.protect(packet[IPV6_HEADER:], packet[6])

    # -- inbound
    def unprotect(self, esp: bytes, *, src: str | None = None, dst: str | None = None) -> Unprotected:
        """Open one inbound ESP packet; never raises for packet contents.

        In transport mode ``src``/``dst`` (the outer addresses) rebuild the IP header the
        receiver's stack would put back (RFC 4303 §3.4.4.1); without them ``packet`` is the bare
        upper-layer payload.
        """
        if len(esp) < ESP_HEADER:
            return self._drop("truncated")
        spi, seq_lo = struct.unpack_from("!II", esp)
        if spi != self.spi_in:
            return self._drop("unknown-spi")
        verdict = self.window.check(seq_lo)
        if verdict.status != ReplayStatus.NEW:
            return self._drop("replay" if verdict.status == ReplayStatus.DUPLICATE else "too-old", verdict.seq)
        status, nh, payload, seq_hi = self._dec.decrypt(esp, 0, len(esp))
        if status != EspStatus.OK or payload is None:
            return self._drop(EspStatus(status).name.lower().replace("_", "-"), verdict.seq)
        full = (seq_hi << 32) | seq_lo if self._dec.esn else seq_lo
        self.window.update(full)
        self.received += 1
        return Unprotected("ok", full, nh, self._inner(payload, nh, src, dst))

    def _inner(self, payload: bytes, nh: int, src: str | None, dst: str | None) -> bytes:
        if self.mode == "tunnel":
            return _trim(payload)
        if src is None or dst is None:
            return payload
        if ":" in src:
            return ipv6_header(src, dst, nh, len(payload)) + payload
        return ipv4_header(src, dst, nh, len(payload)) + payload

    def _drop(self, why: str, seq: int = 0) -> Unprotected:
        self.drops[why] += 1
        return Unprotected(why, seq)


def _trim(packet: bytes) -> bytes:
    """The inner IP packet without TFC padding (RFC 4303 §2.7), by its own length field."""
    v = ip_version(packet)
    if v == 4 and len(packet) >= IPV4_HEADER:
        return packet[: struct.unpack_from("!H", packet, 2)[0]]
    if v == 6 and len(packet) >= IPV6_HEADER:
        return packet[: IPV6_HEADER + struct.unpack_from("!H", packet, 4)[0]]
    return packet


__all__ = ["ESP_HEADER", "EspTunnel", "SequenceExhausted", "Unprotected", "is_esp_in_udp"]
