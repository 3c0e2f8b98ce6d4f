"""Frames of a live capture handed from the capture thread to the analysis in batches."""

from __future__ import annotations

import queue
import threading

from .live import STOP_TIMEOUT, LiveBackend, LiveCaptureError
from .model import CaptureError
from .reader import Frame


class FrameFeed:
    """Reads a back end in its own thread and hands the frames over in batches.

    The consumer (the analysis and the dashboard, in the main thread) calls :meth:`get` with
    a timeout, so it can redraw and check its stop conditions while no packet arrives. The
    queue is bounded: when the analysis falls behind, the thread stops reading, the capture
    tool's kernel buffer fills and the kernel drops packets, which the tool counts; memory
    here stays bounded either way (16 batches of at most 2048 frames: ~25 MB of 750-byte
    packets, half a second at 50k packets/s, on top of the pipe's queue and the kernel ring).
    """

    def __init__(self, backend: LiveBackend, *, max_batches: int = 16, batch: int = 2048) -> None:
        self.backend = backend
        self.error: CaptureError | None = None
        self._q: queue.Queue[list[Frame] | None] = queue.Queue(maxsize=max_batches)
        self._batch_max = batch
        self._pending: list[Frame] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-feed", daemon=True)

    def start(self) -> FrameFeed:
        self._thread.start()
        return self

    def _put(self, item: list[Frame] | None) -> None:
        while not self._closed.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _hand_over(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._put(batch)

    def _run(self) -> None:
        try:
            for fr in self.backend.frames(self._hand_over):
                self._pending.append(fr)
                if len(self._pending) >= self._batch_max:
                    self._hand_over()
                if self._closed.is_set():
                    break
            self._hand_over()
        except CaptureError as e:
            self.error = e
        except OSError as e:
            self.error = LiveCaptureError(f"capture read failed: {e.strerror or e}")
        finally:
            self._put(None)

    def get(self, timeout: float) -> list[Frame] | None:
        """The next batch; ``[]`` when nothing came within ``timeout``; ``None`` at the end."""
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return []

    def stop(self) -> None:
        """Ask the capture to end; :meth:`get` returns what was captured, then ``None``."""
        self.backend.stop()

    def close(self) -> None:
        self._closed.set()
        self.backend.close()
        self._thread.join(STOP_TIMEOUT)
