"""``ipsecdiag show``: Wireshark's own dissection of chosen frames, decrypted with our keys.

pyshark (the optional ``wireshark`` extra) drives tshark; the keys are handed over as a private
temporary Wireshark profile (the UAT tables written by :mod:`ipsecdiag.keys.wireshark`), so
inner application protocols get Wireshark's dissectors without any of our own.
"""

from __future__ import annotations

import os
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
        cap = pyshark.FileCapture(
            str(path),
            display_filter="frame.number in {" + " ".join(map(str, wanted)) + "}",
            keep_packets=False,
        )
        seen = set()
        try:
            for pkt in cap:
                n = int(pkt.frame_info.number)
                seen.add(n)
                yield f"===== frame {n} =====\n{pkt}\n"
        finally:
            cap.close()
        missing = [f for f in wanted if f not in seen]
        if missing:
            yield f"(frames not in the capture: {', '.join(map(str, missing))})\n"
    finally:
        if old is None:
            os.environ.pop("WIRESHARK_CONFIG_DIR", None)
        else:
            os.environ["WIRESHARK_CONFIG_DIR"] = old
        shutil.rmtree(profile, ignore_errors=True)
