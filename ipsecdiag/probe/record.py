"""What a live session sent and received, written as a capture plus the keys that decrypt it.

Every UDP datagram the driver sends or receives is recorded with its wall-clock time and its
addresses; :meth:`SessionRecord.write` turns them into a pcapng of raw IP packets (synthetic
IPv4/IPv6 and UDP headers with correct checksums, ``LINKTYPE_RAW``) and writes the IKE and
CHILD SA keys beside it as the project's TOML key file and a Wireshark configuration directory,
so that ``ipsecdiag analyze session.pcapng --keys session.keys.toml`` and
``WIRESHARK_CONFIG_DIR=session.wireshark tshark -r session.pcapng`` show the session decrypted.
Frame numbers (1-based, in recording order) are what findings cite as evidence.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ipsecdiag.capture.writer import PcapNgWriter
from ipsecdiag.esp.inner import internet_checksum
from ipsecdiag.keys.keyfile import write_keyfile
from ipsecdiag.keys.model import AnyKeys, KeyStore
from ipsecdiag.keys.wireshark import write_wireshark_dir
from ipsecdiag.outputs import writing

LINKTYPE_RAW = 101
_UDP = 17
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_UDPH = struct.Struct("!HHHH")


@dataclass(frozen=True)
class Datagram:
    """One UDP datagram on the wire; ``payload`` is the UDP payload exactly as sent/received."""

    ts: float  # wall clock (seconds since the epoch)
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes
    outgoing: bool
    raw: bytes | None = None  # a whole IP packet that is not our UDP (an ICMP error about it)


@dataclass(frozen=True)
class WrittenFiles:
    pcapng: Path
    frames: int
    keyfile: Path | None = None
    wireshark_dir: Path | None = None
    key_records: int = 0


_checksum = internet_checksum  # RFC 1071, one implementation (esp/inner.py)


def ip_udp_packet(src: tuple[str, int], dst: tuple[str, int], payload: bytes, ident: int = 0) -> bytes:
    """A raw IPv4 or IPv6 packet carrying ``payload`` in UDP, checksums filled in.

    A datagram too large for one IP packet cannot have been sent or received over UDP, so the
    length fields never overflow for recorded traffic; a ValueError guards the rest.
    """
    s, d = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    if s.version != d.version:
        raise ValueError(f"address families differ: {s} -> {d}")
    ulen = 8 + len(payload)
    if ulen > 0xFFFF:
        raise ValueError(f"UDP datagram of {len(payload)} bytes cannot exist")
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, _UDP, ulen)
    else:
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", ulen, _UDP)
    udp = _UDPH.pack(src[1], dst[1], ulen, 0) + payload
    csum = internet_checksum(pseudo + udp) or 0xFFFF  # 0 means "no checksum" in IPv4 UDP
    udp = udp[:6] + csum.to_bytes(2, "big") + udp[8:]
    if s.version == 6:
        return _IPV6.pack(6 << 28, ulen, _UDP, 64, s.packed, d.packed) + udp
    total = 20 + ulen
    if total > 0xFFFF:
        raise ValueError(f"UDP datagram of {len(payload)} bytes does not fit an IPv4 packet")
    hdr = _IPV4.pack(0x45, 0, total, ident & 0xFFFF, 0x4000, 64, _UDP, 0, s.packed, d.packed)
    hdr = hdr[:10] + internet_checksum(hdr).to_bytes(2, "big") + hdr[12:]
    return hdr + udp


def keys_paths(pcapng: Path) -> tuple[Path, Path]:
    """``session.pcapng`` -> (``session.keys.toml``, ``session.wireshark/``)."""
    base = pcapng.with_suffix("") if pcapng.suffix in (".pcapng", ".pcap") else pcapng
    return base.with_name(base.name + ".keys.toml"), base.with_name(base.name + ".wireshark")


@dataclass
class SessionRecord:
    """The datagrams of one run (both directions, every peer) and the keys negotiated."""

    datagrams: list[Datagram] = field(default_factory=list)
    keys: list[AnyKeys] = field(default_factory=list)

    def add(self, d: Datagram) -> int:
        """Record ``d``; returns its frame number in the pcapng that :meth:`write` makes."""
        self.datagrams.append(d)
        return len(self.datagrams)

    def add_keys(self, items: Iterable[AnyKeys]) -> None:
        for k in items:
            if k not in self.keys:
                self.keys.append(k)

    @property
    def sent(self) -> int:
        return sum(1 for d in self.datagrams if d.outgoing)

    @property
    def received(self) -> int:
        return len(self.datagrams) - self.sent

    def frames(self) -> Iterator[tuple[int, float, int, bytes, int]]:
        """The datagrams as the capture reader's frames (numbered as in the written pcapng)."""
        for ident, d in enumerate(self.datagrams, 1):
            pkt = d.raw if d.raw is not None else ip_udp_packet(d.src, d.dst, d.payload, ident)
            yield ident, d.ts, LINKTYPE_RAW, pkt, len(pkt)

    def write(self, pcapng: Path, *, with_keys: bool = True) -> WrittenFiles:
        """Write the pcapng and, when keys were negotiated, the key files (0600) beside it."""
        # atomic and private (ipsecdiag.outputs rules): the capture is half of a decryptable session
        with writing(pcapng) as tmp, PcapNgWriter(tmp, application="ipsecdiag probe") as w:
            for ident, d in enumerate(self.datagrams, 1):
                if d.raw is not None:
                    w.write(d.ts, d.raw, linktype=LINKTYPE_RAW, comment="received (ICMP error from the socket's error queue)")
                    continue
                pkt = ip_udp_packet(d.src, d.dst, d.payload, ident)
                w.write(d.ts, pkt, linktype=LINKTYPE_RAW, comment="sent" if d.outgoing else "received")
        if not (with_keys and self.keys):
            return WrittenFiles(pcapng, len(self.datagrams))
        keyfile, wsdir = keys_paths(pcapng)
        store = KeyStore(self.keys)
        n = write_keyfile(store, keyfile)
        write_wireshark_dir(store, wsdir)
        return WrittenFiles(pcapng, len(self.datagrams), keyfile, wsdir, n)


__all__ = ["LINKTYPE_RAW", "Datagram", "SessionRecord", "WrittenFiles", "ip_udp_packet", "keys_paths"]
