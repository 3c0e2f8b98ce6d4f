"""The campaign driver: seeds, mutation loop or atheris, escape records, figures.

Escapes are written to ``<crash-dir>/<target>/<sha1>.bin`` (the input) and ``.txt`` (what
happened and how to reproduce it); a summary line of JSON goes to stdout at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .mutate import Mutator
from .pipeline import CaptureMutator, run_analyze, run_decrypt
from .seeds import REPO, gzip_variant, ike_messages, load_seed_captures
from .split import SplitMutator, run_split
from .targets import TARGETS

CRASH_DIR = REPO / "fuzz" / "crashes"


@dataclass
class Figures:
    target: str
    engine: str = "plain"
    inputs: int = 0
    runs: int = 0
    seconds: float = 0.0
    escapes: int = 0
    unique: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.inputs / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        d = asdict(self)
        d["per_second"] = round(self.per_second, 1)
        d["seconds"] = round(self.seconds, 1)
        return json.dumps(d)


def signature(text: str) -> str:
    """Exception type and the innermost ipsecdiag frame: one line per distinct bug."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("SplitDiffers"):  # a serial/split difference, not a traceback
        return " ".join(w for w in lines[0].split() if not w.startswith("IPSECDIAG_RANGE_BYTES"))
    where = [ln for ln in lines if ln.startswith("File ") and "ipsecdiag" in ln]
    last = lines[-1] if lines else "?"
    return f"{last.split(':')[0][:80]} @ {where[-1] if where else '?'}"


def record(crash_dir: Path, target: str, data: bytes, what: str, context: str) -> str:
    d = crash_dir / target
    d.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:20]
    (d / f"{name}.bin").write_bytes(data)
    # The same input may escape in several commands (serial and split): keep every account.
    with (d / f"{name}.txt").open("a") as f:
        f.write(f"{context}\n\n{what}\n\n")
    return signature(what)


def codec_seeds(target: str, include_corpus: bool) -> list[bytes]:
    caps = load_seed_captures(include_corpus)
    if target in ("ikev2", "ikev1", "sk_inner"):
        v2, v1 = ike_messages(caps)
        if target == "ikev2":
            return v2
        if target == "ikev1":
            return v1
        # Payload chains as they appear after decryption: first type byte, then the chain.
        return [bytes([m[16]]) + m[28:] for m in v2] + [bytes([m[16]]) + m[28:] for m in v1]
    if target == "capture":
        small = [c.data for c in caps if len(c.data) <= 64 * 1024]
        return small + [gzip_variant(d) for d in small[:10]]
    seeds = []
    for c in caps:
        for k in c.key_files:
            if k.is_file():
                seeds.append(k.read_bytes()[:65536])
    return list(dict.fromkeys(seeds)) or [b"# empty\n"]


def _until(args: argparse.Namespace) -> Callable[[int, float], bool]:
    def more(n: int, start: float) -> bool:
        if args.inputs is not None and n >= args.inputs:
            return False
        return args.seconds is None or time.monotonic() - start < args.seconds

    return more


def fuzz_codec(target: str, args: argparse.Namespace) -> Figures:
    fn = TARGETS[target]
    seeds = codec_seeds(target, not args.no_corpus) or [b"\x00" * 28]
    rng = random.Random(f"{args.seed}:{target}")
    mut = Mutator(rng, seeds)
    fig = Figures(target)
    unique: set[str] = set()
    more = _until(args)
    start = time.monotonic()
    last = start
    while more(fig.inputs, start):
        data = mut.mutate(rng.choice(seeds))
        fig.inputs += 1
        try:
            fn(data)
        except Exception:  # noqa: BLE001 - anything but the parser's own error type is an escape
            fig.escapes += 1
            what = traceback.format_exc()
            unique.add(record(args.crash_dir, target, data, what, f"target {target}, seed {args.seed}"))
        now = time.monotonic()
        if now - last >= args.progress:
            last = now
            print(f"[{target}] {fig.inputs} inputs, {fig.inputs / (now - start):.0f}/s, {fig.escapes} escapes", file=sys.stderr)
    fig.seconds = time.monotonic() - start
    fig.runs = fig.inputs
    fig.unique = sorted(unique)
    return fig


