"""``ipsecdiag show``: Wireshark's own dissection of chosen frames, decrypted with our keys.

pyshark (the optional ``wireshark`` extra) drives tshark; the keys are handed over as a private
temporary Wireshark profile (the UAT tables written by :mod:`ipsecdiag.keys.wireshark`), so
inner application protocols get Wireshark's dissectors without any of our own.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .keys.model import KeyStore


class DissectError(Exception):
    """Why the dissection cannot run (missing extra, tshark, or unreadable input)."""


def dissect_frames(capture: str | Path, frames: list[int], store: KeyStore) -> Iterator[str]:
    try:
        import pyshark  # type: ignore[import-not-found]
    except ImportError:
        raise DissectError(
            "`show` needs the wireshark extra: pip install 'ipsecdiag[wireshark]' (pyshark), and tshark "
            "(Debian: apt-get install tshark)"
        ) from None
    if shutil.which("tshark") is None:
        raise DissectError("tshark not found on PATH (Debian: apt-get install tshark)")
    path = Path(capture)
    if not path.is_file():
        raise DissectError(f"cannot read {capture}: no such file")
    if not frames or any(f < 1 for f in frames):
        raise DissectError("frame numbers start at 1")
    from .keys.wireshark import write_wireshark_dir

    profile = tempfile.mkdtemp(prefix="ipsecdiag-ws-")
    old = os.environ.get("WIRESHARK_CONFIG_DIR")
    try:
        if store:
            write_wireshark_dir(store, Path(profile) / "profile")
            os.environ["WIRESHARK_CONFIG_DIR"] = str(Path(profile) / "profile")
        else:
            os.environ["WIRESHARK_CONFIG_DIR"] = profile
        wanted = sorted(set(frames))
        cap = pyshark.FileCapture(str(path), display_filter=frame_filter(wanted), keep_packets=False)
        seen = set()
        try:
            for pkt in cap:
                n = int(pkt.frame_info.number)
                seen.add(n)
                yield f"===== frame {n} =====\n{pkt}\n"
            cap.close()  # tshark's exit status is only checked here
        except Exception as e:  # noqa: BLE001 - pyshark's own classes (TSharkCrashException, …) and asyncio's
            raise DissectError(f"{capture}: {_tshark_error(e)}") from None
        finally:
            _close_quietly(cap)
        missing = [f for f in wanted if f not in seen]
        if missing:
            # Bad input, like any other: one line, exit 2 (after the frames that were there).
            raise DissectError(f"frame(s) not in {capture}: {', '.join(map(str, missing))}")
    finally:
        if old is None:
            os.environ.pop("WIRESHARK_CONFIG_DIR", None)
        else:
            os.environ["WIRESHARK_CONFIG_DIR"] = old
        shutil.rmtree(profile, ignore_errors=True)


def frame_filter(frames: list[int]) -> str:
    """A display filter selecting ``frames``. ``in {3 5}`` (space-separated) is refused by
    tshark 4.0 and ``in {3,5}`` by 3.x; an ``||`` chain is read by every version."""
    return " || ".join(f"frame.number == {n}" for n in frames)


def _tshark_error(e: BaseException) -> str:
    """tshark's exit status and last error line out of a pyshark error (which wraps them in advice
    about debug mode); for a display filter the last line is only a caret, then the status alone."""
    text = str(e)
    status = re.search(r"retcode: (-?\d+)", text)
    last = re.search(r"Last error line: (.*)", text)
    line = last.group(1).strip() if last else (text.splitlines() or [type(e).__name__])[0]
    line = line.removeprefix("tshark: ")
    why = f"tshark exited with status {status.group(1)}" if status else "tshark failed"
    return f"{why}: {line}" if line.strip("^ ") else why


def _close_quietly(cap: object) -> None:
    try:
        cap.close()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - already reported (or tshark gone): nothing more to say
        pass
    # A failed close leaves the exited tshark listed; pyshark's __del__ would close it again and
    # print a traceback at exit.
    running = getattr(cap, "_running_processes", None)
    if isinstance(running, set):
        running.clear()
