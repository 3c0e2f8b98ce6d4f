"""RFC 8229 / RFC 9329 TCP encapsulation of IKE and ESP, reassembled per direction.

The initiator's stream opens with the "IKETCP" prefix (§3.1); after it, and from the first
byte in the other direction, every message is a 16-bit length (counting itself) followed by
either the 4-byte non-ESP marker and an IKE message, or an ESP packet (§3).

This is a deliberately small in-order reassembler: retransmitted bytes are trimmed, and a gap
(lost segment) drops the partial message and resynchronises on the next segment, assuming it
starts a message (what an encapsulating sender does after a connection stall). Streams that
do not parse as RFC 8229 are marked foreign and their segments counted "not-ipsec".

Each data segment is accounted when it arrives (ipsec for a stream that looks like RFC 8229),
so nothing stays pending here; an IKE message lists every frame that carried its bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from .headers import IKE_HEADER_LEN, ZERO4
from .model import IkeDatagram, Sink

PREFIX = b"IKETCP"
MAX_STREAMS = 256
MAX_BUFFER = 65535 + 2
_TCP = struct.Struct("!HHIIH")
_SYN = 0x02
_FIN_RST = 0x05


class _Stream:
    __slots__ = ("next_seq", "buf", "frames", "started", "foreign", "valid")

    def __init__(self, next_seq: int, started: bool) -> None:
        self.next_seq = next_seq
        self.buf = bytearray()
        self.frames: list[int] = []
        self.started = started  # True: the next byte is the start of the stream (after SYN)
        self.foreign = False
        self.valid = False


class TcpEncap:
    def __init__(self, sink: Sink, ntoa: Callable[[bytes], str]) -> None:
        self._sink = sink
        self._ntoa = ntoa
        self._streams: dict[tuple[bytes, bytes, int, int], _Stream] = {}

    def flush(self) -> None:
        self._streams.clear()

    def segment(
        self, frame: int, ts: float, version: int, src: bytes, dst: bytes, data: bytes, p: int, end: int
    ) -> str | None:
        """A whole TCP segment ``data[p:end]`` on a NAT-T port; returns its accounting outcome."""
        sport, dport, seq, _ack, offflags = _TCP.unpack_from(data, p)
        hl = (offflags >> 12) * 4
        if hl < 20 or p + hl > end:
            self._sink.on_malformed(frame, ts, "tcp", p + 12, f"data offset {hl} is impossible")
            return "malformed"
        flags = offflags & 0x3F
        key = (src, dst, sport, dport)
        streams = self._streams
        st = streams.get(key)
        if flags & _SYN:
            if len(streams) >= MAX_STREAMS and st is None:
                del streams[next(iter(streams))]
            streams[key] = _Stream((seq + 1) & 0xFFFFFFFF, True)
            return "not-ipsec"
        payload = data[p + hl : end]
        if not payload:
            if flags & _FIN_RST:
                streams.pop(key, None)
            return "not-ipsec"
        if st is None:
            if len(streams) >= MAX_STREAMS:
                del streams[next(iter(streams))]
            st = streams[key] = _Stream(seq, False)
        if st.foreign:
            return "not-ipsec"
        delta = (seq - st.next_seq) & 0xFFFFFFFF
        if delta:
            if delta >= 0x80000000:  # starts before what we have: retransmission or overlap
                behind = 0x100000000 - delta
                if behind >= len(payload):
                    return None if st.valid else "not-ipsec"
                payload = payload[behind:]
            else:  # bytes are missing: drop the partial message, resynchronise here
                st.buf.clear()
                st.frames.clear()
        start = st.next_seq if delta >= 0x80000000 else seq
        st.next_seq = (start + len(payload)) & 0xFFFFFFFF
        st.buf += payload
        st.frames.append(frame)
        return self._drain(st, frame, ts, version, src, dst, sport, dport)

    def _drain(
        self, st: _Stream, frame: int, ts: float, version: int, src: bytes, dst: bytes, sport: int, dport: int
    ) -> str | None:
        buf = st.buf
        if st.started:
            if len(buf) < len(PREFIX) and PREFIX.startswith(bytes(buf)):
                return None  # part of the prefix; wait for the rest
            if buf.startswith(PREFIX):
                del buf[: len(PREFIX)]
                st.valid = True
            st.started = False
        while len(buf) >= 2:
            length = (buf[0] << 8) | buf[1]
            if length < 2 + 8 or len(buf) > MAX_BUFFER:
                # Shorter than an ESP header: not RFC 8229 framing (or we lost sync).
                if not st.valid:
                    st.foreign = True
                    buf.clear()
                    return "not-ipsec"
                self._sink.on_malformed(frame, ts, "tcp-encap", 0, f"message length {length} below 10")
                buf.clear()
                st.frames.clear()
                return "malformed"
            if len(buf) < length:
                break
            msg = bytes(buf[2:length])
            del buf[:length]
            frames = tuple(st.frames)
            st.frames = [frame] if buf else []
            if msg[:4] == ZERO4:
                if len(msg) - 4 < IKE_HEADER_LEN:
                    self._sink.on_malformed(
                        frame, ts, "ike", 0, f"{len(msg) - 4} bytes, shorter than the IKE header"
                    )
                    continue
                st.valid = True
                self._sink.on_ike(
                    IkeDatagram(
                        frame=frame,
                        frames=frames,
                        ts=ts,
                        src=self._ntoa(src),
                        dst=self._ntoa(dst),
                        sport=sport,
                        dport=dport,
                        data=msg[4:],
                        transport="tcp",
                        non_esp_marker=True,
                        ip_version=version,
                    )
                )
            else:
                st.valid = True
                self._sink.on_esp(frame, ts, src, dst, sport, dport, msg, 0, len(msg))
        return None if st.valid or buf else "not-ipsec"
