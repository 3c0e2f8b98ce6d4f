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
from ..esp.sa import EspDecryptor
from ..keys.model import ChildSaKeys, KeyStore
from ..reconstruction.esp_tracker import EspTracker, FlowState
from ..reconstruction.model import EspFlow, Report
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
    # decrypt --jobs: byte ranges decrypted in workers (0: one pass), how many of them again
    # from the SA state carried across their cut, and why a pass was serial when jobs > 1
    ranges: int = 0
    ranges_redone: int = 0
    serial_reason: str | None = None

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
    allow_pool: bool = True,
) -> ExportSummary:
    """Decrypt ``capture`` in one pass into ``output`` (``allow_pool``: large captures may
    decrypt in worker processes; ``decrypt --jobs 1`` says no)."""
    out_path = Path(output)
    use_ng = out_path.suffix.lower() == ".pcapng" if pcapng is None else pcapng
    summary = ExportSummary(output=str(out_path))
    stage = ExportStage(out_path, use_ng, keep_undecrypted, allow_pool=allow_pool)

    from ..pipeline import analyze_capture  # the pipeline sits above the decryption stage

    try:
        summary.report = analyze_capture(
            capture,
            keys=keys,
            options=options,
            decryption=stage.decryption,
            on_frame=stage.on_frame if keep_undecrypted else None,
            progress=progress,  # (bytes read, total): the command's progress bar
        )
    finally:
        stage.writer.close()
    tally(summary, summary.report.esp_flows, stage.kept)
    return summary


class ExportStage:
    """The output writer and the decryption stage of one export pass (a whole capture, or one
    byte range of it for ``decrypt --jobs``): the factory the reconstructor calls, the sinks it
    wires, and the packets kept undecrypted (per source, destination, SPI)."""

    def __init__(
        self,
        out_path: Path,
        use_ng: bool,
        keep_undecrypted: bool,
        *,
        allow_pool: bool = True,
        make_decryptor: Callable[[ChildSaKeys, FlowState], EspDecryptor] | None = None,
    ) -> None:
        self.keep_undecrypted = keep_undecrypted
        self.allow_pool = allow_pool and not keep_undecrypted and make_decryptor is None
        self.make_decryptor = make_decryptor
        self.kept: Counter[tuple[bytes, bytes, int]] = Counter()
        # frame, ts, linktype, data of the frame being decoded (for --keep-undecrypted)
        self._current: list[int | float | bytes] = [0, 0.0, 0, b""]
        self._last_esp: tuple[bytes, int, int] = (b"", 0, 0)
        self.writer: PcapWriter | PcapNgWriter
        self.writer = PcapNgWriter(out_path) if use_ng else PcapWriter(out_path, LINKTYPE_RAW)
        if isinstance(self.writer, PcapNgWriter):
            ng = self.writer

            def write(ts: float, pkt: bytes) -> None:
                ng.write(ts, pkt, linktype=LINKTYPE_RAW)

            self._write = write
        else:
            self._write = self.writer.write

    def on_frame(self, frame: int, ts: float, linktype: int, data: bytes) -> None:
        cur = self._current
        cur[0], cur[1], cur[2], cur[3] = frame, ts, linktype, data

    def plain(self, frame: int, ts: float, f: FlowState, nh: int, payload: bytes) -> None:
        # Per packet only the write: the counts come from the flows at the end.
        self._write(ts, payload if nh == 4 or nh == 41 else ip_packet(f.src, f.dst, nh, payload))

    def fail(self, frame: int, ts: float, f: FlowState, status: int) -> None:
        if not self.keep_undecrypted:
            return
        cur = self._current
        if isinstance(self.writer, PcapNgWriter) and cur[0] == frame:
            self.writer.write(ts, cur[3], linktype=cur[2], comment=_STATUS_TEXT.get(status))  # type: ignore[arg-type]
        else:
            data, off, end = self._last_esp
            self._write(ts, outer_packet(f, data[off:end]))
        self.kept[(f.src, f.dst, f.spi)] += 1

    def decryption(self, keys: KeyStore, tracker: EspTracker, capture_bytes: int) -> Decryptors:
        writer = self.writer
        # Keeping undecrypted packets needs the frame at hand when it fails: no workers then.
        encoder = writer.encoder(LINKTYPE_RAW) if isinstance(writer, PcapNgWriter) else writer.encoder()
        d = DecryptionSetup(
            plain=self.plain,
            fail=self.fail if self.keep_undecrypted else None,
            allow_pool=self.allow_pool,
            encoder=encoder,
            raw_out=writer.write_raw,
            ip_out=self._write,  # what plain() does with inner IPv4/IPv6, without the hop
            make_decryptor=self.make_decryptor,
        )(keys, tracker, capture_bytes)
        hook = d.esp
        if not self.keep_undecrypted or hook is None:
            return d

        def esp_hook(f: FlowState, frame: int, ts: float, data: bytes, off: int, end: int) -> None:
            self._last_esp = (data, off, end)
            hook(f, frame, ts, data, off, end)

        return replace(d, esp=esp_hook)


def tally(summary: ExportSummary, flows: list[EspFlow], kept: Counter[tuple[bytes, bytes, int]]) -> None:
    """Per-SPI counts of the export, from the report's flows (no per-packet bookkeeping)."""
    from ..reconstruction.model import addr_text

    kept_by_text = {(addr_text(s), addr_text(d), spi): n for (s, d, spi), n in kept.items()}
    for fl in flows:
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
