"""The whole-pipeline target: a mutated capture through ``ipsecdiag analyze``, in process.

Each input runs the real command (typer app, same code path as the console script) once without
keys and once with the key files found beside its seed capture, writing the JSON report and
rendering the terminal report, so the reader, decoder, reconstruction, decryption, checks and
both renderers all see it. An escape is anything the command does not turn into exit status
0, 1 or 2: an exception, a traceback or click's "Aborted." in the output, or an input that
runs past the per-input time limit.

Mutations are structure-aware two times out of three: one record of a classic pcap is mutated
and the record header rewritten to match, so the damage lands in IKE/ESP rather than in the
file format; the rest mutate the raw file, gzip it (sometimes cut short) or set record
timestamps to extreme values.
"""

from __future__ import annotations

import gzip
import random
import signal
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import typer.main
import typer.testing
from typer.testing import CliRunner

from ipsecdiag.cli import app

from .mutate import Mutator
from .seeds import SeedCapture

_runner = CliRunner()
# typer's CliRunner rebuilds the click command from the app on every invoke (about 15 ms, a
# quarter of a small input's run); the fuzzer builds it once. Only this process is affected.
_command = typer.main.get_command(app)
if hasattr(typer.testing, "_get_command"):
    typer.testing._get_command = lambda a: _command if a is app else typer.main.get_command(a)  # type: ignore[attr-defined]
_PCAP_ORDER = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}


class InputTimeout(Exception):
    """The input ran past its time limit (recorded as an escape: a hang or quadratic path)."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`InputTimeout` in the main thread after ``seconds`` (SIGALRM)."""

    def fire(signum: int, frame: FrameType | None) -> None:
        raise InputTimeout(f"over {seconds:g} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def pcap_records(data: bytes) -> tuple[str, list[tuple[int, int]]] | None:
    """Byte order and (offset, length) of each record's data in a classic pcap, or None."""
    order = _PCAP_ORDER.get(data[:4])
    if order is None or len(data) < 24:
        return None
    recs = []
    pos = 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from(order + "I", data, pos + 8)[0]
        if pos + 16 + incl > len(data):
            break
        recs.append((pos + 16, incl))
        pos += 16 + incl
    return order, recs


def pcapng_epb_timestamps(data: bytes) -> list[int]:
    """Offsets of the timestamp words of each Enhanced Packet Block (little-endian files)."""
    out = []
    pos = 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if blen < 12 or pos + blen > len(data):
            break
        if btype == 6 and blen >= 32:
            out.append(pos + 12)
        pos += blen
    return out


@dataclass
class CaptureMutator:
    rng: random.Random
    mutator: Mutator

    def mutate(self, seed: SeedCapture) -> bytes:
        data = seed.data
        roll = self.rng.random()
        parsed = pcap_records(data) if roll < 0.67 else None
        if parsed and parsed[1]:
            return self._record(data, *parsed)
        if roll < 0.85:
            return self.mutator.mutate(data, max_edits=2)
        if roll < 0.93:
            gz = gzip.compress(self.mutator.mutate(data, max_edits=1), compresslevel=1, mtime=0)
            return gz[: self.rng.randint(2, len(gz))] if self.rng.random() < 0.5 else gz
        return self._timestamps(data)

    def _record(self, data: bytes, order: str, recs: list[tuple[int, int]]) -> bytes:
        off, n = self.rng.choice(recs)
        body = self.mutator.mutate(data[off : off + n])
        hdr = bytearray(data[off - 16 : off])
        struct.pack_into(order + "II", hdr, 8, len(body), len(body))
        return data[: off - 16] + bytes(hdr) + body + data[off + n :]

    def _timestamps(self, data: bytes) -> bytes:
        """Extreme record timestamps: both 32-bit words of a pcap record or pcapng EPB."""
        parsed = pcap_records(data)
        if parsed and parsed[1]:
            order, recs = parsed
            spots = [(order, off - 16) for off, _n in recs]
        else:
            spots = [("<", off) for off in pcapng_epb_timestamps(data)]
        if not spots:
            return self.mutator.mutate(data, max_edits=1)
        out = bytearray(data)
        words = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
        for order, off in self.rng.sample(spots, min(len(spots), self.rng.randint(1, 3))):
            hi = self.rng.choice((*words, self.rng.randrange(1 << 32)))
            lo = self.rng.choice((*words, 999_999, self.rng.randrange(1 << 32)))
            struct.pack_into(order + "II", out, off, hi, lo)
        return bytes(out)


@dataclass
class Outcome:
    exit_code: int | None
    escape: str | None  # None when the command behaved (exit 0/1/2, one-line errors)


def run_analyze(capture: Path, key_files: list[Path], json_out: Path, time_limit: float) -> Outcome:
    """Run ``ipsecdiag analyze`` on ``capture`` in process and judge the outcome."""
    args = ["analyze", str(capture), "--json", str(json_out), "--fail-on", "never"]
    for k in key_files:
        args += ["--keys", str(k)]
    return run_command(args, time_limit)


def run_decrypt(capture: Path, key_files: list[Path], out: Path, time_limit: float) -> Outcome:
    """Run ``ipsecdiag decrypt`` (pcap or pcapng output, by ``out``'s suffix) in process."""
    args = ["decrypt", str(capture), "-o", str(out), "--keep-undecrypted"]
    for k in key_files:
        args += ["--keys", str(k)]
    return run_command(args, time_limit)


def run_command(args: list[str], time_limit: float, env: dict[str, str] | None = None) -> Outcome:
    """Run one ipsecdiag command in process (``env`` set for its duration); an escape is anything
    but exit 0/1/2 done right."""
    try:
        with deadline(time_limit):
            res = _runner.invoke(app, args, catch_exceptions=True, env=env)
    except InputTimeout as e:
        return Outcome(None, f"InputTimeout: {e}")
    exc = res.exception
    if isinstance(exc, InputTimeout):
        return Outcome(None, f"InputTimeout: {exc}")
    if exc is not None and not isinstance(exc, SystemExit):
        import traceback

        return Outcome(res.exit_code, "".join(traceback.format_exception(exc)))
    text = res.stdout + res.stderr
    if res.exit_code not in (0, 1, 2):
        return Outcome(res.exit_code, f"exit status {res.exit_code}:\n{text[-2000:]}")
    if "Traceback" in text or "Aborted" in text:
        return Outcome(res.exit_code, f"traceback or Aborted in output:\n{text[-2000:]}")
    errors = [ln for ln in res.stderr.splitlines() if ln.strip()]
    if res.exit_code == 2 and len(errors) != 1:
        return Outcome(2, f"exit 2 without a one-line error:\n{res.stderr[-2000:]}")
    return Outcome(res.exit_code, None)
