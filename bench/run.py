#!/usr/bin/env python3
"""Benchmark ipsecdiag against tshark on the same generated ESP captures, in the same run.

Usage:
    python bench/run.py                      # 200k and 1M packets, inventory + decryption
    python bench/run.py --counts 200000 --only inventory
    python bench/run.py --repeat 3           # median of 3 runs per command

For every capture size it times, as whole processes (start-up included):
  inventory:  ``ipsecdiag analyze F --json /dev/null``  vs  ``tshark -r F -q -z conv,ip``
  small:      the bundled samples (sample_pcaps/*.pcap), one process each: start-up dominates
  decryption: ``ipsecdiag analyze F --keys esp_sa --json /dev/null`` and
              ``ipsecdiag decrypt F --keys esp_sa -o out.pcap``
              vs  tshark with ESP decryption (esp_sa UAT, ``-q -z conv,ip``)
and reports wall seconds, peak RSS (ru_maxrss of the child) and the ratio ours/tshark.
Captures are generated with the project's own writer (bench/gen_esp.py) into bench/out/.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))


def run_timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in KiB, exit status of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    return wall, usage.ru_maxrss, proc.returncode


def median_run(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> tuple[float, int]:
    walls, rss = [], []
    for _ in range(repeat):
        w, r, _ = run_timed(cmd, env)
        walls.append(w)
        rss.append(r)
    return statistics.median(walls), max(rss)


def ensure_capture(count: int, cipher: str) -> tuple[Path, Path | None]:
    from gen_esp import generate  # bench/gen_esp.py

    out = HERE / "out"
    out.mkdir(exist_ok=True)
    pcap = out / f"esp-{cipher}-{count}.pcap"
    keys = out / f"esp-{cipher}-{count}.esp_sa" if cipher != "none" else None
    if not pcap.exists() or (keys is not None and not keys.exists()):
        t0 = time.perf_counter()
        generate(str(pcap), count, cipher=cipher, keys_out=str(keys) if keys else None)
        print(
            f"  generated {pcap.name} in {time.perf_counter() - t0:.1f}s ({pcap.stat().st_size / 1e6:.0f} MB)"
        )
    return pcap, keys


def tshark_env_with_esp_sa(keys: Path) -> tuple[dict[str, str], str]:
    d = tempfile.mkdtemp(prefix="ipsecdiag-bench-ws-")
    shutil.copy(keys, Path(d) / "esp_sa")
    (Path(d) / "preferences").write_text(
        "esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n"
    )
    env = dict(os.environ, WIRESHARK_CONFIG_DIR=d)
    return env, d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--only", choices=["inventory", "decryption", "small"], default=None)
    ap.add_argument(
        "--args", dest="extra", default="", help="extra arguments for every ipsecdiag run, e.g. '--jobs 1'"
    )
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--ciphers", nargs="+", default=["aes-gcm-128", "aes-cbc-sha256"])
    ap.add_argument("--json", dest="json_out", default=None, help="also write the results as JSON")
    args = ap.parse_args()

    ipsecdiag = [sys.executable, "-m", "ipsecdiag"]
    # Time the package as installed, with its bytecode compiled: an editable checkout whose .pyc
    # files are stale (after a checkout, or under PYTHONDONTWRITEBYTECODE) compiles every module
    # on every run, 60-100 ms that no installed copy pays.
    compileall.compile_dir(str(ROOT / "ipsecdiag"), quiet=1)
    extra = args.extra.split()
    tshark = shutil.which("tshark")
    if tshark is None:
        print("tshark not found: install Debian's tshark to compare", file=sys.stderr)
        return 2
    results = []

    def report(
        kind: str, count: int, ours: str, t_ours: float, rss_ours: int, t_ts: float, rss_ts: int
    ) -> None:
        ratio = t_ours / t_ts if t_ts else float("nan")
        line = (
            f"{kind:28} {count:>9} pkts  ipsecdiag {ours:10} {t_ours:7.2f}s {rss_ours / 1024:6.0f} MiB"
            f"   tshark {t_ts:7.2f}s {rss_ts / 1024:6.0f} MiB   ratio {ratio:.2f}x"
        )
        print(line, flush=True)
        results.append(
            {
                "kind": kind,
                "packets": count,
                "command": ours,
                "seconds": t_ours,
                "rss_mib": rss_ours / 1024,
                "tshark_seconds": t_ts,
                "tshark_rss_mib": rss_ts / 1024,
                "ratio": ratio,
            }
        )

    for count in args.counts:
        if args.only in (None, "inventory"):
            pcap, _ = ensure_capture(count, "none")
            t_ts, r_ts = median_run([tshark, "-r", str(pcap), "-q", "-z", "conv,ip"], args.repeat)
            t, r = median_run(
                ipsecdiag + ["analyze", str(pcap), "--json", os.devnull, "--fail-on", "never", *extra], args.repeat
            )
            report("inventory (conv,ip)", count, "analyze", t, r, t_ts, r_ts)
        if args.only in (None, "decryption"):
            for cipher in args.ciphers:
                pcap, keys = ensure_capture(count, cipher)
                assert keys is not None
                env, d = tshark_env_with_esp_sa(keys)
                try:
                    t_ts, r_ts = median_run(
                        [tshark, "-r", str(pcap), "-q", "-z", "conv,ip"], args.repeat, env
                    )
                finally:
                    shutil.rmtree(d, ignore_errors=True)
                t, r = median_run(
                    ipsecdiag
                    + ["analyze", str(pcap), "--keys", str(keys), "--json", os.devnull, "--fail-on", "never", *extra],
                    args.repeat,
                )
                report(f"decrypt {cipher}", count, "analyze", t, r, t_ts, r_ts)
                with tempfile.TemporaryDirectory() as td:
                    out = Path(td) / "plain.pcap"
                    t, r = median_run(
                        ipsecdiag + ["decrypt", str(pcap), "--keys", str(keys), "-o", str(out)], args.repeat
                    )
                report(f"decrypt {cipher}", count, "decrypt -o", t, r, t_ts, r_ts)
    if args.only in (None, "small"):
        walls, walls_ts, rss, rss_ts = [], [], 0, 0
        samples = sorted((ROOT / "sample_pcaps").glob("*.pcap"))
        for pcap in samples:
            t_ts, r_ts = median_run([tshark, "-r", str(pcap), "-q", "-z", "conv,ip"], args.repeat)
            t, r = median_run(
                ipsecdiag + ["analyze", str(pcap), "--json", os.devnull, "--fail-on", "never", *extra], args.repeat
            )
            walls.append(t)
            walls_ts.append(t_ts)
            rss, rss_ts = max(rss, r), max(rss_ts, r_ts)
        # The median file of the samples; start-up is the whole cost on each.
        report("small (bundled samples)", len(samples), "analyze", statistics.median(walls), rss,
               statistics.median(walls_ts), rss_ts)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
