"""``decrypt -o OUT --jobs N``: decrypt byte ranges of one capture in forked workers and write
the output in frame order, byte for byte the serial output.

The capture is cut at proved record boundaries (:mod:`ipsecdiag.capture.split`); each worker
runs the export pass of :mod:`.pcap` over its range (its own reader, decoder, ESP tracker and
decryptors; the key store inherited at fork, never pickled) and writes its records to a part
file beside the output. The main process then checks that nothing the serial pass would carry
across a cut was lost, and concatenates the parts, each without its file header, into the
output (which the caller writes atomically, 0600).

What the serial pass carries across a cut, and how it is handled:

* per-SA decryptor state: whether the SA uses Extended Sequence Numbers (when the keys do not
  say) and the highest authenticated 64-bit sequence number, from which the high half of the
  next ones is inferred (RFC 4303 Appendix A). A worker starts every SA from the keys; each
  range records its SAs' first :data:`PREFIX` packets. Walking the ranges in order with the
  true state at each cut, the main process replays a range's recorded packets from that state
  until both decryptors are in the same state with the same verdicts (they then stay equal);
  when they do not meet within the record, the range is decrypted again here, starting from the
  true state (counted in ``ExportSummary.ranges_redone``);
* IP fragments and RFC 8229 TCP streams open at a cut, fragment tombstones still able to catch
  a later fragment, or more ESP flows than the tracker follows one by one (their decryption
  depends on which came first): the capture is decrypted serially instead, and the reason given
  (``ExportSummary.serial_reason``); so is a pcapng output with ``--keep-undecrypted``, whose
  interfaces are numbered in the order they first appear.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from ..capture.decode import CarriedState, Decoder
from ..capture.reader import steady_buffers
from ..capture.split import ByteRange, open_range, range_problem, split_capture
from ..capture.writer import PcapNgWriter, PcapWriter
from ..esp.sa import EspDecryptor
from ..keys.model import ChildSaKeys, KeyStore
from ..reconstruction.esp_tracker import FlowState
from ..reconstruction.model import Report
from ..reconstruction.options import DEFAULT_OPTIONS, AnalysisOptions
from ..reconstruction.reconstructor import Reconstructor
from .pcap import LINKTYPE_RAW, ExportStage, ExportSummary, SpiCounts, export_decrypted, tally

# Packets recorded per SA and range for the replay across a cut; in order traffic meets the
# true state on the first one.
PREFIX = 16
# Bytes of recorded packets per worker, all SAs together (a capture of thousands of SAs).
PREFIX_BUDGET = 32 * 1024 * 1024

FlowKey = tuple[int, bytes, bytes, int, int]  # SPI, source, destination, ports
SaState = tuple[bool | None, int]  # ESN mode (None: not known yet), highest 64-bit sequence number
# One recorded packet: ESP bytes, status, high half used, the state after it.
Recorded = tuple[bytes, int, int, bool | None, int]


@dataclass
class SaTrace:
    """One SA's decryptor in one range: the state it started from, its first packets, its end."""

    start: SaState
    end: SaState
    packets: int  # decrypt calls in this range
    prefix: list[Recorded]


@dataclass
class RangeOutcome:
    """What a worker sends back for its range (no key material: states, counts, ciphertext)."""

    index: int
    part: str
    problem: str | None
    carried: CarriedState | None
    flows: set[FlowKey]
    traces: dict[FlowKey, SaTrace]
    per_spi: dict[tuple[int, str, str], SpiCounts]
    written: int
    kept: int


class _Budget:
    left = PREFIX_BUDGET


class TracingDecryptor(EspDecryptor):
    """An :class:`EspDecryptor` that may start from a carried state and records its first
    packets (with ``record``) with their verdicts and the state after each."""

    def __init__(self, keys: ChildSaKeys, start: SaState | None, *, record: bool = True) -> None:
        super().__init__(keys)
        if start is not None:
            # The ESN mode and the RFC 4303 Appendix A top the serial pass had at the cut.
            self.esn, self._esn.top = start
        self.start: SaState = (self.esn, self._esn.top)
        self.calls = 0
        self.prefix: list[Recorded] = []
        self._record = record

    @property
    def state(self) -> SaState:
        return self.esn, self._esn.top

    def decrypt(self, data: bytes, off: int, end: int) -> tuple[int, int, bytes | None, int]:
        r = super().decrypt(data, off, end)
        self.calls += 1
        if not self._record:
            return r
        if len(self.prefix) < PREFIX and _Budget.left >= end - off:
            _Budget.left -= end - off
            self.prefix.append((data[off:end], r[0], r[3], self.esn, self._esn.top))
        elif len(self.prefix) >= PREFIX:
            # Recorded enough: the rest of the range goes straight to the decryptor; ``calls``
            # then only says that there were more packets than recorded.
            self.decrypt = super().decrypt  # type: ignore[method-assign]
        return r


