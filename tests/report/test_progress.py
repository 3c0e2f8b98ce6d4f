"""The progress bar: on a terminal's stderr after the run has taken ``IPSECDIAG_PROGRESS_AFTER``
seconds, never on a pipe, never with the JSON on standard output (issue 13)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipsecdiag.report.progress import DelayedProgress

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).parent / "ipsecdiag")
BAR = "━"  # rich's bar glyph


def test_bar_waits_for_the_delay() -> None:
    now = [0.0]
    p = DelayedProgress("x.pcap", after=1.0, clock=lambda: now[0])
    with p:
        now[0] = 0.9
        p.update(10, 100)
        assert not p.shown  # a short run prints nothing
        now[0] = 1.1
        p.update(50, 100)
        assert p.shown


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("progress")
    cap, keys = d / "esp.pcap", d / "esp_sa"
    gen = [sys.executable, str(ROOT / "bench" / "gen_esp.py"), str(cap), "60000", "--sas", "2"]
    subprocess.run([*gen, "--cipher", "aes-gcm-128", "--keys-out", str(keys)], check=True, capture_output=True, timeout=120)
    return cap, keys


def _run(argv: list[str], *, tty: bool, after: str = "0") -> tuple[int, bytes, bytes]:
    """Run ipsecdiag with stderr on a pseudo-terminal (or a pipe); stdout is a pipe."""
    env = {**os.environ, "IPSECDIAG_PROGRESS_AFTER": after, "TERM": "xterm-256color", "COLUMNS": "80"}
    env.pop("NO_COLOR", None)
    if not tty:
        p = subprocess.run([EXE, *argv], capture_output=True, env=env, timeout=120)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen([EXE, *argv], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    err = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # drain the terminal while it runs
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            err += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    out = proc.stdout.read() if proc.stdout else b""
    return proc.wait(timeout=30), out, err


def test_analyze_shows_the_bar_on_a_terminal(capture: tuple[Path, Path]) -> None:
    code, out, err = _run(["analyze", "--no-pager", str(capture[0])], tty=True)
    assert code in (0, 1), err
    assert BAR in err.decode() and capture[0].name in err.decode(), err
    assert b"\x1b" not in out  # the report on the pipe is clean


def test_decrypt_shows_the_bar_on_a_terminal(capture: tuple[Path, Path], tmp_path: Path) -> None:
    cap, keys = capture
    code, out, err = _run(["decrypt", str(cap), "-k", str(keys), "-o", str(tmp_path / "o.pcap")], tty=True)
    assert code == 0, err
    assert BAR in err.decode(), err


def test_no_bar_before_the_delay(capture: tuple[Path, Path]) -> None:
    code, _, err = _run(["analyze", "--no-pager", str(capture[0])], tty=True, after="600")
    assert BAR not in err.decode(), err


def test_no_bar_on_a_pipe(capture: tuple[Path, Path]) -> None:
    code, _, err = _run(["analyze", "--no-pager", str(capture[0])], tty=False)
    assert code in (0, 1) and err == b"", err


def test_no_bar_with_json_on_stdout(capture: tuple[Path, Path]) -> None:
    code, out, err = _run(["analyze", "--json", "-", str(capture[0])], tty=True)
    assert code in (0, 1) and out.startswith(b"{")
    assert BAR not in err.decode(), err
