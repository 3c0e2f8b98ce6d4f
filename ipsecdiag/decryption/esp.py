"""ESP decryption on the analysis hot path: one :class:`EspDecryptor` per flow, built on the
flow's first packet from the key store; inner protocol accounting; optional plaintext sink
(``ipsecdiag decrypt``)."""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..esp.sa import EspDecryptor, EspStatus
from ..keys.model import ChildSaKeys, KeyStore
from ..reconstruction.esp_tracker import EspTracker, FlowState
from ..reconstruction.inner import inner_code
from ..reconstruction.model import addr_text

NO_KEY = False  # FlowState.decryptor value when the store has no key for the flow

# (frame, ts, flow, next_header, payload) for every packet that decrypted; payload is the
# inner packet (tunnel mode) or upper-layer data (transport mode), TFC padding included.
PlainSink = Callable[[int, float, FlowState, int, bytes], None]
# (frame, ts, flow, status) for every packet that did not decrypt (no key, bad ICV, ...).
FailSink = Callable[[int, float, FlowState, int], None]

# (ts, packet) for every decrypted tunnel-mode inner IPv4/IPv6 packet (TFC padding cut), in
# place of PlainSink when given: the export writes these as they are, one call less per packet.
IpSink = Callable[[float, bytes], None]

NO_KEY_STATUS = -1


def trim_tfc(nh: int, payload: bytes) -> bytes:
    """Cut TFC padding (RFC 4303 §2.4) using the inner IP header's length field (a slice of
    the whole packet is the packet itself: no copy without padding)."""
    if nh == 4 and len(payload) >= 20:
        n = payload[2] << 8 | payload[3]
        if 20 <= n <= len(payload):
            return payload[:n]
    elif nh == 41 and len(payload) >= 40:
        n = 40 + (payload[4] << 8 | payload[5])
        if n <= len(payload):
            return payload[:n]
    return payload


def nested_esp(nh: int, payload: bytes) -> tuple[bytes, bytes, int, int, int, int] | None:
    """(src, dst, sport, dport, esp offset, end) when a decrypted tunnel-mode packet carries ESP
    itself (nested SAs, e.g. an end-to-end transport SA inside a gateway tunnel)."""
    if nh == 4 and len(payload) >= 28:
        ihl = (payload[0] & 15) * 4
        end = min(len(payload), struct.unpack_from("!H", payload, 2)[0])
        if struct.unpack_from("!H", payload, 6)[0] & 0x3FFF:
            return None  # a fragment: not reassembled here
        if payload[9] == 50 and end >= ihl + 8:
            return payload[12:16], payload[16:20], 0, 0, ihl, end
    elif nh == 41 and len(payload) >= 48 and payload[6] == 50:
        end = min(len(payload), 40 + struct.unpack_from("!H", payload, 4)[0])
        return payload[8:24], payload[24:40], 0, 0, 40, end
    return None


def _checksum(hdr: bytes) -> int:
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_packet(src: bytes, dst: bytes, proto: int, payload: bytes) -> bytes:
    """A minimal outer IPv4/IPv6 header around ``payload`` (TTL/hop limit 64)."""
    if len(src) == 4:
        hdr = bytearray(
            struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0, src, dst)
        )
        struct.pack_into("!H", hdr, 10, _checksum(bytes(hdr)))
        return bytes(hdr) + payload
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), proto, 64, src, dst) + payload


def flow_keys(keys: KeyStore, f: FlowState) -> ChildSaKeys | None:
    """The key for a flow: by SPI and addresses, else by SPI alone when that is unambiguous
    (keys logged behind a NAT); the latter is noted on the flow."""
    k = keys.child(f.spi, addr_text(f.src), addr_text(f.dst))
    if k is None:
        k = keys.child_by_spi(f.spi)
        if k is not None:
            f.key_matched_by_spi_only = True
    if k is not None:
        f.key_source = k.source
    return k


# ICV failures kept per flow as evidence (the count goes on).
MAX_FAILED_FRAMES = 20


def count_failure(f: FlowState, status: int, frame: int, ts: float) -> None:
    """Count a packet that did not decrypt under its :class:`EspStatus`."""
    if status == EspStatus.INTEGRITY_FAILED:
        f.integrity_failed += 1
        if len(f.failed_frames) < MAX_FAILED_FRAMES:
            f.failed_frames.append((frame, ts))
    elif status == EspStatus.TRUNCATED:
        f.truncated += 1
    else:
        f.undecryptable += 1


class NestingHook:
    """Feeds ESP found inside decrypted tunnel-mode packets back to the tracker, at most
    :attr:`MAX_NESTING` deep (the tracker calls the hook again for it)."""

    MAX_NESTING = 3
    tracker: EspTracker
    _depth: int

    def _feed_nested(self, frame: int, ts: float, nh: int, payload: bytes) -> None:
        nested = nested_esp(nh, payload)
        if nested is not None:
            src, dst, sport, dport, ioff, iend = nested
            self._depth += 1
            try:
                self.tracker.on_esp(frame, ts, src, dst, sport, dport, payload, ioff, iend)
            finally:
                self._depth -= 1


def _new_decryptor(keys: ChildSaKeys, f: FlowState) -> EspDecryptor:
    return EspDecryptor(keys)


class EspDecryptHook(NestingHook):
    def __init__(
        self,
        tracker: EspTracker,
        keys: KeyStore,
        plain: PlainSink | None = None,
        fail: FailSink | None = None,
        ip_out: IpSink | None = None,
        make_decryptor: Callable[[ChildSaKeys, FlowState], EspDecryptor] | None = None,
    ) -> None:
        self.tracker = tracker
        self._depth = 0
        self.keys = keys
        self.active = any(True for k in self.keys if getattr(k, "protocol", None) == "esp")
        self.plain = plain
        self.fail = fail
        self.ip_out = ip_out
        # Builds a flow's decryptor on its first packet; ``decrypt --jobs`` puts one here that
        # starts from the ESN state carried across a byte-range cut and records the first packets.
        self.make_decryptor: Callable[[ChildSaKeys, FlowState], EspDecryptor] = make_decryptor or _new_decryptor

    def __call__(self, f: FlowState, frame: int, ts: float, data: bytes, off: int, end: int) -> None:
        dec = f.decryptor
        if dec is None:
            k = flow_keys(self.keys, f)
            dec = f.decryptor = self.make_decryptor(k, f) if k is not None else NO_KEY
            if k is not None and dec.problem:
                f.decrypt_problem = dec.problem
        if dec is NO_KEY:
            if self.fail is not None:
                self.fail(frame, ts, f, NO_KEY_STATUS)
            return
        status, nh, payload, _hi = dec.decrypt(data, off, end)
        if payload is not None:  # EspStatus.OK
            f.decrypted += 1
            code = inner_code(nh, payload)
            inner = f.inner
            inner[code] = inner.get(code, 0) + 1
            if (nh == 4 or nh == 41) and self.ip_out is not None:
                self.ip_out(ts, trim_tfc(nh, payload))
            elif self.plain is not None and nh != 59:
                self.plain(frame, ts, f, nh, trim_tfc(nh, payload))
            if (code == 0x432 or code == 0x2932) and self._depth < self.MAX_NESTING:
                self._feed_nested(frame, ts, nh, payload)
            return
        count_failure(f, status, frame, ts)
        if self.fail is not None:
            self.fail(frame, ts, f, int(status))