def flow_key(f: FlowState) -> FlowKey:
    return f.spi, f.src, f.dst, f.sport, f.dport


@dataclass
class _Shared:
    """Inherited by the forked workers."""

    capture: str
    keys: KeyStore
    options: AnalysisOptions
    use_ng: bool
    keep_undecrypted: bool
    parts: list[str] = field(default_factory=list)


def decrypt_range(shared: _Shared, rng: ByteRange, start: dict[FlowKey, SaState] | None = None) -> RangeOutcome:
    """Decrypt one range into its part file (a whole pcap/pcapng file of its own)."""
    part = Path(shared.parts[rng.index])
    traced: list[tuple[FlowKey, TracingDecryptor]] = []
    initial = start or {}

    def make(keys: ChildSaKeys, f: FlowState) -> EspDecryptor:
        key = flow_key(f)
        dec = TracingDecryptor(keys, initial.get(key))
        traced.append((key, dec))
        return dec

    stage = ExportStage(part, shared.use_ng, shared.keep_undecrypted, allow_pool=False, make_decryptor=make)
    opts = shared.options
    keys = shared.keys.copy()  # bindings made here stay in this pass
    children = _child_keys(keys)
    rec = Reconstructor(Report(options=opts), keys, opts, decryption=stage.decryption)
    try:
        with open_range(shared.capture, rng) as cap:
            decoder = Decoder(rec, ike_ports=frozenset(opts.ike_ports), natt_ports=frozenset(opts.natt_ports))
            feed = decoder.feed
            on_frame = stage.on_frame if shared.keep_undecrypted else None
            if on_frame is None:
                cap.push(feed)  # the reader calls the decoder itself
            for fr in () if cap.started else cap.frames():
                if on_frame is not None:
                    on_frame(fr[0], fr[1], fr[2], fr[3])
                feed(*fr)
            problem = range_problem(cap, rng)
            carried = decoder.carried_state()
            decoder.finish()
        rec.finish()
    finally:
        rec.close()
        stage.writer.close()
    summary = ExportSummary(output=str(part))
    tally(summary, rec.report.esp_flows, stage.kept)
    tracker = rec.esp
    flows = set(tracker.flows) if not tracker.overflow else set()
    if problem is None and tracker.overflow:
        problem = "more ESP flows than the tracker follows one by one"
    if problem is None and _child_keys(keys) != children:
        # ESP keys are the key files' today; should a pass ever add some, a range could not know.
        problem = "ESP keys were added during the pass"
    return RangeOutcome(
        index=rng.index,
        part=str(part),
        problem=problem,
        carried=carried,
        flows={(int.from_bytes(k[0], "big"), k[1], k[2], k[3], k[4]) for k in flows},
        traces={k: SaTrace(d.start, d.state, d.calls, d.prefix) for k, d in traced},
        per_spi=summary.per_spi,
        written=summary.written,
        kept=summary.kept,
    )


def _child_keys(keys: KeyStore) -> list[int]:
    return [id(k) for k in keys if isinstance(k, ChildSaKeys)]


def _worker(shared: _Shared, rng: ByteRange) -> RangeOutcome:
    _Budget.left = PREFIX_BUDGET
    return decrypt_range(shared, rng)


