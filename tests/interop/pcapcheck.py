"""What a recorded capture contains, read two independent ways: ipsecdiag's own capture layer
and scapy. The interop tests run both, so each cross-checks the other on real strongSwan traffic.

Only the unencrypted parts are looked at: the IKE header and the payload chain up to the first
SK payload (enough for IKE_SA_INIT notifies), and ESP SPIs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from ipsecdiag.wire.registry import ExchangeType, NotifyType, PayloadType, V1Exchange, name_of

_NOTIFY = int(PayloadType.N)
_SK = int(PayloadType.SK)
_RESPONSE_FLAG = 0x20


@dataclass(frozen=True)
class IkeSeen:
    frame: int
    src: str
    dst: str
    dport: int
    exchange: str  # IANA name (IKEv2) or V1Exchange name (IKEv1)
    response: bool  # IKEv2 R flag; always False for IKEv1 (it has none)
    message_id: int
    spi_i: bytes
    notifies: tuple[str, ...]  # from unencrypted Notify payloads only


@dataclass
class Summary:
    ike: list[IkeSeen] = field(default_factory=list)
    esp: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (src, dst, spi) -> packets
    ip_fragments: int = 0  # frames that were IP fragments (any protocol)

    def exchanges(self, response: bool | None = None) -> list[str]:
        return [m.exchange for m in self.ike if response is None or m.response == response]

    def esp_directions(self) -> set[tuple[str, str]]:
        return {(src, dst) for src, dst, _ in self.esp}


def parse_ike(data: bytes) -> tuple[str, bool, int, bytes, tuple[str, ...]] | None:
    """(exchange, response, message id, SPIi, clear notifies) from an IKE message, or None."""
    if len(data) < 28:
        return None
    spi_i = data[:8]
    first, version, exch, flags, msg_id, length = struct.unpack_from("!BBBBII", data, 16)
    major = version >> 4
    if major == 2:
        name = name_of(ExchangeType, exch)
    elif major == 1:
        name = name_of(V1Exchange, exch)
        return name, False, msg_id, spi_i, ()
    else:
        return None
    notifies = []
    nxt, off, end = first, 28, min(length, len(data))
    # RFC 7296 §3.2 generic payload header; stop at SK (the rest is encrypted)
    while nxt not in (0, _SK) and off + 4 <= end:
        this = nxt
        nxt, plen = data[off], struct.unpack_from("!H", data, off + 2)[0]
        if plen < 4:
            break
        if this == _NOTIFY and off + 8 <= end:
            notifies.append(name_of(NotifyType, struct.unpack_from("!H", data, off + 6)[0]))
        off += plen
    return name, bool(flags & _RESPONSE_FLAG), msg_id, spi_i, tuple(notifies)


def _add_ike(summary: Summary, frame: int, src: str, dst: str, dport: int, data: bytes) -> None:
    parsed = parse_ike(data)
    if parsed is not None:
        name, resp, mid, spi_i, notes = parsed
        summary.ike.append(IkeSeen(frame, src, dst, dport, name, resp, mid, spi_i, notes))


def summarize_with_ipsecdiag(pcap: Path) -> Summary:
    """Use ipsecdiag.capture.reader + decode (IP reassembly, NAT-T demux)."""
    from ipsecdiag.capture.decode import Decoder, ntoa
    from ipsecdiag.capture.model import FragmentGroup, IcmpError, IkeDatagram
    from ipsecdiag.capture.reader import open_capture

    summary = Summary()

    class _Sink:
        def on_ike(self, msg: IkeDatagram) -> None:
            _add_ike(summary, msg.frame, msg.src, msg.dst, msg.dport, msg.data)

        def on_esp(
            self,
            frame: int,
            ts: float,
            src: bytes,
            dst: bytes,
            sport: int,
            dport: int,
            data: bytes,
            off: int,
            end: int,
        ) -> None:
            key = (ntoa(src), ntoa(dst), struct.unpack_from("!I", data, off)[0])
            summary.esp[key] = summary.esp.get(key, 0) + 1

        def on_ah(
            self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, off: int, end: int
        ) -> None:
            pass

        def on_keepalive(self, frame: int, ts: float, src: str, dst: str, sport: int, dport: int) -> None:
            pass

        def on_icmp_error(self, err: IcmpError) -> None:
            pass

        def on_fragment_group(self, group: FragmentGroup) -> None:
            summary.ip_fragments += len(group.frames)

        def on_malformed(self, frame: int, ts: float, layer: str, offset: int, reason: str) -> None:
            raise AssertionError(f"frame {frame}: malformed {layer} at {offset}: {reason}")

        def on_truncated(self, frame: int, ts: float, caplen: int, origlen: int) -> None:
            raise AssertionError(f"frame {frame}: truncated ({caplen} of {origlen})")

    decoder = Decoder(_Sink())
    with open_capture(pcap) as cap:
        for frame, ts, linktype, data, orig_len in cap.frames():
            decoder.feed(frame, ts, linktype, data, orig_len)
    decoder.finish()
    return summary


def summarize_with_scapy(pcap: Path) -> Summary:
    """Independent reading with scapy (no reassembly: fragments are only counted)."""
    from scapy.layers.inet import IP, UDP
    from scapy.utils import PcapReader

    summary = Summary()
    with PcapReader(str(pcap)) as reader:
        for frame, pkt in enumerate(reader, start=1):
            if IP not in pkt:
                continue
            ip = pkt[IP]
            if ip.flags.MF or ip.frag:
                summary.ip_fragments += 1
                continue
            if UDP not in ip:
                continue
            udp = ip[UDP]
            payload = bytes(udp.payload)
            ports = {udp.sport, udp.dport}
            if 500 in ports:
                _add_ike(summary, frame, ip.src, ip.dst, udp.dport, payload)
            elif 4500 in ports:
                if payload[:4] == b"\0\0\0\0":  # RFC 3948 non-ESP marker
                    _add_ike(summary, frame, ip.src, ip.dst, udp.dport, payload[4:])
                elif len(payload) >= 8:
                    key = (ip.src, ip.dst, struct.unpack_from("!I", payload)[0])
                    summary.esp[key] = summary.esp.get(key, 0) + 1
    return summary


BACKENDS = {"ipsecdiag": summarize_with_ipsecdiag, "scapy": summarize_with_scapy}
