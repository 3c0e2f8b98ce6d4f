"""Fake capture tools for the back-end tests: scripts that behave like tcpdump or dumpcap on
their stderr and stdout (startup line, the capture on stdout, statistics on SIGUSR1 and at
exit, the failure messages of the real tools) without touching a network interface.

``make_tool(tmp_path, "tcpdump", capture=path)`` writes an executable script that, given the
back end's usual arguments, announces itself, copies ``capture`` to stdout (optionally in
pieces with pauses, like packets arriving) and waits for SIGINT; ``fail=`` makes it print one
of the real tools' error messages and exit 1 instead, ``die=`` exit 1 with that message
after the capture (an interface that went away).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

FAILURES = {
    "tcpdump": {
        "no-device": "tcpdump: eth9: No such device exists\n(No such device exists)",
        "permission": "tcpdump: eth0: You don't have permission to perform this capture on that device\n"
        "(socket: Operation not permitted)",
        "filter": "tcpdump: can't parse filter expression: syntax error",
    },
    "dumpcap": {
        "no-device": "Capturing on 'eth9'\ndumpcap: There is no device named \"eth9\".\n(No such device exists)",
        "permission": "Capturing on 'eth0'\ndumpcap: You do not have permission to capture on device \"eth0\".\n"
        "(socket: Operation not permitted)",
        "filter": "Capturing on 'eth0'\ndumpcap: Invalid capture filter \"nonsense\" for interface 'eth0'.",
    },
}

_SCRIPT = r'''#!{python}
import os, signal, sys, time
KIND = {kind!r}
CAPTURE = {capture!r}
PIECES = {pieces!r}
PAUSE = {pause!r}
FAIL = {fail!r}
KERNEL_DROPS = {drops!r}
DIE = {die!r}
ARGS = {args_file!r}
if ARGS:
    with open(ARGS, "w") as f:
        f.write("\n".join(sys.argv[1:]))
if FAIL:
    sys.stderr.write(FAIL + "\n"); sys.stderr.flush(); sys.exit(1)
stop = False
sent = 0
def on_int(signum, frame):
    global stop
    stop = True
def on_usr1(signum, frame):
    sys.stderr.write(f"{{sent}} packets captured, {{sent}} packets received by filter, "
                     f"{{KERNEL_DROPS}} packets dropped by kernel\n")
    sys.stderr.flush()
signal.signal(signal.SIGINT, on_int)
signal.signal(signal.SIGUSR1, on_usr1)
iface = sys.argv[sys.argv.index("-i") + 1]
if KIND == "tcpdump":
    sys.stderr.write(f"tcpdump: listening on {{iface}}, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n")
else:
    sys.stderr.write(f"Capturing on '{{iface}}'\n")
sys.stderr.flush()
data = open(CAPTURE, "rb").read() if CAPTURE else b""
step = max(1, len(data) // PIECES) if data else 1
out = sys.stdout.buffer
for i in range(0, len(data), step):
    if stop:
        break
    out.write(data[i:i + step]); out.flush()
    sent += 1
    time.sleep(PAUSE)
if DIE:
    sys.stderr.write(DIE + "\n"); sys.stderr.flush(); sys.exit(1)
deadline = time.monotonic() + 30
while not stop and time.monotonic() < deadline:
    time.sleep(0.02)
if KIND == "tcpdump":
    sys.stderr.write(f"{{sent}} packets captured\n{{sent}} packets received by filter\n"
                     f"{{KERNEL_DROPS}} packets dropped by kernel\n")
else:
    sys.stderr.write(f"Packets captured: {{sent}}\nPackets received/dropped on interface '{{iface}}': "
                     f"{{sent}}/{{KERNEL_DROPS}} (pcap:{{KERNEL_DROPS}}/dumpcap:2/flushed:0/ps_ifdrop:1) (100.0%)\n")
sys.stderr.flush()
'''


def make_tool(
    tmp_path: Path,
    kind: str,
    *,
    capture: Path | None = None,
    pieces: int = 1,
    pause: float = 0.0,
    fail: str | None = None,
    drops: int = 0,
    args_file: Path | None = None,
    die: str = "",
) -> Path:
    """An executable fake ``kind`` ("tcpdump" or "dumpcap") in ``tmp_path``."""
    path = tmp_path / f"fake-{kind}"
    path.write_text(
        _SCRIPT.format(
            python=sys.executable,
            kind=kind,
            capture=str(capture) if capture else "",
            pieces=pieces,
            pause=pause,
            fail=FAILURES[kind][fail] if fail else "",
            drops=drops,
            args_file=str(args_file) if args_file else "",
            die=die,
        )
    )
    os.chmod(path, 0o755)
    return path
