"""The analysis pipeline: frames -> reconstruction (with decryption) -> diagnosis -> Report.

:func:`analyze_frames` is the one entry point: any iterable of frames (the pcap/pcapng reader
is one source, a live capture another) and an optional callback that receives snapshots of
the findings so far at a bounded rate. :func:`analyze_capture` opens a file and drives the
same function, so ``ipsecdiag analyze`` and ``ipsecdiag live`` share one code path.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .capture.decode import Decoder
from .capture.reader import CaptureFile, Frame, open_capture
from .diagnosis.base import Check, CheckContext
from .diagnosis.checks import default_checks
from .diagnosis.repeats import merge_repeats
from .keys.model import KeyStore
from .reconstruction.esp_tracker import EspTracker
from .reconstruction.keyinfo import key_notes, key_refs
from .reconstruction.model import Finding, Report
from .reconstruction.options import DEFAULT_OPTIONS, AnalysisOptions
from .reconstruction.reconstructor import DecryptorFactory, Decryptors, Reconstructor

__all__ = [
    "AnalysisOptions",
    "Frame",
    "Snapshot",
    "analyze_capture",
    "analyze_frames",
    "rank_findings",
    "run_checks",
]

Progress = Callable[[int, int], None]  # (bytes read so far, total bytes)


@dataclass(frozen=True)
class Snapshot:
    """The analysis so far, taken between two frames.

    ``report`` is a provisional Report (IKE SAs settled and ESP flows summarised as of
    ``frames`` frames, checks run) built without disturbing the ongoing pass; ``findings`` is
    ``report.findings``, ranked. Nothing in it is shared with the state the pass keeps
    mutating, except the parsed messages, which are immutable.
    """

    report: Report
    findings: list[Finding]
    frames: int
    wall: float  # the clock() reading when it was taken


SnapshotCallback = Callable[[Snapshot], None]


def analyze_frames(
    frames: Iterable[Frame | None],
    *,
    options: AnalysisOptions = DEFAULT_OPTIONS,
    keys: KeyStore | None = None,
    source_name: str = "<frames>",
    source_format: str = "frames",
    on_snapshot: SnapshotCallback | None = None,
    snapshot_interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    checks: Sequence[Check] | None = None,
    decrypt: bool = True,
) -> Report:
    """Analyse frames from any source and return the final Report (checks included).

    ``frames`` yields ``(frame_number, ts, linktype, data, orig_len)`` tuples, numbered from
    1 in capture order (:data:`ipsecdiag.capture.reader.Frame`); a live source may also yield
    ``None`` when idle, so that snapshots keep coming while no packet arrives. With
    ``on_snapshot``, a :class:`Snapshot` is delivered at most once per ``snapshot_interval``
    seconds of ``clock()``, between frames; the last word is the returned Report. With keys
    and ``decrypt``, IKE and ESP are decrypted in this process during the pass.
    """
    keys = keys.copy() if keys is not None else None  # bindings made here stay in this analysis
    rec = Reconstructor(Report(options=options), keys, options, decryption=_decryption(allow_pool=False) if decrypt else None)
    try:
        rec.report.source.files.append(source_name)
        rec.report.source.formats.append(source_format)
        _drive(rec, iter(frames), on_snapshot, snapshot_interval, clock, checks, None)
        return _finish(rec, checks)
    finally:
        rec.close()


def analyze_capture(
    path: str | Path,
    *,
    keys: KeyStore | None = None,
    options: AnalysisOptions = DEFAULT_OPTIONS,
    checks: Sequence[Check] | None = None,
    progress: Progress | None = None,
    decryption: DecryptorFactory | None = None,
    on_frame: Callable[[int, float, int, bytes], None] | None = None,
    on_snapshot: SnapshotCallback | None = None,
    snapshot_interval: float = 1.0,
    decrypt: bool = True,
) -> Report:
    """Read one pcap/pcapng file in a single streaming pass and return its Report.

    With keys and ``decrypt``, IKE and ESP are decrypted (large files in worker processes);
    ``decryption`` may replace that with its own decryptor factory (``ipsecdiag decrypt`` does).
    ``on_frame(frame, ts, linktype, data)`` sees every frame before it is decoded.
    Raises ``CaptureError`` for unreadable input.
    """
    if decryption is None and decrypt:
        decryption = _decryption(allow_pool=True)
    keys = keys.copy() if keys is not None else None  # bindings made here stay in this analysis
    rec = Reconstructor(Report(options=options), keys, options, decryption=decryption, capture_bytes=_size(path))
    try:
        src = rec.report.source
        with open_capture(path) as cap:
            src.files.append(str(path))
            src.formats.append(cap.format)
            # Nothing to see per frame: the reader calls the decoder itself (CaptureFile.push).
            plain = on_frame is None and on_snapshot is None and progress is None
            frames: Iterator[Frame | None] = iter(()) if plain else cap.frames()
            if on_frame is not None:
                frames = _tapped(frames, on_frame)
            _drive(rec, frames, on_snapshot, snapshot_interval, time.monotonic, checks, progress, cap=cap)
            st = cap.stats
            src.bytes = st.bytes
            src.linktypes = set(cap.linktypes)
            if st.truncated_file:
                src.truncated_files.append(f"{path}: {st.truncated_detail}")
        return _finish(rec, checks)
    finally:
        rec.close()


def _tapped(frames: Iterator[Frame], on_frame: Callable[[int, float, int, bytes], None]) -> Iterator[Frame]:
    for fr in frames:
        on_frame(fr[0], fr[1], fr[2], fr[3])
        yield fr


def _decryption(*, allow_pool: bool) -> DecryptorFactory:
    """The decryption stage's factory; imported on first use (a capture without keys never
    loads the crypto modules): the Reconstructor calls it only when keys are loaded."""

    def factory(keys: KeyStore, tracker: EspTracker, capture_bytes: int) -> Decryptors:
        from .decryption.ikev2 import DecryptionSetup

        return DecryptionSetup(allow_pool=allow_pool)(keys, tracker, capture_bytes)

    return factory


def _drive(
    rec: Reconstructor,
    frames: Iterator[Frame | None],
    on_snapshot: SnapshotCallback | None,
    interval: float,
    clock: Callable[[], float],
    checks: Sequence[Check] | None,
    progress: Progress | None,
    *,
    cap: CaptureFile | None = None,
) -> None:
    """Feed every frame to the decoder; record the frame count and time span."""
    opts = rec.options
    decoder = Decoder(rec, ike_ports=frozenset(opts.ike_ports), natt_ports=frozenset(opts.natt_ports))
    src = rec.report.source
    feed = decoder.feed
    first: Frame | None = None
    last: Frame | None = None
    pushed = on_snapshot is None and progress is None and cap is not None and not cap.started
    if pushed:
        # The hot path: the reader hands each record to the decoder, no tuple in between; over
        # Ethernet the decoder walks the reader's buffers of records itself (record_walker).
        assert cap is not None
        src.first_ts, src.last_ts = cap.push(feed, decoder.record_walker)
        src.frames = cap.stats.frames
    elif on_snapshot is None and progress is None and cap is not None:
        # The loop runs once per packet: the common case carries nothing but the call.
        first = last = next(frames, None)
        if first is not None:
            feed(*first)
            for last in frames:  # type: ignore[assignment]
                feed(*last)  # type: ignore[misc]
    else:
        size = rec.capture_bytes
        next_at = clock() + interval if on_snapshot is not None else float("inf")
        nbytes = 0
        for fr in frames:
            if fr is not None:
                feed(*fr)
                if first is None:
                    first = fr
                last = fr
                if cap is None:
                    src.linktypes.add(fr[2])
                    nbytes += len(fr[3])
                elif progress is not None and not fr[0] & 0x3FFF:
                    progress(cap.stats.position, size)
            if on_snapshot is not None and clock() >= next_at:
                on_snapshot(_snapshot(rec, decoder, checks, first, last, clock()))
                next_at = clock() + interval
        if cap is None:
            src.bytes = nbytes
    if not pushed:
        src.first_ts = first[1] if first is not None else None
        src.last_ts = last[1] if last is not None else None
        src.frames = last[0] if last is not None else 0
    decoder.finish()
    src.steps_back = decoder.steps_back
    src.ipsec_frames = decoder.ipsec_frames
    src.skipped.update(decoder.skipped)


def _snapshot(
    rec: Reconstructor,
    decoder: Decoder,
    checks: Sequence[Check] | None,
    first: Frame | None,
    last: Frame | None,
    wall: float,
) -> Snapshot:
    src = replace(
        rec.report.source,
        files=list(rec.report.source.files),
        formats=list(rec.report.source.formats),
        frames=last[0] if last is not None else 0,
        first_ts=first[1] if first is not None else None,
        last_ts=last[1] if last is not None else None,
        ipsec_frames=decoder.ipsec_frames,
        skipped=Counter(decoder.skipped),
        truncated_files=list(rec.report.source.truncated_files),
        linktypes=set(rec.report.source.linktypes),
        keys_loaded=len(rec.keys) if rec.keys else 0,
    )
    report = rec.provisional_report(src)
    _key_info(report, rec)
    run_checks(report, checks if checks is not None else default_checks(), rec.options)
    return Snapshot(report=report, findings=report.findings, frames=report.source.frames, wall=wall)


def _finish(rec: Reconstructor, checks: Sequence[Check] | None) -> Report:
    report = rec.report
    report.source.keys_loaded = len(rec.keys) if rec.keys else 0
    rec.finish()
    _key_info(report, rec)
    run_checks(report, checks if checks is not None else default_checks(), rec.options)
    return report


def _key_info(report: Report, rec: Reconstructor) -> None:
    """The key sources' notes and the loaded records (no key bytes), after the pass bound what
    it could: checks and renderers read them from the report."""
    report.key_notes = key_notes(rec.keys)
    report.key_records = key_refs(rec.keys)
    report.key_formats = dict(rec.keys.formats)


def run_checks(report: Report, checks: Iterable[Check], options: AnalysisOptions = DEFAULT_OPTIONS) -> None:
    """Run the checks over a finished Report and store their findings, the repeats of one
    failure between the same peers merged (diagnosis.repeats), ranked."""
    ctx = CheckContext(report=report, options=options)
    found: list[Finding] = []
    for c in checks:
        found.extend(c.run(ctx))
    report.findings = rank_findings(merge_repeats(report, found))


def rank_findings(findings: list[Finding]) -> list[Finding]:
    """Root causes first, each followed by the findings it explains, then by severity.

    A finding that explains others (``explains`` lists their ids; same IKE SA when both name
    one) is placed at the severity of the worst of them, so an expired certificate comes
    before the AUTHENTICATION_FAILED it caused even when that is the more severe finding.
    """

    def related(root: Finding, f: Finding) -> bool:
        return f.id in root.explains and (root.ike_sa is None or f.ike_sa is None or root.ike_sa == f.ike_sa)

    def base(f: Finding) -> tuple[int, int, str]:
        return (f.frames[0] if f.frames else 1 << 30, 0 if f.explains else 1, f.id)

    roots = sorted((f for f in findings if f.explains), key=lambda f: (-int(f.severity), base(f)))
    attached: dict[int, list[Finding]] = {}
    free: list[Finding] = []
    for f in findings:
        root = None if f.explains else next((r for r in roots if related(r, f)), None)
        if root is None:
            free.append(f)
        else:
            attached.setdefault(id(root), []).append(f)

    def effective(f: Finding) -> int:
        return max([int(f.severity)] + [int(c.severity) for c in attached.get(id(f), [])])

    out: list[Finding] = []
    for f in sorted(free, key=lambda f: (-effective(f), base(f))):
        out.append(f)
        out.extend(sorted(attached.get(id(f), []), key=lambda c: (-int(c.severity), base(c))))
    return out


def _size(path: str | Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0
