"""How many ESP packets per second ``ipsecdiag live`` keeps up with, and its memory over time.

A measurement script, not a test (root; two network namespaces joined by a veth pair).
``bench/gen_esp.py`` makes an ESP capture (Ethernet/IPv4, ESP and ESP-in-UDP over 8 SAs,
~750-byte frames); tcpreplay (``--sender tcpreplay``, the default: little CPU of its own on
this 2-core machine) or a small Python sender that rewrites each SA's sequence numbers so a
looped replay stays an increasing stream (``--sender python``) replays it onto the veth at a
fixed rate; ``ipsecdiag live`` captures on the other end (``--backend``).

"Keeps up" means the live session analysed every frame that was sent and tcpdump reported no
kernel drop: when the analysis falls behind, its queue fills, the pipe blocks and the kernel
drops (the live process itself never discards a frame).

Usage (from the repository root, as root):
    .venv/bin/python tests/live/bench_live.py --rates 20000,50000,80000 --seconds 10
    .venv/bin/python tests/live/bench_live.py --soak 600 --soak-rate 50000
Prints one line per run; with --soak also the RSS of the live process every 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
TX, RX = f"ipdbench-{os.getpid()}-tx", f"ipdbench-{os.getpid()}-rx"

SENDER = r'''
import socket, struct, sys, time
sys.path.insert(0, {repo!r})
from ipsecdiag.capture.reader import open_capture
path, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
frames = []
with open_capture(path) as c:
    for fr in c.frames():
        d = fr[3]
        off = 14 + (d[14] & 15) * 4 + (8 if d[23] == 17 else 0)  # ESP header after IPv4 (+UDP)
        frames.append((bytearray(d), off, d[off:off + 4]))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("veth-tx", 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
seq = {{}}
sent = 0
burst = max(1, int(rate / 1000))  # one burst per millisecond of schedule
t0 = time.perf_counter()
end = t0 + seconds
i = 0
n = len(frames)
pack = struct.Struct("!I").pack_into
while True:
    now = time.perf_counter()
    if now >= end:
        break
    due = int((now - t0) * rate)
    if sent >= due:
        time.sleep(min(0.001, (sent + burst - due) / rate))
        continue
    for _ in range(min(burst, due - sent)):
        buf, off, spi = frames[i]
        q = seq.get(spi, 0) + 1
        seq[spi] = q
        pack(buf, off + 4, q)
        try:
            s.send(buf)
        except OSError:
            time.sleep(0.0005)
            continue
        sent += 1
        i = i + 1 if i + 1 < n else 0
print(sent, round(time.perf_counter() - t0, 3))
'''


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60).stdout


def setup() -> None:
    sh("ip", "netns", "add", TX)
    sh("ip", "netns", "add", RX)
    sh("ip", "link", "add", "veth-tx", "netns", TX, "type", "veth", "peer", "name", "veth-rx", "netns", RX)
    for ns, dev in ((TX, "veth-tx"), (RX, "veth-rx")):
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")


def teardown() -> None:
    for ns in (TX, RX):
        sh("ip", "netns", "del", ns, check=False)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_once(
    capture: Path,
    rate: float,
    seconds: float,
    work: Path,
    backend: str,
    sender_kind: str,
    sample_every: float = 0.0,
) -> dict:
    report = work / f"live-{int(rate)}.json"
    argv = ["ip", "netns", "exec", RX, PY, "-m", "ipsecdiag", "live", "-i", "veth-rx", "--backend", backend]
    argv += ["--json", str(report), "--fail-on", "never", "--no-ladder"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    live = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    time.sleep(2.5)  # tcpdump up, pipeline idle
    rss0 = rss_kib(live.pid)
    cpu0 = cpu_seconds(live.pid)
    if sender_kind == "tcpreplay":
        # C sender: --loop 0 repeats the capture (sequence numbers then repeat: replays for
        # the analysis, which keeps a fixed window per SA for them), --limit ends the run
        send_argv = ["tcpreplay", "-q", "-i", "veth-tx", f"--pps={rate:.0f}", "--loop=0"]
        send_argv += [f"--limit={int(rate * seconds)}", str(capture)]
    else:
        sender_py = work / "sender.py"
        sender_py.write_text(SENDER.format(repo=str(REPO)))
        send_argv = [PY, str(sender_py), str(capture), str(rate), str(seconds)]
    sender = subprocess.Popen(["ip", "netns", "exec", TX, *send_argv], stdout=subprocess.PIPE, text=True)
    samples = []
    t0 = time.monotonic()
    next_sample = sample_every
    while sender.poll() is None:
        time.sleep(0.5)
        if sample_every and time.monotonic() - t0 >= next_sample:
            samples.append((round(time.monotonic() - t0), rss_kib(live.pid)))
            print(f"  t={samples[-1][0]:4d}s rss={samples[-1][1] / 1024:.1f} MiB", flush=True)
            next_sample += sample_every
    text = sender.communicate(timeout=30)[0]
    if sender_kind == "tcpreplay":
        m = re.search(r"Actual: (\d+) packets \(\d+ bytes\) sent in ([\d.]+) seconds", text)
        if not m:
            raise SystemExit(f"tcpreplay said: {text.strip()[-500:]}")
        sent, send_s = int(m.group(1)), float(m.group(2))
    else:
        sent, send_s = int(text.split()[0]), float(text.split()[1])
    time.sleep(2.0)  # let the last packets through the pipe
    rss1 = rss_kib(live.pid)
    cpu1 = cpu_seconds(live.pid)
    live.send_signal(signal.SIGINT)
    err = live.communicate(timeout=120)[1].decode(errors="replace")
    if not report.exists():
        raise SystemExit(f"live wrote no report (exit {live.returncode}): {err.strip()[-1500:]}")
    doc = json.loads(report.read_text())
    return {
        "rate": rate,
        "sent": sent,
        "send_seconds": send_s,
        "analysed": doc["source"]["frames"],
        "esp": doc["source"]["esp_packets"],
        "kernel_drops": doc["live"]["dropped"]["kernel"],
        "stalls": doc["live"]["analysis_stalls"],
        "cpu_seconds": round(cpu1 - cpu0, 2),
        "rss_mib_start": round(rss0 / 1024, 1),
        "rss_mib_end": round(rss1 / 1024, 1),
        "samples": samples,
        "stderr": err.strip().splitlines()[-1:] if live.returncode not in (0, 1) else [],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="20000,50000,80000")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--packets", type=int, default=200_000, help="size of the generated capture")
    ap.add_argument("--soak", type=float, default=0.0, help="seconds of one long run at --soak-rate")
    ap.add_argument("--soak-rate", type=float, default=50_000)
    ap.add_argument("--backend", default="dumpcap", choices=("tcpdump", "dumpcap", "scapy"))
    ap.add_argument("--sender", default="tcpreplay", choices=("tcpreplay", "python"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ipd-bench-live-") as tmp:
        work = Path(tmp)
        cap = work / "esp.pcap"
        sh(PY, str(REPO / "bench" / "gen_esp.py"), str(cap), str(a.packets), "--sas", "8")
        setup()
        try:
            runs = [float(r) for r in a.rates.split(",") if r] if not a.soak else []
            for rate in runs:
                r = run_once(cap, rate, a.seconds, work, a.backend, a.sender)
                achieved = r["sent"] / r["send_seconds"]
                kept = "keeps up" if r["analysed"] == r["sent"] and not r["kernel_drops"] else "FALLS BEHIND"
                print(
                    f"{a.backend} rate {rate:>8.0f}/s: sent {r['sent']} ({achieved:.0f}/s), analysed {r['analysed']}, "
                    f"kernel drops {r['kernel_drops']}, analysis stalls {r['stalls']}, live CPU {r['cpu_seconds']}s "
                    f"({r['cpu_seconds'] / r['send_seconds'] * 100:.0f}% of one core), "
                    f"RSS {r['rss_mib_start']}->{r['rss_mib_end']} MiB: {kept} {r['stderr']}",
                    flush=True,
                )
            if a.soak:
                r = run_once(cap, a.soak_rate, a.soak, work, a.backend, a.sender, sample_every=30.0)
                print(json.dumps({k: v for k, v in r.items() if k != "samples"}), flush=True)
        finally:
            teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
