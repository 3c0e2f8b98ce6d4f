"""The progress bar on stderr for a long analysis or decryption.

It appears only when stderr is a terminal and the run has taken more than about a second
(``IPSECDIAG_PROGRESS_AFTER`` seconds, default 1): a short run prints nothing, and output
redirected to a file or a pipe never holds control characters. It is transient: once the
run ends the line is erased and the report starts on a clean screen.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

DEFAULT_AFTER = 1.0


def _after() -> float:
    try:
        v = float(os.environ.get("IPSECDIAG_PROGRESS_AFTER", DEFAULT_AFTER))
    except ValueError:
        return DEFAULT_AFTER
    return v if math.isfinite(v) and v >= 0 else DEFAULT_AFTER


class DelayedProgress:
    """A byte-driven bar that starts on the first update after ``after`` seconds.

    Use as a context manager; pass :meth:`update` as the analysis ``progress`` callback
    (``update(bytes_done, bytes_total)``).
    """

    def __init__(self, name: str, *, after: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.after = _after() if after is None else after
        self._clock = clock
        self._start = clock()
        self._prog: Progress | None = None
        self._task: TaskID | None = None

    @property
    def shown(self) -> bool:
        return self._prog is not None

    def update(self, done: int, total: int) -> None:
        if self._prog is None:
            if self._clock() - self._start < self.after:
                return
            self._show(total)
        assert self._prog is not None and self._task is not None
        self._prog.update(self._task, completed=done, total=total or None)

    def _show(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        self._prog = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True, highlight=False),
            transient=True,
        )
        self._task = self._prog.add_task(self.name, total=total or None)
        self._prog.start()

    def close(self) -> None:
        if self._prog is not None:
            self._prog.stop()

    def __enter__(self) -> DelayedProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def progress_for(path: str | os.PathLike[str], *, enabled: bool = True) -> DelayedProgress | None:
    """A delayed bar for reading ``path``, or None when stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    return DelayedProgress(os.path.basename(path))
