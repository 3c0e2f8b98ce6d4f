"""ESP security associations: per-packet unprotect (hot path) and protect (RFC 4303).

:class:`EspDecryptor` is built once per SA from :class:`ChildSaKeys` and called per packet with
the packet bytes and offsets, so the capture layer never copies a packet to decrypt it. It
returns a plain tuple ``(status, next_header, payload, seq_hi)``; it never raises for packet
contents, and a key it cannot use turns into status UNSUPPORTED with :attr:`problem` saying why.

Extended Sequence Numbers (RFC 4303 §2.2.1, Appendix A): only the low 32 bits travel. With ESN
the decryptor infers the high half from the highest sequence number it has authenticated so far
(Appendix A with a window of 2^31: the candidate nearest that maximum wins, its neighbour is
tried if the ICV fails). When the keys do not say whether ESN is on (``esn`` None), the first
packets are tried without ESN and then with the inferred high bits, and the mode that verifies is
kept. Padding is checked against the default 1, 2, 3, ... pattern (RFC 4303 §2.4) but only
counted when different, because TFC and some stacks use other padding. Keys that name an
integrity algorithm without its key (tcpdump's ``-hmac96`` secrets, Wireshark's "[No Checking]"
entries) decrypt with the ICV stripped unchecked; :attr:`EspDecryptor.verifies_icv` says so.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum

from ..crypto.errors import CryptoError, DecryptError, IntegrityError
from ..crypto.espcrypto import EspTransform, make_esp_transform
from ..keys.model import ChildSaKeys
from ..wire.registry import IpProto
from .replay import EsnTracker  # RFC 4303 Appendix A: one definition, in replay.py

_PAD = bytes(range(1, 256))
_PADS = tuple(_PAD[:n] for n in range(256))  # default padding of each length (RFC 4303 §2.4)
_U32 = struct.Struct("!I")
_HDR = struct.Struct("!II")

#: Next Header of a dummy packet (RFC 4303 §2.6): the receiver discards the payload.
NEXT_HEADER_DUMMY = int(IpProto.NONE)


class EspStatus(IntEnum):
    """Outcome of :meth:`EspDecryptor.decrypt`."""

    OK = 0
    INTEGRITY_FAILED = 1
    MALFORMED = 2
    TRUNCATED = 3
    UNSUPPORTED = 4
    IMPLAUSIBLE = 5  # no ICV to check and the trailer looks wrong: probably the wrong key


_OK, _INTEGRITY_FAILED, _MALFORMED, _TRUNCATED, _UNSUPPORTED, _IMPLAUSIBLE = EspStatus

# Next headers a correctly decrypted packet carries: IPv4/IPv6 (tunnel), transport protocols,
# nested IPsec, IPv6 extension headers and 59 (dummy packet, RFC 4303 §2.6).
PLAUSIBLE_NEXT_HEADERS = frozenset(
    {
        0,
        1,
        2,
        4,
        6,
        17,
        41,
        43,
        44,
        47,
        50,
        51,
        58,
        59,
        60,
        89,
        94,
        97,
        103,
        108,
        112,
        115,
        132,
        135,
        136,
        137,
        143,
    }
)


class EspDecryptor:
    """Unprotects the packets of one ESP SA (one direction, one SPI).

    :meth:`decrypt` returns ``(status, next_header, payload, seq_hi)``: ``payload`` is the inner
    packet (TFC padding included: trim by the inner IP header) or None, ``next_header`` is -1
    unless status is OK, and ``seq_hi`` is the high half of the sequence number used (0 without
    ESN). Counters: ``irregular_padding`` (verified packets whose padding is not 1, 2, 3, ...).
    """

    def __init__(self, keys: ChildSaKeys) -> None:
        self.keys = keys
        self.spi = keys.spi
        self.esn: bool | None = keys.esn
        self.problem: str | None = None
        self.irregular_padding = 0
        self._esn = EsnTracker((keys.esn_high or 0) << 32)
        self._t: EspTransform | None = None
        self._open: Callable[[bytes, int, int, bytes], bytes] | None = None
        self._checks_icv = True
        self._min = 0
        try:
            self._t = make_esp_transform(
                keys.encr, keys.encr_key.reveal(), keys.integ, keys.integ_key.reveal(), keys.encr_key_bits
            )
            self._open = self._t.open
            self._min = self._t.min_length
            self._checks_icv = self._t.verifies
        except CryptoError as exc:
            self.problem = str(exc)

    @property
    def transform(self) -> EspTransform | None:
        return self._t

    @property
    def verifies_icv(self) -> bool:
        """False when the keys name an integrity algorithm but not its key: packets then
        decrypt with the ICV stripped but unchecked (like Wireshark's "[No Checking]")."""
        return self._t is not None and self._t.verifies

    def decrypt(self, data: bytes, off: int, end: int) -> tuple[int, int, bytes | None, int]:
        # Hot path: module-level status constants and a bound ``open`` avoid attribute lookups.
        t_open = self._open
        if t_open is None:
            return _UNSUPPORTED, -1, None, 0
        if end - off < self._min or end > len(data):
            return _TRUNCATED, -1, None, 0
        try:
            if self.esn is False:
                pt = t_open(data, off, end, b"")
                hi = 0
            else:
                pt, hi = self._open_esn(data, off, end)
        except IntegrityError:
            return _INTEGRITY_FAILED, -1, None, 0
        except DecryptError:
            return _MALFORMED, -1, None, 0
        n = len(pt)
        if n < 2:
            return _MALFORMED, -1, None, hi
        pad = pt[n - 2]
        stop = n - 2 - pad
        if stop < 0:
            return _MALFORMED, -1, None, hi
        regular = not pad or pt.startswith(_PADS[pad], stop)
        if not regular:
            self.irregular_padding += 1
        nh = pt[n - 1]
        if not self._checks_icv and (not regular or nh not in PLAUSIBLE_NEXT_HEADERS):
            # Nothing authenticated this packet: only its trailer can tell a wrong key.
            return _IMPLAUSIBLE, -1, None, hi
        return _OK, nh, pt[:stop], hi

    def _open_esn(self, data: bytes, off: int, end: int) -> tuple[bytes, int]:
        t = self._t
        assert t is not None
        if self.esn is None:
            try:
                pt = t.open(data, off, end, b"")
            except IntegrityError:
                pass
            else:
                self.esn = False
                return pt, 0
        seq = _U32.unpack_from(data, off + 4)[0]
        tracker = self._esn
        h = tracker.guess(seq)
        try:
            pt = t.open(data, off, end, _U32.pack(h))
        except IntegrityError:
            # Appendix A2.3: the guess can be off by one wrap after a long loss; try the others.
            for alt in tracker.alternatives(seq, h):
                try:
                    pt = t.open(data, off, end, _U32.pack(alt))
                except IntegrityError:
                    continue
                h = alt
                break
            else:
                raise
        self.esn = True
        if (h << 32) | seq > tracker.top:
            tracker.top = (h << 32) | seq
        return pt, h


class EspEncryptor:
    """Protects packets for one ESP SA: the prober, the sample generator and round-trip tests.

    ``iv_source(n)`` returns the next ``n``-byte IV (injected; nothing random in here). ESN is on
    when ``keys.esn`` is True: then the high half of ``seq`` enters the ICV/AAD.
    """

    def __init__(self, keys: ChildSaKeys, iv_source: Callable[[int], bytes]) -> None:
        self.keys = keys
        self.esn = bool(keys.esn)
        self._iv = iv_source
        self._t = make_esp_transform(
            keys.encr, keys.encr_key.reveal(), keys.integ, keys.integ_key.reveal(), keys.encr_key_bits
        )

    @property
    def transform(self) -> EspTransform:
        return self._t

    def encrypt(
        self,
        payload: bytes,
        next_header: int,
        *,
        seq: int,
        tfc_padding: int = 0,
        pad_len: int | None = None,
    ) -> bytes:
        """The ESP packet (SPI to ICV) for ``payload``: ``tfc_padding`` zero octets follow the
        payload (RFC 4303 §2.7), then the default padding 1, 2, 3, ... of ``pad_len`` octets (None:
        the minimum for the cipher's alignment). ``seq`` is the full sequence number."""
        t = self._t
        body_len = len(payload) + tfc_padding + 2
        if pad_len is None:
            pad_len = -body_len % t.align
        elif (body_len + pad_len) % t.align or not 0 <= pad_len <= 255:
            raise ValueError(f"pad_len {pad_len} does not align {body_len} bytes to {t.align}")
        body = payload + bytes(tfc_padding) + _PAD[:pad_len] + bytes((pad_len, next_header))
        header = _HDR.pack(self.keys.spi, seq & 0xFFFFFFFF)
        hi = _U32.pack(seq >> 32) if self.esn else b""
        iv = self._iv(t.iv_size) if t.iv_size else b""
        return header + t.seal(header, iv, body, hi)
