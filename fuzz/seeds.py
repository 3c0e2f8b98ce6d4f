"""Seed inputs: the bundled captures, the shared corpus when present, the regression inputs.

Captures come with the key files beside them (a strongSwan log, Wireshark tables, a TOML or
lab key file), so the pipeline target can run each mutated capture with and without keys. The
codec targets get the IKE messages inside those captures, cut out by the project's own decoder.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ipsecdiag.capture.decode import Decoder
from ipsecdiag.capture.model import CaptureError, IkeDatagram
from ipsecdiag.capture.reader import open_capture
from ipsecdiag.keys.errors import KeyFileError
from ipsecdiag.keys.load import load_key_file
from ipsecdiag.keys.model import KeyStore

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
REGRESS = REPO / "tests" / "regress"
# Larger captures cost more time per mutated run than they add coverage.
MAX_SEED_CAPTURE = 512 * 1024
_KEY_GLOBS = (
    "*.charon.log", "charon*.log", "*.keys.toml", "keys.json", "esp_sa", "ikev2_decryption_table",
    "ikev1_decryption_table", "*secrets*.txt", "wireshark-keys",
)  # fmt: skip


@dataclass
class SeedCapture:
    path: Path
    data: bytes
    key_files: list[Path] = field(default_factory=list)
    keys: KeyStore = field(default_factory=KeyStore)


def capture_paths(include_corpus: bool = True) -> list[Path]:
    roots = [REPO / "sample_pcaps", REGRESS]
    if include_corpus and CORPUS.is_dir():
        roots.append(CORPUS)
    out: list[Path] = []
    for root in roots:
        if root.is_dir():
            out.extend(
                p
                for p in sorted(root.rglob("*"))
                if p.suffix in (".pcap", ".pcapng", ".gz") and p.is_file() and p.stat().st_size <= MAX_SEED_CAPTURE
            )
    return out


def _key_candidates(cap: Path) -> Iterator[Path]:
    d = cap.parent
    for pattern in _KEY_GLOBS:
        for p in sorted(d.glob(pattern)):
            # A directory of many captures (sample_pcaps): only the files named after this one.
            if d.name in ("sample_pcaps", "synth") and not p.name.startswith(cap.stem + "."):
                continue
            yield p


def load_seed_captures(include_corpus: bool = True) -> list[SeedCapture]:
    seeds = []
    for p in capture_paths(include_corpus):
        s = SeedCapture(p, p.read_bytes())
        for k in _key_candidates(p):
            try:
                found = load_key_file(k).keys
            except (KeyFileError, OSError):
                continue
            if found:
                s.key_files.append(k)
                s.keys.extend(found)
        seeds.append(s)
    return seeds


class _Collect:
    """A decoder sink that keeps the IKE messages and ignores everything else."""

    def __init__(self) -> None:
        self.ike: list[bytes] = []

    def on_ike(self, msg: IkeDatagram) -> None:
        self.ike.append(msg.data)

    def __getattr__(self, name: str):  # every other Sink callback: ignore
        return lambda *a, **k: None


def ike_messages(captures: list[SeedCapture], limit: int = 5000) -> tuple[list[bytes], list[bytes]]:
    """(IKEv2 messages, IKEv1 messages) found in ``captures``, distinct, at most ``limit`` each."""
    v2: dict[bytes, None] = {}
    v1: dict[bytes, None] = {}
    for s in captures:
        sink = _Collect()
        dec = Decoder(sink)  # type: ignore[arg-type]
        try:
            with open_capture(s.path) as cap:
                for fr in cap.frames():
                    dec.feed(*fr)
        except CaptureError:
            continue
        dec.finish()
        for m in sink.ike:
            if len(m) >= 28:
                (v2 if m[17] >> 4 == 2 else v1).setdefault(m, None)
    return list(v2)[:limit], list(v1)[:limit]


def gzip_variant(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)