def export_decrypted_jobs(
    capture: str | Path,
    keys: KeyStore,
    output: str | Path,
    *,
    jobs: int | None = None,
    pcapng: bool | None = None,
    keep_undecrypted: bool = False,
    options: AnalysisOptions = DEFAULT_OPTIONS,
    progress: Callable[[int, int], None] | None = None,
    parts: int | None = None,
    min_range_bytes: int | None = None,
) -> ExportSummary:
    """``export_decrypted`` with ``jobs`` processes (None: the cores for a capture of 32 MiB or
    more). ``parts``: how many ranges (default ``jobs``); ``min_range_bytes``: the smallest
    (default ``analyze``'s, ``IPSECDIAG_RANGE_BYTES`` in tests)."""
    from ..parallel import AUTO_MIN_BYTES, cores, map_in_order, map_ranges_with_progress, range_min_bytes

    out_path = Path(output)
    use_ng = out_path.suffix.lower() == ".pcapng" if pcapng is None else pcapng
    size = os.path.getsize(capture) if os.path.isfile(capture) else 0
    explicit = jobs is not None
    if jobs is None:
        jobs = cores() if size >= AUTO_MIN_BYTES else 1
    if size >= AUTO_MIN_BYTES:
        steady_buffers()

    def serial(reason: str | None) -> ExportSummary:
        s = export_decrypted(
            capture, keys, out_path, pcapng=use_ng, keep_undecrypted=keep_undecrypted, options=options,
            progress=progress,
            allow_pool=not explicit or jobs > 1,
        )  # fmt: skip
        s.serial_reason = reason if jobs > 1 else None
        return s

    if jobs <= 1 or not os.path.isfile(capture):  # a pipe cannot be cut into ranges
        return serial(None)
    if use_ng and keep_undecrypted:
        return serial("a pcapng output with --keep-undecrypted numbers its interfaces as they appear")
    ranges = split_capture(capture, parts or jobs, min_bytes=min_range_bytes or range_min_bytes())
    if len(ranges) < 2:
        return serial(None)
    shared = _Shared(str(capture), keys, options, use_ng, keep_undecrypted)
    # Range 0 writes the output itself (file header and all); the others, part files beside it.
    shared.parts = [str(out_path)] + [_part_name(out_path, r.index) for r in ranges[1:]]
    try:
        if progress is None:
            outcomes = map_in_order(_worker, shared, ranges, jobs)
        else:
            # the range streams count the bytes they read (capture/split.read_counter)
            outcomes = map_ranges_with_progress(_worker, shared, ranges, jobs, progress)
        reason = _cut_problem(outcomes)
        if reason is not None:
            _remove(shared.parts[1:])
            return serial(reason)
        redone = _carry_sa_state(shared, ranges, outcomes)
        _append(out_path, use_ng, [o.part for o in outcomes[1:]])
    finally:
        _remove(shared.parts[1:])
    summary = _merge(out_path, outcomes)
    summary.ranges = len(ranges)
    summary.ranges_redone = redone
    return summary


def _part_name(out: Path, index: int) -> str:
    """A new private (0600) file beside the output for one range's records."""
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=f".range{index}", dir=out.parent)
    os.close(fd)
    return name


def _remove(paths: list[str]) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _cut_problem(outcomes: list[RangeOutcome]) -> str | None:
    """Why the ranges cannot stand for the serial pass (None: they can, SA state aside)."""
    from ..reconstruction.esp_tracker import MAX_FLOWS

    flows: set[FlowKey] = set()
    tomb_until = float("-inf")
    for o in outcomes:
        if o.problem is not None:
            return o.problem
        c = o.carried
        assert c is not None
        if c.min_fragment_ts <= tomb_until:
            return f"an IP fragment in range {o.index} may be a copy of a datagram settled before it"
        flows |= o.flows
        if o is outcomes[-1]:
            break
        if c.fragment_groups:
            return f"{c.fragment_groups} IP datagram(s) still in fragments at the end of range {o.index}"
        if c.tcp_streams:
            return "RFC 8229 TCP streams continue across ranges"
        if c.tombs_full:
            return f"too many settled fragment groups remembered at the end of range {o.index}"
        tomb_until = max(tomb_until, c.tomb_until)
    if len(flows) > MAX_FLOWS:
        return f"{len(flows)} ESP flows, more than the {MAX_FLOWS} followed one by one"
    return None


