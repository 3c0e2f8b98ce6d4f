"""``ipsecdiag decrypt``: write the decrypted inner traffic of a capture as pcap or pcapng.

Tunnel mode gives the inner IP packet (TFC padding cut), transport mode the reassembled IP
packet (an outer header rebuilt around the decrypted upper-layer data). Packets that fail
integrity or have no key are counted per SPI; with ``keep_undecrypted`` they are written too:
in pcapng with their original link layer, in classic pcap as the outer IP packet (rebuilt
IPv4/IPv6 and UDP header around the original ESP bytes).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..capture.writer import PcapNgWriter, PcapWriter
from ..decryption.esp import NO_KEY_STATUS, ip_packet
from ..decryption.ikev2 import DecryptionSetup
from ..keys.model import KeyStore
from ..reconstruction.esp_tracker import EspTracker, FlowState
from ..reconstruction.model import Report
from ..reconstruction.options import DEFAULT_OPTIONS, AnalysisOptions
from ..reconstruction.reconstructor import Decryptors

LINKTYPE_RAW = 101


@dataclass
class SpiCounts:
    packets: int = 0
    decrypted: int = 0
    written: int = 0
    failed: Counter[str] = field(default_factory=Counter)


@dataclass
class ExportSummary:
    output: str
    written: int = 0
    kept: int = 0
    per_spi: dict[tuple[int, str, str], SpiCounts] = field(default_factory=dict)
    report: Report | None = None

    @property
    def decrypted(self) -> int:
        return sum(c.decrypted for c in self.per_spi.values())

    @property
    def not_decrypted(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for c in self.per_spi.values():
            out.update(c.failed)
        return out


_STATUS_TEXT = {
    NO_KEY_STATUS: "no key",
    1: "integrity check failed",
    2: "malformed",
    3: "truncated",
    4: "unsupported algorithm",
    5: "implausible trailer (no ICV to check; wrong key?)",
}


def outer_packet(f: FlowState, esp: bytes) -> bytes:
    """The ESP packet as it travelled: outer IP (+ UDP for RFC 3948 encapsulation)."""
    if f.sport or f.dport:
        udp = struct.pack("!HHHH", f.sport, f.dport, 8 + len(esp), 0) + esp
        return ip_packet(f.src, f.dst, 17, udp)
    return ip_packet(f.src, f.dst, 50, esp)


def export_decrypted(
    capture: str | Path,
    keys: KeyStore,
    output: str | Path,
    *,
    pcapng: bool | None = None,
    keep_undecrypted: bool = False,
    options: AnalysisOptions = DEFAULT_OPTIONS,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    out_path = Path(output)
    use_ng = out_path.suffix.lower() == ".pcapng" if pcapng is None else pcapng
    summary = ExportSummary(output=str(out_path))
    current: list[int | float | bytes] = [0, 0.0, 0, b""]  # frame, ts, linktype, data of the frame being decoded

    def on_frame(frame: int, ts: float, linktype: int, data: bytes) -> None:
        current[0], current[1], current[2], current[3] = frame, ts, linktype, data

    writer: PcapWriter | PcapNgWriter
    writer = PcapNgWriter(out_path) if use_ng else PcapWriter(out_path, LINKTYPE_RAW)

    if isinstance(writer, PcapNgWriter):
        ng = writer

        def write(ts: float, pkt: bytes) -> None:
            ng.write(ts, pkt, linktype=LINKTYPE_RAW)
    else:
        write = writer.write

    def plain(frame: int, ts: float, f: FlowState, nh: int, payload: bytes) -> None:
        # Per packet only the write: the counts come from the flows at the end.
        write(ts, payload if nh == 4 or nh == 41 else ip_packet(f.src, f.dst, nh, payload))

    kept: Counter[tuple[bytes, bytes, int]] = Counter()

    def fail(frame: int, ts: float, f: FlowState, status: int) -> None:
        if not keep_undecrypted:
            return
        if isinstance(writer, PcapNgWriter) and current[0] == frame:
            writer.write(ts, current[3], linktype=current[2], comment=_STATUS_TEXT.get(status))
        else:
            data, off, end = _last_esp[0]
            write(ts, outer_packet(f, data[off:end]))
        kept[(f.src, f.dst, f.spi)] += 1

    _last_esp: list[tuple[bytes, int, int]] = [(b"", 0, 0)]

    def decryption(keys: KeyStore, tracker: EspTracker, capture_bytes: int) -> Decryptors:
        # Keeping undecrypted packets needs the frame at hand when it fails: no workers then.
        encoder = writer.encoder(LINKTYPE_RAW) if isinstance(writer, PcapNgWriter) else writer.encoder()
        d = DecryptionSetup(
            plain=plain,
            fail=fail,
            allow_pool=not keep_undecrypted,
            encoder=encoder,
            raw_out=writer.write_raw,
        )(keys, tracker, capture_bytes)
        hook = d.esp
        if not keep_undecrypted or hook is None:
            return d

        def esp_hook(f: FlowState, frame: int, ts: float, data: bytes, off: int, end: int) -> None:
            _last_esp[0] = (data, off, end)
            hook(f, frame, ts, data, off, end)

        return replace(d, esp=esp_hook)

    from ..pipeline import analyze_capture  # the pipeline sits above the decryption stage

    try:
        summary.report = analyze_capture(
            capture,
            keys=keys,
            options=options,
            decryption=decryption,
            on_frame=on_frame if keep_undecrypted else None,
            progress=progress,  # (bytes read, total): the command's progress bar
        )
    finally:
        writer.close()
    _tally(summary, kept)
    return summary


def _tally(summary: ExportSummary, kept: Counter[tuple[bytes, bytes, int]]) -> None:
    """Per-SPI counts of the export, from the report's flows (no per-packet bookkeeping)."""
    from ..reconstruction.model import addr_text

    assert summary.report is not None
    kept_by_text = {(addr_text(s), addr_text(d), spi): n for (s, d, spi), n in kept.items()}
    for fl in summary.report.esp_flows:
        k = (fl.spi, fl.src, fl.dst)
        c = summary.per_spi.setdefault(k, SpiCounts())
        c.packets += fl.packets
        c.decrypted += fl.decrypted
        dummies = fl.inner_protocols.get("dummy", 0)
        k_kept = kept_by_text.get((fl.src, fl.dst, fl.spi), 0)
        c.written += fl.decrypted - dummies + k_kept
        summary.written += fl.decrypted - dummies
        summary.kept += k_kept
        if not fl.keys:
            c.failed["no key"] += fl.packets
            continue
        for n, why in (
            (fl.integrity_failed, "integrity check failed"),
            (fl.truncated, "truncated"),
            (fl.undecryptable, "not decryptable (malformed, unsupported or implausible)"),
        ):
            if n:
                c.failed[why] += n
        if dummies:
            c.failed["dummy packets (next header 59), not written"] += dummies