def fuzz_pipeline(args: argparse.Namespace) -> Figures:
    seeds = load_seed_captures(not args.no_corpus)
    rng = random.Random(f"{args.seed}:pipeline")
    cm: CaptureMutator | SplitMutator = CaptureMutator(rng, Mutator(rng, [s.data for s in seeds]))
    if args.mode == "split":
        cm = SplitMutator(rng, cm)
    fig = Figures(args.mode)
    unique: set[str] = set()
    more = _until(args)
    start = time.monotonic()
    last = start
    with tempfile.TemporaryDirectory(prefix="ipsecdiag-fuzz-", dir=args.workdir) as tmp:
        work = Path(tmp)
        cap, out = work / "input.pcap", work / "report.json"
        # Small captures are picked more often: they cost less per run and their damage is
        # as likely to reach a new path as that in a large one.
        weights = [1 / max(1024, len(s.data)) ** 0.5 for s in seeds]
        while more(fig.inputs, start):
            seed = rng.choices(seeds, weights)[0]
            data = cm.mutate(seed)
            cap.write_bytes(data)
            fig.inputs += 1
            runs: list[tuple[str, list[Path]]] = [("analyze", [])]
            if seed.key_files:
                runs.append(("analyze", seed.key_files))
                # decrypt -o shares the pass; once in four keyed inputs covers its writers.
                if rng.random() < 0.25:
                    runs.append(("decrypt", seed.key_files))
            if args.mode == "split":
                for keys in ([], seed.key_files) if seed.key_files else ([],):
                    fig.runs += 1
                    for prob in run_split(cap, keys, work, rng, args.time_limit):
                        fig.escapes += 1
                        ctx = (
                            f"split ({prob.kind}: {prob.command}), seed capture {seed.path}, "
                            f"keys {[str(k) for k in keys]}, campaign seed {args.seed}"
                        )
                        what = prob.text if prob.kind == "escape" else f"SplitDiffers: {prob.command}\n{prob.text}"
                        unique.add(record(args.crash_dir, "split", data, what, ctx))
                runs = []
            for command, keys in runs:
                fig.runs += 1
                if command == "analyze":
                    res = run_analyze(cap, keys, out, args.time_limit)
                else:
                    res = run_decrypt(cap, keys, work / rng.choice(("plain.pcap", "plain.pcapng")), args.time_limit)
                if res.escape is not None:
                    fig.escapes += 1
                    ctx = (
                        f"pipeline ({command}), seed capture {seed.path}, keys {[str(k) for k in keys]}, "
                        f"campaign seed {args.seed}"
                    )
                    unique.add(record(args.crash_dir, "pipeline", data, res.escape, ctx))
            now = time.monotonic()
            if now - last >= args.progress:
                last = now
                print(
                    f"[{args.mode}] {fig.inputs} captures ({fig.runs} runs), {fig.inputs / (now - start):.1f}/s, "
                    f"{fig.escapes} escapes, {len(unique)} distinct",
                    file=sys.stderr,
                )
    fig.seconds = time.monotonic() - start
    fig.unique = sorted(unique)
    return fig


def fuzz_atheris(target: str, args: argparse.Namespace) -> None:
    """Coverage-guided fuzzing of one codec target with atheris (libFuzzer); never returns."""
    import atheris  # type: ignore[import-not-found]

    fn = TARGETS[target]
    corpus = args.crash_dir.parent / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    for s in codec_seeds(target, not args.no_corpus)[:2000]:
        (corpus / hashlib.sha1(s).hexdigest()[:20]).write_bytes(s)
    atheris.instrument_all()
    argv = [sys.argv[0], str(corpus), f"-artifact_prefix={args.crash_dir / target}/", *args.libfuzzer_args]
    (args.crash_dir / target).mkdir(parents=True, exist_ok=True)
    atheris.Setup(argv, fn)
    atheris.Fuzz()


def _engine(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import atheris  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return "plain"
    return "atheris"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz", description="Fuzz ipsecdiag's parsers and pipeline.")
    p.add_argument("mode", choices=("codec", "pipeline", "split"))
    p.add_argument("--targets", default=",".join(TARGETS), help="codec targets, comma-separated")
    p.add_argument("--inputs", type=int, help="stop after this many inputs (per target)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (per target)")
    p.add_argument("--seed", default="0", help="campaign seed: the same seed replays the same inputs")
    p.add_argument("--engine", choices=("auto", "plain", "atheris"), default="plain")
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per pipeline input")
    p.add_argument("--crash-dir", type=Path, default=CRASH_DIR)
    p.add_argument("--workdir", default=None, help="where the mutated capture is written (tmpfs is faster)")
    p.add_argument("--no-corpus", action="store_true", help="bundled captures only, not ../shared/corpus")
    p.add_argument("--progress", type=float, default=60.0, help="seconds between progress lines")
    p.epilog = "With --engine atheris, options after -- go to libFuzzer (e.g. -- -max_total_time=3600)."
    args, extra = p.parse_known_args(argv)
    args.libfuzzer_args = [a for a in extra if a != "--"]
    if args.libfuzzer_args and args.engine != "atheris":
        p.error(f"unrecognized arguments: {' '.join(args.libfuzzer_args)}")
    if args.inputs is None and args.seconds is None and (args.mode in ("pipeline", "split") or _engine(args.engine) != "atheris"):
        p.error("give --inputs or --seconds")
    if args.mode in ("pipeline", "split"):
        print(fuzz_pipeline(args).line())
        return 0
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        p.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    if _engine(args.engine) == "atheris":
        if args.mode != "codec" or len(targets) != 1:
            p.error("atheris fuzzes one target per process: give --targets NAME")
        fuzz_atheris(targets[0], args)
    for t in targets:
        print(fuzz_codec(t, args).line(), flush=True)
    return 0
