"""Analysis on a Dask cluster: ``pip install 'ipsecdiag[dask]'``, then
``ipsecdiag analyze --scheduler tcp://host:8786 CAPTURES...`` (or ``--scheduler local`` for a
``LocalCluster`` on this machine).

:class:`DaskMapper` has the shape of :func:`ipsecdiag.parallel.map_in_order`
(``mapper(fn, shared, items, jobs) -> [fn(shared, x) for x in items]``, results in input order,
the first error raised), so the code that maps units of analysis over forked workers maps them
over a cluster the same way. Today the units are whole captures (or runs of files that
continue one another); each report is made by the serial code, so it is the serial report.

Dask workers are not forked from this process: nothing is inherited. What travels to them is
the function, the file paths and the options, never key material: each worker loads the key
*files* itself (:func:`load_store`, cached per process). So the captures and the key files
must be readable by the workers at the same paths (a shared file system, or the same copies on
every machine); paths are made absolute before they leave. The finished reports travel back
over the scheduler's connection: use a ``tls://`` scheduler when that crosses a network you do
not trust, since a report holds what decrypted IKE messages said.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .capture.split import ByteRange
    from .keys.model import KeyStore
    from .reconstruction.merge import RangeResult
    from .reconstruction.model import Report
    from .reconstruction.options import AnalysisOptions

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")

INSTALL_HINT = "--scheduler needs the dask extra: pip install 'ipsecdiag[dask]'"
# A single capture from this size on is cut into byte ranges over the cluster's workers.
SPLIT_MIN_BYTES = 32 * 1024 * 1024
# Seconds to wait for a remote scheduler to answer before giving up with a one-line error.
CONNECT_TIMEOUT = 20


class SchedulerError(Exception):
    """No cluster to run on (dask missing, scheduler unreachable): one line for the user."""


class DaskMapper:
    """``map_in_order`` on a Dask client: one task per item, results gathered in order."""

    def __init__(self, client: object, *, timeout: float | None = None) -> None:
        self.client = client
        self.timeout = timeout  # seconds for the whole map (None: as long as it takes)

    def __call__(self, fn: Callable[[S, T], R], shared: S, items: Sequence[T], jobs: int = 0) -> list[R]:
        if not items:
            return []
        client = self.client
        futures = client.map(partial(fn, shared), list(items), pure=False)  # type: ignore[attr-defined]
        try:
            if self.timeout is not None:
                from distributed import wait

                wait(futures, timeout=self.timeout)  # raises TimeoutError
            return list(client.gather(futures))  # type: ignore[attr-defined]
        finally:
            client.cancel(futures)  # type: ignore[attr-defined]


@contextmanager
def dask_mapper(
    scheduler: str, *, jobs: int | None = None, processes: bool = True, timeout: float | None = None
) -> Iterator[DaskMapper]:
    """A :class:`DaskMapper` on ``scheduler``: ``"local"`` starts a ``LocalCluster`` of ``jobs``
    single-threaded workers (default: the cores) for the duration; anything else is a scheduler
    address (``tcp://host:8786``, ``tls://...``) that must already be running."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SchedulerError(INSTALL_HINT) from None
    if scheduler == "local":
        from .parallel import cores

        with (
            LocalCluster(
                n_workers=jobs or cores(),
                threads_per_worker=1,
                processes=processes,
                **({"host": "127.0.0.1"} if processes else {}),  # this machine only (threads: in-process)
                dashboard_address=":0",  # any free port: never "8787 is in use" on a shared machine
                silence_logs=40,  # logging.ERROR: no worker chatter on the terminal
            ) as cluster,
            Client(cluster) as client,
        ):
            yield DaskMapper(client, timeout=timeout)
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as e:
        raise SchedulerError(f"--scheduler {scheduler}: cannot connect ({e})") from None
    try:
        yield DaskMapper(client, timeout=timeout)
    finally:
        try:
            client.run(forget_keys)  # the workers outlive this command; the keys should not
        finally:
            client.close()


# -- the worker side ------------------------------------------------------------------------
_STORES: dict[tuple[tuple[str, int, int], ...], KeyStore] = {}


def load_store(key_paths: Sequence[str]) -> KeyStore:
    """The key store of these files, loaded in this (worker) process; kept while the files
    stay the same (size and modification time), so a worker loads them once for many tasks."""
    from .keys.load import load_key_sources
    from .keys.model import KeyStore

    if not key_paths:
        return KeyStore()
    ident = tuple((p, *_stamp(p)) for p in key_paths)
    store = _STORES.get(ident)
    if store is None:
        _STORES.clear()
        store = _STORES[ident] = load_key_sources([Path(p) for p in key_paths]).store
    return store


def forget_keys() -> None:
    """Drop the key stores this (worker) process loaded: run on every worker when a command
    is done with the cluster, so that key material does not outlive it there."""
    _STORES.clear()


def _stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


# The command's own unit of work, ``(key store, options), files -> reports``: the CLI passes the
# function its forked workers run (a module-level function: it travels by name).
RunAnalysis = Callable[[tuple["KeyStore", "AnalysisOptions"], list[str]], list["Report"]]


@dataclass(frozen=True)
class RemoteAnalysis:
    """What a task needs besides its unit: key file paths (absolute), the options, and the
    function that analyses a unit."""

    key_paths: tuple[str, ...]
    options: AnalysisOptions
    run: RunAnalysis


def analyze_run(shared: RemoteAnalysis, run: Sequence[str]) -> list[Report]:
    """One unit on a worker: a capture, or a run of files that continue one another, by the
    code a forked worker runs (so the report is the serial one); keys loaded from their files."""
    return shared.run((load_store(shared.key_paths), shared.options), list(run))


@dataclass(frozen=True)
class RemoteScan:
    """A range task's shared part: the capture's absolute path, the options, key file paths."""

    path: str
    options: AnalysisOptions
    key_paths: tuple[str, ...]


def scan_range(shared: RemoteScan, rng: ByteRange) -> RangeResult:
    """One byte range on a worker: what a forked worker of ``parallel.analyze_ranges`` does,
    with the keys loaded here from their files."""
    from .parallel import _RangeJob, _scan

    store = load_store(shared.key_paths)
    return _scan(_RangeJob(shared.path, shared.options, store if store else None), rng)


def analyze_split_on(
    mapper: DaskMapper,
    path: str | Path,
    parts: int,
    key_paths: Sequence[str],
    store: KeyStore | None,
    options: AnalysisOptions,
    run: RunAnalysis,
) -> Report:
    """One capture in byte ranges on the cluster, joined exactly here (``parallel.merge_ranges``,
    the merge ``analyze --jobs`` uses); when the join would not be exact, the whole capture on
    one worker. Either way the serial report."""
    from .capture.split import split_capture
    from .parallel import SPLIT_STATS, merge_ranges, range_min_bytes
    from .reconstruction.merge import Unmergeable

    absolute = os.path.abspath(path)
    ranges = split_capture(path, parts, min_bytes=range_min_bytes())
    if len(ranges) > 1:
        results = mapper(scan_range, RemoteScan(absolute, options, tuple(key_paths)), ranges)
        try:
            report = merge_ranges(path, results, options=options, keys=store)
            SPLIT_STATS.merged += 1
            return report
        except Unmergeable as exc:
            SPLIT_STATS.fallbacks += 1
            SPLIT_STATS.last_reason = str(exc)
    [report] = mapper(analyze_run, RemoteAnalysis(tuple(key_paths), options, run), [[absolute]])[0]
    report.source.files = [str(path) if f == absolute else f for f in report.source.files]
    return report


def cluster_threads(mapper: DaskMapper) -> int:
    """Worker threads in the cluster now (at least 1)."""
    return max(1, sum(mapper.client.nthreads().values()))  # type: ignore[attr-defined]


def analyze_runs(
    scheduler: str,
    runs: Sequence[Sequence[str | Path]],
    key_paths: Sequence[Path] | None,
    options: AnalysisOptions,
    run: RunAnalysis,
    *,
    jobs: int | None = None,
    processes: bool = True,
    split_min_bytes: int = SPLIT_MIN_BYTES,
    store: KeyStore | None = None,
) -> list[Report]:
    """``analyze`` of these runs on the cluster, reports in input order, each the serial one.
    ``store``: the keys as loaded here, for the join of a capture analysed in byte ranges.

    The reports name the files as given on the command line, though the workers read them at
    their absolute paths."""
    shared = RemoteAnalysis(tuple(os.path.abspath(p) for p in key_paths or ()), options, run)
    units = [[os.path.abspath(p) for p in run] for run in runs]
    with dask_mapper(scheduler, jobs=jobs, processes=processes) as mapper:
        if len(runs) == 1 and len(runs[0]) == 1 and _size(runs[0][0]) >= split_min_bytes:
            # One large capture: its byte ranges over the cluster's workers.
            parts = cluster_threads(mapper)
            return [analyze_split_on(mapper, runs[0][0], parts, shared.key_paths, store, options, run)]
        per_run = mapper(analyze_run, shared, units)
    reports: list[Report] = []
    for given, unit, rs in zip(runs, units, per_run, strict=True):
        names = {a: str(p) for a, p in zip(unit, given, strict=True)}
        for r in rs:
            r.source.files = [names.get(f, f) for f in r.source.files]
            r.source.truncated_files = [_rename(t, names) for t in r.source.truncated_files]
            reports.append(r)
    return reports


def _size(path: str | Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _rename(text: str, names: dict[str, str]) -> str:
    for absolute, given in names.items():
        if text.startswith(absolute + ":"):
            return given + text[len(absolute) :]
    return text
