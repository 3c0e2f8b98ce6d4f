"""One streaming pass over a capture: reader -> decoder -> this sink -> Report.

The :class:`Reconstructor` implements the capture layer's ``Sink``: ESP goes to the
:class:`EspTracker` hot path, IKE to the :class:`IkeReconstructor`, the rest is kept as
evidence for the checks. :func:`analyze_capture` wires it together and runs the checks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..capture.decode import Decoder
from ..capture.model import FragmentGroup, IcmpError, IkeDatagram
from ..capture.reader import open_capture
from ..keys.model import KeyStore
from .checks import default_checks
from .checks.base import Check, CheckContext
from .esp_tracker import DUP_SECONDS, IDLE_GAP, EspTracker
from .ike_sas import IkeReconstructor
from .model import AhFlow, Keepalive, Report, addr_text

MAX_KEEPALIVES = 100_000
MAX_EVIDENCE = 10_000

Progress = Callable[[int, int], None]  # (bytes read so far, total bytes)


class Reconstructor:
    """The Sink: collects everything the decoder finds into a Report."""

    def __init__(self, report: Report, keys: KeyStore | None = None) -> None:
        self.report = report
        self.keys = keys or KeyStore()
        opts = report.options
        self.esp = EspTracker(
            replay_window=int(opts.get("replay_window") or 64),
            dup_seconds=float(opts.get("dup_seconds") or DUP_SECONDS),
            idle_gap=float(opts.get("natt_idle_timeout") or IDLE_GAP),
        )
        self.ike = IkeReconstructor()
        self.ah: dict[tuple[int, bytes, bytes], AhFlow] = {}
        self.on_esp = self.esp.on_esp  # bound method: the hot path skips one call level
        self.keepalives_dropped = 0
        self.capture_bytes = 0  # size of the input, for decisions such as decryption workers
        self.finishers: list[Callable[[], None]] = []  # run at the end, before the report is built
        self.closers: list[Callable[[], None]] = []  # release resources (worker processes), always

    # -- Sink -------------------------------------------------------------------------------
    def on_ike(self, msg: IkeDatagram) -> None:
        self.ike.on_ike(msg)

    def on_ah(self, frame: int, ts: float, src: bytes, dst: bytes, data: bytes, off: int, end: int) -> None:
        if end - off < 12:
            self.report.malformed.append((frame, "ah", off, f"AH header needs 12 bytes, {end - off} present"))
            return
        nh = data[off]
        spi = int.from_bytes(data[off + 4 : off + 8], "big")
        seq = int.from_bytes(data[off + 8 : off + 12], "big")
        key = (spi, src, dst)
        f = self.ah.get(key)
        if f is None:
            f = AhFlow(spi=spi, src=addr_text(src), dst=addr_text(dst), seq_first=seq, first_frame=frame)
            self.ah[key] = f
        f.packets += 1
        f.seq_last = seq
        f.last_frame = frame
        f.next_headers[nh] += 1
        if self.keys:
            self._verify_ah(f, src, dst, data, off, end)
        if nh == 50:
            # AH protecting ESP: account the ESP part too (RFC 4302 §3.1).
            ah_len = (data[off + 1] + 2) * 4
            if off + ah_len + 8 <= end:
                self.esp.on_esp(frame, ts, src, dst, 0, 0, data, off + ah_len, end)

    def _verify_ah(self, f: AhFlow, src: bytes, dst: bytes, data: bytes, off: int, end: int) -> None:
        """ICV check (RFC 4302) when the key store has the SA; counts go to the AH flow."""
        from ..esp.ah import AhStatus, verify_ah

        k = self.keys.child(f.spi, f.src, f.dst) or self.keys.child_by_spi(f.spi)
        if k is None or k.protocol != "ah":
            return
        ip = ip_header_before(data, off, 51)
        if ip is None:
            return  # the IP header could not be located: not verifiable
        status = verify_ah(k, data[:end], ip, off)
        if status == AhStatus.OK:
            f.verified += 1
        elif status == AhStatus.INTEGRITY_FAILED:
            f.integrity_failed += 1

    def on_keepalive(self, frame: int, ts: float, src: str, dst: str, sport: int, dport: int) -> None:
        if len(self.report.keepalives) < MAX_KEEPALIVES:
            self.report.keepalives.append(Keepalive(frame, ts, src, dst, sport, dport))
        else:
            self.keepalives_dropped += 1
        self.report.source.keepalives += 1

    def on_icmp_error(self, err: IcmpError) -> None:
        self.report.source.icmp_errors += 1
        if len(self.report.icmp_errors) < MAX_EVIDENCE:
            self.report.icmp_errors.append(err)

    def on_fragment_group(self, group: FragmentGroup) -> None:
        if len(self.report.fragment_groups) < MAX_EVIDENCE:
            self.report.fragment_groups.append(group)

    def on_malformed(self, frame: int, ts: float, layer: str, offset: int, reason: str) -> None:
        if len(self.report.malformed) < MAX_EVIDENCE:
            self.report.malformed.append((frame, layer, offset, reason))

    def on_truncated(self, frame: int, ts: float, caplen: int, origlen: int) -> None:
        if len(self.report.truncated_frames) < MAX_EVIDENCE:
            self.report.truncated_frames.append(frame)

    # -- end --------------------------------------------------------------------------------
    def finish(self) -> None:
        for fn in self.finishers:
            fn()
        r = self.report
        r.ike_sas = self.ike.finish()
        r.esp_flows = self.esp.flows_out()
        for flow in r.esp_flows:
            if flow.inner_protocols:  # keyed by decrypt_esp.inner_code on the hot path
                from .decrypt_esp import SYN_CODE, inner_name

                named: Counter[str] = Counter()
                syn_mss: Counter[int] = Counter()
                for k, v in flow.inner_protocols.items():
                    named[inner_name(k) if isinstance(k, int) else k] += v
                    if isinstance(k, int) and k & SYN_CODE:
                        syn_mss[k & 0xFFFF] += v
                flow.inner_protocols = named
                if syn_mss:
                    flow.extra["syn_mss"] = dict(sorted(syn_mss.items()))
        r.ah_flows = sorted(self.ah.values(), key=lambda f: f.first_frame)
        r.source.ike_messages = self.ike.messages
        r.source.esp_packets = self.esp.packets
        r.source.ah_packets = sum(f.packets for f in r.ah_flows)
        for frame, layer, off, reason in self.ike.malformed:
            r.malformed.append((frame, layer, off, reason))
        for frame, off, reason in self.esp.malformed:
            r.malformed.append((frame, "esp", off, reason))
        r.malformed.sort()
        _link_child_sas(r)


def ip_header_before(data: bytes, off: int, proto: int) -> int | None:
    """Offset of the IPv4/IPv6 header whose payload (after IPv6 extension headers) starts at
    ``off`` with protocol ``proto``; the decoder hands over the AH offset only."""
    for ihl in range(20, 64, 4):  # IPv4 with 0..40 bytes of options
        start = off - ihl
        if start >= 0 and data[start] == 0x40 | ihl // 4 and data[start + 9] == proto:
            return start
    for start in range(off - 40, max(-1, off - 40 - 512), -8):  # IPv6 plus extension headers
        if start < 0 or data[start] >> 4 != 6:
            continue
        nh, p = data[start + 6], start + 40
        while p < off and nh in (0, 43, 60, 135):
            nh, p = data[p], p + (data[p + 1] + 1) * 8
        if p == off and nh == proto:
            return start
    return None


def _link_child_sas(r: Report) -> None:
    """Attach ESP flows to the IKE SA whose CHILD SA announced their SPI."""
    owner: dict[int, str] = {}
    for sa in r.ike_sas:
        for c in sa.child_sas:
            for spi in (c.spi_i, c.spi_r):
                if spi is not None:
                    owner[spi] = sa.key
    for f in r.esp_flows:
        f.child_sa = owner.get(f.spi)


def analyze_capture(
    path: str | Path,
    *,
    keys: KeyStore | None = None,
    checks: Sequence[Check] | None = None,
    options: dict[str, Any] | None = None,
    progress: Progress | None = None,
    setup: Callable[[Reconstructor], None] | None = None,
    on_frame: Callable[[int, float, int, bytes], None] | None = None,
) -> Report:
    """Read one capture in a single streaming pass and return its Report (checks included).

    ``setup`` may install decryption hooks (see :mod:`ipsecdiag.analysis.decrypt`);
    ``on_frame(frame, ts, linktype, data)`` sees every frame before it is decoded.
    Raises ``CaptureError`` for unreadable input.
    """
    opts = dict(options or {})
    report = Report(options=opts)
    rec = Reconstructor(report, keys)
    rec.capture_bytes = _size(path)
    try:
        return _run(path, rec, report, opts, checks, progress, setup, on_frame, keys)
    finally:
        for close in rec.closers:
            close()


def _run(
    path: str | Path,
    rec: Reconstructor,
    report: Report,
    opts: dict[str, Any],
    checks: Sequence[Check] | None,
    progress: Progress | None,
    setup: Callable[[Reconstructor], None] | None,
    on_frame: Callable[[int, float, int, bytes], None] | None,
    keys: KeyStore | None,
) -> Report:
    if setup is not None:
        setup(rec)
    ike_ports = frozenset(opts.get("ike_ports") or (500,))
    natt_ports = frozenset(opts.get("natt_ports") or (4500,))
    decoder = Decoder(rec, ike_ports=ike_ports, natt_ports=natt_ports)
    src = report.source
    with open_capture(path) as cap:
        src.files.append(str(path))
        src.formats.append(cap.format)
        feed = decoder.feed
        total = _size(path)
        it = cap.frames()
        fr0 = next(it, None)
        fr = fr0
        if fr0 is not None:
            if on_frame is not None:
                on_frame(*fr0[:4])
            feed(*fr0)
        # The loop runs once per packet: the common case carries nothing but the call.
        if on_frame is None and progress is None:
            for fr in it:
                feed(*fr)
        else:
            for fr in it:
                if on_frame is not None:
                    on_frame(*fr[:4])
                feed(*fr)
                if progress is not None and not fr[0] & 0x3FFF:
                    progress(cap.stats.position, total)
        first = fr0[1] if fr0 is not None else None
        last = fr[1] if fr is not None else None
        n = fr[0] if fr is not None else 0
        decoder.finish()
        st = cap.stats
        src.frames = n
        src.bytes = st.bytes
        src.first_ts = first
        src.last_ts = last
        src.linktypes = set(cap.linktypes)
        if st.truncated_file:
            src.truncated_files.append(f"{path}: {st.truncated_detail}")
    src.ipsec_frames = decoder.ipsec_frames
    src.skipped.update(decoder.skipped)
    src.keys_loaded = len(keys) if keys else 0
    rec.finish()
    run_checks(report, checks if checks is not None else default_checks(), opts)
    return report


def run_checks(report: Report, checks: Iterable[Check], options: dict[str, Any]) -> None:
    ctx = CheckContext(report=report, options=options)
    found = []
    for c in checks:
        found.extend(c.run(ctx))
    report.findings = rank_findings(found)


def rank_findings(findings: list[Any]) -> list[Any]:
    """Root causes first, each followed by the findings it explains, then by severity.

    A finding that explains others (``explains`` lists their ids; same IKE SA when both name
    one) is placed at the severity of the worst of them, so an expired certificate comes
    before the AUTHENTICATION_FAILED it caused even when that is the more severe finding.
    """

    def related(root: Any, f: Any) -> bool:
        return f.id in root.explains and (root.ike_sa is None or f.ike_sa is None or root.ike_sa == f.ike_sa)

    def base(f: Any) -> tuple[int, int, str]:
        return (f.frames[0] if f.frames else 1 << 30, 0 if f.explains else 1, f.id)

    roots = sorted((f for f in findings if f.explains), key=lambda f: (-int(f.severity), base(f)))
    attached: dict[int, list[Any]] = {}
    free: list[Any] = []
    for f in findings:
        root = None if f.explains else next((r for r in roots if related(r, f)), None)
        if root is None:
            free.append(f)
        else:
            attached.setdefault(id(root), []).append(f)

    def effective(f: Any) -> int:
        return max([int(f.severity)] + [int(c.severity) for c in attached.get(id(f), [])])

    out: list[Any] = []
    for f in sorted(free, key=lambda f: (-effective(f), base(f))):
        out.append(f)
        out.extend(sorted(attached.get(id(f), []), key=lambda c: (-int(c.severity), base(c))))
    return out


def _size(path: str | Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0
