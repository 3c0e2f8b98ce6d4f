"""Run ``ipsecdiag live`` in this process (inside a network namespace, started by the test
with ``ip netns exec``) with the dashboard drawn on a recording rich Console, and save every
redrawn frame with the wall-clock time it was drawn.

Usage: python live_recorder.py IFACE WRITE.pcapng REPORT.json FRAMES.json READY_FLAG

Stops on SIGINT (what the test sends, like a user's Ctrl-C) or after 120 s. FRAMES.json is a
list of ``[time.time(), text]``; READY_FLAG is created after the first redraw, i.e. when the
capture is running.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from ipsecdiag.live.command import LiveRequest, run_live


def main() -> int:
    iface, write, report, frames_out, ready = sys.argv[1:6]
    console = Console(file=io.StringIO(), record=True, force_terminal=True, width=160, height=60)
    frames: list[tuple[float, str]] = []

    def redraw() -> None:
        frames.append((time.time(), console.export_text(clear=True)))
        if len(frames) == 1:
            Path(ready).touch()

    req = LiveRequest(interface=iface, write=Path(write), json_out=report, duration="120", fail_on="never")
    run_live(req, console, tty=True, on_redraw=redraw)
    Path(frames_out).write_text(json.dumps(frames))
    return 0


if __name__ == "__main__":
    sys.exit(main())
