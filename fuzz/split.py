"""The split target: one mutated capture through the serial and the byte-range (``--jobs 2``)
paths, which must agree exactly, and through every renderer.

Per input, with and without the keys beside its seed:

- ``analyze --json`` serial, then ``analyze --jobs 2`` with ``IPSECDIAG_RANGE_BYTES`` drawn from
  600..4000 so that even a small capture is cut into several ranges; the two JSON reports must be
  equal (the merge is exact: any difference is a merge bug, recorded like an escape);
- the terminal report at 80 columns, condensed (the default) or ``--full``, sometimes ``--html``;
- with keys, ``decrypt -o`` serial and ``--jobs 2``: the two output files must be byte-identical.

Every command must also behave as in :mod:`fuzz.pipeline` (exit 0/1/2, one-line errors, no
traceback, no "Aborted.", within the time limit).
"""

from __future__ import annotations

import difflib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from .pipeline import CaptureMutator, pcap_records, run_command
from .seeds import SeedCapture

# Keys of the JSON report that may differ between runs of the same capture (none known today;
# kept in one place so that a timing field added later is not mistaken for a merge bug).
TIMING_KEYS = frozenset({"elapsed", "elapsed_s", "seconds_taken", "generated_at", "analysis_seconds"})


@dataclass
class SplitMutator:
    """:class:`CaptureMutator`, plus (one input in three) whole pcap records moved, duplicated or
    dropped: out-of-order and retransmitted traffic for the time-order accounting, IKEv1 deferred
    decryption and the half-open ledger, with records that now straddle the range cuts."""

    rng: random.Random
    inner: CaptureMutator

    def mutate(self, seed: SeedCapture) -> bytes:
        parsed = pcap_records(seed.data) if self.rng.random() < 0.33 else None
        if not parsed or len(parsed[1]) < 2:
            return self.inner.mutate(seed)
        data, recs = seed.data, parsed[1]
        chunks = [data[off - 16 : off + n] for off, n in recs]
        for _ in range(self.rng.randint(1, 3)):
            i, j = self.rng.randrange(len(chunks)), self.rng.randrange(len(chunks))
            op = self.rng.random()
            if op < 0.5:
                chunks[i], chunks[j] = chunks[j], chunks[i]  # out of order (timestamps go back)
            elif op < 0.8:
                chunks.insert(j, chunks[i])  # a duplicate (a retransmission or a capture loop)
            elif len(chunks) > 1:
                del chunks[i]  # a lost packet
        return data[:24] + b"".join(chunks)


@dataclass
class Problem:
    kind: str  # "escape" or "split-differs"
    command: str
    text: str


def _strip_timing(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _strip_timing(v) for k, v in doc.items() if k not in TIMING_KEYS}
    if isinstance(doc, list):
        return [_strip_timing(v) for v in doc]
    return doc


def json_difference(a: Path, b: Path) -> str | None:
    """A unified diff of two JSON reports without timing fields, or None when they agree."""
    if not a.exists() or not b.exists():
        return None if a.exists() == b.exists() else f"only one report written: serial {a.exists()}, split {b.exists()}"
    da, db = (json.dumps(_strip_timing(json.loads(p.read_text())), indent=1, sort_keys=True) for p in (a, b))
    if da == db:
        return None
    diff = difflib.unified_diff(da.splitlines(), db.splitlines(), "serial", "split", lineterm="", n=2)
    return "\n".join(list(diff)[:80])


def run_split(cap: Path, keys: list[Path], work: Path, rng: random.Random, time_limit: float) -> list[Problem]:
    """All the serial/split/renderer runs of one input; the problems found (empty when fine)."""
    problems: list[Problem] = []
    key_args = [a for k in keys for a in ("--keys", str(k))]
    # Within 600..4000, but small enough that the capture is cut in two or more where it can be.
    range_bytes = str(rng.randint(600, min(4000, max(600, cap.stat().st_size // 2))))
    env80 = {"COLUMNS": "80", "LINES": "50", "IPSECDIAG_RANGE_BYTES": range_bytes, "TERM": "dumb"}

    def run(label: str, args: list[str]) -> int | None:
        res = run_command(args, time_limit, env=env80)
        if res.escape is not None:
            problems.append(Problem("escape", f"{label} (IPSECDIAG_RANGE_BYTES={range_bytes})", res.escape))
        return res.exit_code

    serial, split = work / "serial.json", work / "split.json"
    for p in (serial, split):
        p.unlink(missing_ok=True)
    view = rng.choice((["--no-pager"], ["--no-pager", "--full"], ["--no-pager", "--brief"]))
    # --html changes the analysis (ESP flows keep a histogram for its plots): both runs or neither.
    html = rng.random() < 0.3
    base = ["analyze", str(cap), "--fail-on", "never", *key_args]
    c1 = run("analyze serial", [*base, "--json", str(serial), *view, *(["--html", str(work / "s.html")] * html)])
    c2 = run("analyze --jobs 2", [*base, "--json", str(split), "--jobs", "2", *view, *(["--html", str(work / "j.html")] * html)])
    if c1 is not None and c2 is not None:
        if c1 != c2:
            problems.append(Problem("split-differs", "analyze", f"exit status serial {c1}, split {c2}"))
        else:
            diff = json_difference(serial, split)
            if diff is not None:
                problems.append(
                    Problem("split-differs", f"analyze html={html} keys={bool(keys)} IPSECDIAG_RANGE_BYTES={range_bytes}", diff)
                )
    if keys:
        suffix = rng.choice((".pcap", ".pcapng"))
        o1, o2 = work / f"dec-serial{suffix}", work / f"dec-split{suffix}"
        for p in (o1, o2):
            p.unlink(missing_ok=True)
        dec = ["decrypt", str(cap), *key_args, "--keep-undecrypted"]
        d1 = run("decrypt serial", [*dec, "-o", str(o1)])
        d2 = run("decrypt --jobs 2", [*dec, "-o", str(o2), "--jobs", "2"])
        if d1 is not None and d2 is not None:
            same = (o1.exists(), o2.exists()) == (False, False) or (
                o1.exists() and o2.exists() and o1.read_bytes() == o2.read_bytes()
            )
            if d1 != d2 or not same:
                sizes = [p.stat().st_size if p.exists() else None for p in (o1, o2)]
                problems.append(
                    Problem(
                        "split-differs",
                        f"decrypt {suffix} IPSECDIAG_RANGE_BYTES={range_bytes}",
                        f"exit {d1} vs {d2}, sizes {sizes}",
                    )
                )
    return problems
