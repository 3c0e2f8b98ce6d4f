"""ESP decryption fanned out to worker processes, for large captures.

The main process keeps the single streaming pass (reader, decoder, flow accounting, IKE) and
ships ESP packets that have keys to workers in batches; the workers decrypt and send back, per
packet, the status, next header, inner-protocol code and (when a plaintext sink wants it) the
inner packet. Batches are applied in the order they were sent, so counters, the plaintext
output and nested ESP come out exactly as the in-process :class:`EspDecryptHook` gives them.

Every SA's packets go to the same worker in capture order, so each worker's
:class:`EspDecryptor` keeps the per-SA state (ESN high-bit inference, ESN mode) it would have
in process. Memory stays bounded: one batch per worker is in flight while the next one fills.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from ..capture.writer import RecordEncoder
from ..esp.sa import EspDecryptor
from ..keys.model import ChildSaKeys
from ..reconstruction.esp_tracker import FlowState
from ..reconstruction.inner import inner_code
from .esp import (
    NO_KEY,
    NO_KEY_STATUS,
    FailSink,
    NestingHook,
    PlainSink,
    count_failure,
    flow_keys,
    ip_packet,
    trim_tfc,
)

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from ..crypto.espcrypto import EspTransform
    from ..keys.model import KeyStore
    from ..reconstruction.esp_tracker import EspTracker

BATCH = 2048
# Below this many bytes of capture the worker start-up costs more than it saves.
MIN_CAPTURE_BYTES = 64 * 1024 * 1024


def _worker(conn: Connection, want_plain: bool, encoder: RecordEncoder | None) -> None:
    """Worker loop: flow registrations and packet batches in, results out.

    With an ``encoder`` the worker also builds the output records of the decrypted packets
    and returns them as one blob with per-packet end offsets, so the main process writes a
    batch with one call instead of one per packet.
    """
    decs: dict[int, tuple[EspDecryptor, bytes, bytes]] = {}
    while True:
        msg = conn.recv()
        if msg is None:
            break
        new_keys, packets = msg
        for fid, keys, src, dst in new_keys:
            decs[fid] = (EspDecryptor(keys), src, dst)
        out = []
        parts: list[bytes] = []
        ends: list[int] = []
        size = 0
        for fid, pkt, ts in packets:
            dec, src, dst = decs[fid]
            status, nh, payload, _hi = dec.decrypt(pkt, 0, len(pkt))
            if payload is not None:
                code = inner_code(nh, payload)
                carrier = code == 0x432 or code == 0x2932
                if encoder is not None:
                    if nh != 59:
                        rec = encoder.encode(
                            ts,
                            trim_tfc(nh, payload)
                            if nh == 4 or nh == 41
                            else ip_packet(src, dst, nh, payload),
                        )
                        parts.append(rec)
                        size += len(rec)
                    out.append((0, nh, code, payload if carrier else None))
                elif want_plain:
                    out.append((0, nh, code, trim_tfc(nh, payload)))
                else:
                    out.append((0, nh, code, payload if carrier else None))
            else:
                out.append((int(status), -1, 0, None))
            ends.append(size)
        conn.send((out, b"".join(parts), ends if encoder is not None else None))
    conn.close()


class RemoteSa:
    """FlowState.decryptor of a flow decrypted by a worker (``transform`` as an EspDecryptor's)."""

    __slots__ = ("fid", "transform", "worker")

    def __init__(self, fid: int, worker: int, transform: EspTransform | None) -> None:
        self.fid = fid
        self.worker = worker
        self.transform = transform


class PooledEspDecryptHook(NestingHook):
    """Drop-in for :class:`EspDecryptHook` (same sinks); call :meth:`finish` at the end."""

    def __init__(
        self,
        tracker: EspTracker,
        keys: KeyStore,
        plain: PlainSink | None = None,
        fail: FailSink | None = None,
        workers: int = 1,
        encoder: RecordEncoder | None = None,
        raw_out: Callable[[bytes], None] | None = None,
    ) -> None:
        """With ``encoder`` and ``raw_out`` the workers build the decrypted output records and
        ``raw_out`` receives them (in capture order) instead of ``plain`` per packet."""
        self.tracker = tracker
        self.keys = keys
        self.plain = plain
        self.fail = fail
        ctx = mp.get_context("fork")
        self._conns: list[Connection] = []
        self._procs: list[BaseProcess] = []
        for _ in range(max(1, workers)):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, plain is not None, encoder), daemon=True)
            p.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(p)
        self._fids: dict[int, tuple[int, int]] = {}  # id(flow) -> (flow id, worker)
        self._new: list[list[tuple[int, ChildSaKeys, bytes, bytes]]] = [[] for _ in self._conns]
        self._batch: list[list[tuple[int, bytes, float]]] = [[] for _ in self._conns]
        self._raw_out = raw_out if encoder is not None else None
        self._meta: list[list[tuple[FlowState, int, float]]] = [[] for _ in self._conns]
        self._pending: deque[tuple[int, list[tuple[FlowState, int, float]]]] = deque()
        self._depth = 0
        self._next_worker = 0
        from .esp import EspDecryptHook

        self._inline = EspDecryptHook(tracker, keys, plain=plain, fail=fail)

    # -- hot path --------------------------------------------------------------------------
    def __call__(self, f: FlowState, frame: int, ts: float, data: bytes, off: int, end: int) -> None:
        if self._depth:
            # Nested ESP found while applying results: decrypt it here and now, so the output
            # keeps the in-process order (inner packet right after its carrier).
            self._inline(f, frame, ts, data, off, end)
            return
        dec = f.decryptor
        if dec is None:
            dec = f.decryptor = self._register(f)
        if dec is NO_KEY:
            if self.fail is not None:
                self.fail(frame, ts, f, NO_KEY_STATUS)
            return
        w = dec.worker
        batch = self._batch[w]
        batch.append((dec.fid, data[off:end], ts))
        self._meta[w].append((f, frame, ts))
        if len(batch) >= BATCH:
            self._send(w)

    def _register(self, f: FlowState) -> RemoteSa | bool:
        k = flow_keys(self.keys, f)
        if k is None:
            return NO_KEY
        probe = EspDecryptor(k)  # to report unusable keys the same way the in-process path does
        if probe.problem:
            f.decrypt_problem = probe.problem
        fid = len(self._fids)
        w = self._next_worker
        self._next_worker = (w + 1) % len(self._conns)
        self._fids[id(f)] = (fid, w)
        self._new[w].append((fid, k, f.src, f.dst))
        return RemoteSa(fid, w, probe.transform)

    def _send(self, w: int) -> None:
        # One batch per worker in flight: a worker writing results while we write its next
        # batch would fill both pipes and deadlock. Results are applied in send order.
        while any(pw == w for pw, _ in self._pending):
            self._apply_one()
        self._conns[w].send((self._new[w], self._batch[w]))
        self._pending.append((w, self._meta[w]))
        self._new[w] = []
        self._batch[w] = []
        self._meta[w] = []

    # -- results ---------------------------------------------------------------------------
    def _apply_one(self) -> None:
        w, meta = self._pending.popleft()
        results, blob, ends = self._conns[w].recv()
        plain, fail, raw_out = self.plain, self.fail, self._raw_out
        written = 0
        for i, ((f, frame, ts), (status, nh, code, payload)) in enumerate(zip(meta, results, strict=True)):
            if status == 0:
                f.decrypted += 1
                inner = f.inner
                inner[code] = inner.get(code, 0) + 1
                if payload is None:
                    continue
                if raw_out is not None:
                    if ends[i] > written:  # this packet's record and those before it
                        raw_out(blob[written : ends[i]])
                        written = ends[i]
                elif plain is not None and nh != 59:
                    plain(frame, ts, f, nh, payload)  # TFC padding already cut by the worker
                if (code == 0x432 or code == 0x2932) and self._depth < self.MAX_NESTING:
                    self._feed_nested(frame, ts, nh, payload)
                continue
            count_failure(f, status, frame, ts)
            if fail is not None:
                fail(frame, ts, f, status)
        if raw_out is not None and written < len(blob):
            raw_out(blob[written:])

    def finish(self) -> None:
        """Flush partial batches, apply every outstanding result, stop the workers. Nested ESP
        found while draining may queue more batches: loop until nothing is left."""
        try:
            while True:
                for w in range(len(self._conns)):
                    if self._batch[w]:
                        self._send(w)
                if not self._pending:
                    break
                while self._pending:
                    self._apply_one()
        finally:
            self.close()

    def close(self) -> None:
        for c in self._conns:
            try:
                c.send(None)
                c.close()
            except OSError:
                pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._conns = []
        self._procs = []


def use_pool(capture_bytes: int) -> int:
    """How many decryption workers to start for a capture of this size (0: decrypt in process)."""
    cpus = mp.cpu_count() or 1
    if cpus < 2 or capture_bytes < MIN_CAPTURE_BYTES:
        return 0
    return min(cpus - 1, 3)


Finisher = Callable[[], None]