def _carry_sa_state(shared: _Shared, ranges: list[ByteRange], outcomes: list[RangeOutcome]) -> int:
    """Walk the ranges with every SA's true state at each cut; a range whose SAs do not meet
    that state within their recorded packets is decrypted again from it. Returns how many."""
    true: dict[FlowKey, SaState] = {}
    redone = 0
    for i, o in enumerate(outcomes):
        ends: dict[FlowKey, SaState] = {}
        for key, t in o.traces.items():
            end = _meets(shared.keys, key, t, true[key]) if key in true else t.end
            if end is None:
                break
            ends[key] = end
        else:
            true.update(ends)
            continue
        _Budget.left = PREFIX_BUDGET
        o = outcomes[i] = decrypt_range(shared, ranges[i], dict(true))
        redone += 1
        true.update((key, t.end) for key, t in o.traces.items())
    return redone


def _meets(keys: KeyStore, key: FlowKey, t: SaTrace, state: SaState) -> SaState | None:
    """The SA's true state at the end of this range, when its packets here, decrypted from
    ``state`` (the serial pass's) instead of ``t.start``, get the same verdicts; else None.
    Decided from the recorded packets: once both decryptors are in the same state after the
    same verdicts, they stay so for the rest of the range."""
    if state == t.start:
        return t.end
    k = _keys_of(keys, key)
    if k is None:
        return None
    dec = TracingDecryptor(k, state, record=False)
    for pkt, status, _hi, esn, top in t.prefix:
        if dec.decrypt(pkt, 0, len(pkt))[0] != status:
            return None
        if dec.state == (esn, top):
            return t.end
    return dec.state if len(t.prefix) == t.packets else None


def _keys_of(keys: KeyStore, key: FlowKey) -> ChildSaKeys | None:
    from ..decryption.esp import flow_keys

    spi, src, dst, sport, dport = key
    return flow_keys(keys, FlowState(spi, src, dst, sport, dport))


def _header(use_ng: bool) -> bytes:
    """The bytes every part file starts with (the writer's file header, and for pcapng the
    raw-IP interface block the export creates first)."""
    buf = BytesIO()
    w: PcapWriter | PcapNgWriter
    if use_ng:
        w = PcapNgWriter(buf)
        w.encoder(LINKTYPE_RAW)
    else:
        w = PcapWriter(buf, LINKTYPE_RAW)
    w.flush()
    return buf.getvalue()


def _append(out: Path, use_ng: bool, parts: list[str]) -> None:
    """Append each part's records (its file header checked and left out) to ``out``, in the
    kernel where it can (``copy_file_range``; the output is not opened for appending, since
    the call refuses an ``O_APPEND`` descriptor and the copy would go through user space)."""
    head = _header(use_ng)
    with open(out, "r+b") as dst:
        pos = dst.seek(0, os.SEEK_END)
        for n, part in enumerate(parts, 1):
            with open(part, "rb") as src:
                if src.read(len(head)) != head:
                    raise RuntimeError(f"decrypt --jobs: part {n} does not start with the expected header")
                pos += _copy(src, dst, len(head), pos, os.fstat(src.fileno()).st_size - len(head))


def _copy(src: BinaryIO, dst: BinaryIO, src_at: int, dst_at: int, size: int) -> int:
    """Copy ``size`` bytes of ``src`` from ``src_at`` into ``dst`` at ``dst_at``; how many."""
    done = 0
    while done < size:
        try:
            n = os.copy_file_range(src.fileno(), dst.fileno(), size - done, src_at + done, dst_at + done)
        except OSError:  # not between these file systems: through user space
            break
        if n <= 0:
            break
        done += n
    src.seek(src_at + done)
    dst.seek(dst_at + done)
    while done < size:
        chunk = src.read(min(size - done, 1 << 20))
        if not chunk:
            break
        dst.write(chunk)
        done += len(chunk)
    return done


def _merge(out: Path, outcomes: list[RangeOutcome]) -> ExportSummary:
    summary = ExportSummary(output=str(out))
    for o in outcomes:
        for k, c in o.per_spi.items():
            m = summary.per_spi.setdefault(k, SpiCounts())
            m.packets += c.packets
            m.decrypted += c.decrypted
            m.written += c.written
            m.failed.update(c.failed)
        summary.written += o.written
        summary.kept += o.kept
    for c in summary.per_spi.values():
        c.failed = Counter(dict(c.failed))
    return summary
