"""A process pool for units of analysis, and one capture analysed on several cores.

Units that do not depend on one another are whole captures (or runs of files that continue
one another): each is analysed by exactly the code a single process runs, so the reports are
the serial ones by construction and come back in the order the units were given.

One large capture is cut into byte ranges (capture/split.py) and analysed by
:func:`analyze_ranges`: workers account the ESP of their range, the main process decodes every
other frame in global order and joins the per-range ESP flow states exactly
(reconstruction/merge.py); what cannot be joined exactly is analysed serially instead (counted
in :data:`SPLIT_STATS`, logged on the ``ipsecdiag.parallel`` logger).

Workers are forked: what they share (the key store, the options) is inherited, never
pickled, so key material does not cross a pipe; only the finished results do.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from .capture.split import ByteRange
    from .diagnosis.base import Check
    from .keys.model import KeyStore
    from .reconstruction.model import Report
    from .reconstruction.options import AnalysisOptions
    from .reconstruction.range_scan import RangeResult

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")

# Below this many bytes of input in all, a second process costs more than it saves
# (a forked worker plus pickling the reports back: ~50 ms).
AUTO_MIN_BYTES = 32 * 1024 * 1024
# Smallest byte range worth a worker when one capture is split (tests lower it:
# IPSECDIAG_RANGE_BYTES, so that small captures are cut into several ranges too).
RANGE_MIN_BYTES = 8 * 1024 * 1024

log = logging.getLogger("ipsecdiag.parallel")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_jobs(units: int, total_bytes: int) -> int:
    """The default ``--jobs``: the cores for enough work (one large capture is split into byte
    ranges), 1 for small inputs."""
    if units < 1 or total_bytes < AUTO_MIN_BYTES:
        return 1
    return max(1, cores())


class _Call(Generic[S, T, R]):
    """The worker side: ``fn(shared, item)`` with ``shared`` inherited at fork."""

    shared: object = None

    def __init__(self, fn: Callable[[S, T], R]) -> None:
        self.fn = fn

    def __call__(self, item: T) -> R:
        return self.fn(_Call.shared, item)  # type: ignore[arg-type]


def _install(shared: object) -> None:
    _Call.shared = shared


def map_in_order(
    fn: Callable[[S, T], R],
    shared: S,
    items: Sequence[T],
    jobs: int,
    *,
    tick: Callable[[], None] | None = None,
) -> list[R]:
    """``[fn(shared, x) for x in items]``, in up to ``jobs`` processes, results in order.

    An exception in a worker is raised here, as in the serial loop (the first in order).
    Without fork (not Linux/BSD) the loop runs in this process. ``tick`` is called about five
    times a second while the workers run (a progress bar reading what they share).
    """
    jobs = min(jobs, len(items))
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [fn(shared, x) for x in items]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_install, initargs=(shared,)) as pool:
        futures = [pool.submit(_Call(fn), x) for x in items]
        if tick is not None:
            while wait(futures, timeout=0.2).not_done:
                tick()
        return [f.result() for f in futures]


# map_in_order's shape: (fn, shared, items, jobs) -> [fn(shared, x) for x in items], in order.
# A Dask (or any other) mapper of this shape can run the ranges elsewhere.
Mapper = Callable[[Callable[[S, T], R], S, Sequence[T], int], list[R]]


@dataclass
class SplitStats:
    """How the split analyses of this process went: merged exactly, or analysed serially."""

    merged: int = 0
    fallbacks: int = 0
    last_reason: str | None = None


SPLIT_STATS = SplitStats()


def _debug(line: str) -> None:
    """On the ``ipsecdiag.parallel`` logger, and on stderr with IPSECDIAG_DEBUG=1."""
    log.info(line)
    if os.environ.get("IPSECDIAG_DEBUG"):
        import sys

        print(f"ipsecdiag: debug: {line}", file=sys.stderr)


def range_min_bytes() -> int:
    env = os.environ.get("IPSECDIAG_RANGE_BYTES")
    return int(env) if env and env.isdigit() and int(env) > 0 else RANGE_MIN_BYTES


def analyze_split(
    path: str | Path,
    jobs: int,
    *,
    keys: KeyStore | None = None,
    options: AnalysisOptions | None = None,
    checks: Sequence[Check] | None = None,
    min_bytes: int | None = None,
    mapper: Mapper | None = None,  # type: ignore[type-arg]
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """One capture on ``jobs`` processes: the report :func:`pipeline.analyze_capture` gives.
    ``progress(bytes_done, bytes_total)`` as for :func:`pipeline.analyze_capture`."""
    from .capture.split import split_capture
    from .pipeline import analyze_capture
    from .reconstruction.options import DEFAULT_OPTIONS

    options = options or DEFAULT_OPTIONS
    ranges = split_capture(path, jobs, min_bytes=min_bytes or range_min_bytes())
    if len(ranges) < 2:
        return analyze_capture(path, keys=keys, options=options, checks=checks, progress=progress)
    return analyze_ranges(
        path, ranges, options=options, keys=keys, checks=checks, mapper=mapper, jobs=jobs, progress=progress
    )


@dataclass(frozen=True)
class _RangeJob:
    path: str
    options: AnalysisOptions
    keys: KeyStore | None


def _scan(job: _RangeJob, rng: ByteRange) -> RangeResult:
    """A worker: the ESP of one range (decrypted with the inherited keys)."""
    from .pipeline import _decryption
    from .reconstruction.range_scan import scan_range

    keys = job.keys.copy() if job.keys else None
    if keys is None:
        return scan_range(job.path, rng, job.options)
    factory = _decryption(allow_pool=False)
    return scan_range(job.path, rng, job.options, lambda tracker: factory(keys, tracker, 0).esp)


def analyze_ranges(
    path: str | Path,
    ranges: Sequence[ByteRange],
    *,
    options: AnalysisOptions,
    keys: KeyStore | None = None,
    checks: Sequence[Check] | None = None,
    mapper: Mapper | None = None,  # type: ignore[type-arg]
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """The report of ``path`` from its byte ``ranges`` (capture.split.split_capture), each
    scanned by ``mapper(fn, shared, ranges, jobs)`` (default :func:`map_in_order`: forked
    workers), joined exactly; when that is not provably exact, the serial analysis."""
    from .pipeline import analyze_capture
    from .reconstruction.merge import Unmergeable

    job = _RangeJob(str(path), options, keys)
    if mapper is None and progress is not None:
        results = map_ranges_with_progress(_scan, job, list(ranges), jobs or len(ranges), progress)
    else:
        results = (mapper or map_in_order)(_scan, job, list(ranges), jobs or len(ranges))
    try:
        report = merge_ranges(path, results, options=options, keys=keys, checks=checks)
    except Unmergeable as exc:
        SPLIT_STATS.fallbacks += 1
        SPLIT_STATS.last_reason = str(exc)
        _debug(f"{path}: {len(ranges)} byte ranges not joined exactly ({exc}): analysed in one pass")
        # a second pass over the whole file: the bar starts again rather than sit at 100 %
        return analyze_capture(path, keys=keys, options=options, checks=checks, progress=progress)
    SPLIT_STATS.merged += 1
    _debug(f"{path}: {len(ranges)} byte ranges joined exactly")
    return report


def map_ranges_with_progress(
    fn: Callable[[S, ByteRange], R],
    shared: S,
    ranges: list[ByteRange],
    jobs: int,
    progress: Callable[[int, int], None],
) -> list[R]:
    """``map_in_order`` over byte ranges, the bytes the workers' range streams read summed
    for ``progress``; the last call is always ``(total, total)``, even when every range
    finished before the first tick."""
    from .capture import split

    total = sum(r.end - r.start for r in ranges)
    split.read_counter = counter = multiprocessing.get_context("fork").Array("q", len(ranges), lock=False)
    try:
        results = map_in_order(fn, shared, ranges, jobs, tick=lambda: progress(min(sum(counter), total), total))
    finally:
        split.read_counter = None
    progress(total, total)
    return results


def merge_ranges(
    path: str | Path,
    results: Sequence[RangeResult],
    *,
    options: AnalysisOptions,
    keys: KeyStore | None = None,
    checks: Sequence[Check] | None = None,
) -> Report:
    """The main process's part: the forwarded frames through the ordinary decoder and
    Reconstructor in global frame order, the ESP flows joined, the checks run. Raises
    ``Unmergeable`` when the result would not be the serial one."""
    from .capture.decode import Decoder
    from .keys.model import ChildSaKeys
    from .pipeline import _decryption, _finish, _size
    from .reconstruction.cut_replay import replay_prefix
    from .reconstruction.merge import EspCheck, FlowMerger, Unmergeable, merge_times
    from .reconstruction.model import Report
    from .reconstruction.reconstructor import Reconstructor

    for r in results:
        if r.problem:
            raise Unmergeable(r.problem)
    store = keys.copy() if keys is not None else None
    rec = Reconstructor(
        Report(options=options), store, options, decryption=_decryption(allow_pool=False), capture_bytes=_size(path)
    )
    try:
        children = [id(k) for k in rec.keys if isinstance(k, ChildSaKeys)]
        check = EspCheck()
        rec.on_esp = check  # type: ignore[assignment]  # the workers accounted the ESP
        decoder = Decoder(rec, ike_ports=frozenset(options.ike_ports), natt_ports=frozenset(options.natt_ports))
        frag = decoder._frag  # fragment expiry runs on every frame's time, ESP frames' too
        feed = decoder.feed
        merger = FlowMerger(
            options.natt_idle_timeout,
            rec.esp.max_flows,
            rec.esp.track,
            replay=lambda rng, base, flows, tail, upto: replay_prefix(path, rng, base, options, flows, tail, upto),
        )
        base = 0
        for r in results:
            for frame, ts, linktype, data, orig_len, tick, esp in r.forwarded:
                if tick > frag.deadline:
                    frag.expire(tick)
                check.expect(base + frame, esp)
                feed(base + frame, ts, linktype, data, orig_len)
            check.end_frame()
            if r.tail_tick > frag.deadline:
                frag.expire(r.tail_tick)
            merger.add(r, base)
            base += r.frames
        decoder.finish()
        if check.mismatch:
            raise Unmergeable(check.mismatch)
        esp = rec.esp
        if esp.flows or esp.overflow or esp.malformed:
            raise Unmergeable("ESP accounted in the main pass (AH-protected ESP)")
        if [id(k) for k in rec.keys if isinstance(k, ChildSaKeys)] != children:
            raise Unmergeable("ESP keys were bound from decrypted IKE during the pass")
        src = rec.report.source
        src.files.append(str(path))
        src.formats.append(results[0].format)
        src.bytes = sum(r.bytes for r in results)
        src.linktypes = set().union(*(r.linktypes for r in results))
        firsts = [r.first_ts for r in results if r.first_ts is not None]
        lasts = [r.last_ts for r in results if r.last_ts is not None]
        src.first_ts = firsts[0] if firsts else None
        src.last_ts = lasts[-1] if lasts else None
        src.frames = base
        if hasattr(decoder, "steps_back"):  # the reader's time-order record, over every frame
            src.steps_back = merge_times(list(results), type(decoder.steps_back))
        src.ipsec_frames = decoder.ipsec_frames + sum(r.pure for r in results)
        src.skipped.update(decoder.skipped)
        for r in results:
            src.skipped.update(r.skipped)
        esp.flows.update(merger.flows)
        esp.malformed.extend(merger.malformed)
        return _finish(rec, checks)
    finally:
        rec.close()
