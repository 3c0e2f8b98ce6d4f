"""A process pool for units of analysis that do not depend on one another.

Today the units are whole captures (or runs of files that continue one another): each is
analysed by exactly the code a single process runs, so the reports are the serial ones by
construction and come back in the order the units were given. Splitting one capture into
byte ranges (capture/split.py) needs an exact merge of partial reports first (issue 12).

Workers are forked: what they share (the key store, the options) is inherited, never
pickled, so key material does not cross a pipe; only the finished reports do.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")

# Below this many bytes of input in all, a second process costs more than it saves
# (a forked worker plus pickling the reports back: ~50 ms).
AUTO_MIN_BYTES = 32 * 1024 * 1024


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_jobs(units: int, total_bytes: int) -> int:
    """The default ``--jobs``: the cores for enough work, 1 for small inputs or one unit."""
    if units < 2 or total_bytes < AUTO_MIN_BYTES:
        return 1
    return max(1, min(cores(), units))


class _Call(Generic[S, T, R]):
    """The worker side: ``fn(shared, item)`` with ``shared`` inherited at fork."""

    shared: object = None

    def __init__(self, fn: Callable[[S, T], R]) -> None:
        self.fn = fn

    def __call__(self, item: T) -> R:
        return self.fn(_Call.shared, item)  # type: ignore[arg-type]


def _install(shared: object) -> None:
    _Call.shared = shared


def map_in_order(fn: Callable[[S, T], R], shared: S, items: Sequence[T], jobs: int) -> list[R]:
    """``[fn(shared, x) for x in items]``, in up to ``jobs`` processes, results in order.

    An exception in a worker is raised here, as in the serial loop (the first in order).
    Without fork (not Linux/BSD) the loop runs in this process.
    """
    jobs = min(jobs, len(items))
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [fn(shared, x) for x in items]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_install, initargs=(shared,)) as pool:
        futures = [pool.submit(_Call(fn), x) for x in items]
        return [f.result() for f in futures]
