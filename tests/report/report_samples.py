"""Every bundled sample analysed once (with its key file when it has one), for the report
tests: the renderers are tested over real reports, not hand-built ones."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from corpus import REPO_ROOT

from ipsecdiag.keys.load import load_key_sources
from ipsecdiag.keys.model import KeyStore
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.reconstruction.model import Report
from ipsecdiag.reconstruction.options import AnalysisOptions

SAMPLES = REPO_ROOT / "sample_pcaps"


def _keyfiles() -> dict[str, Path]:
    out = {}
    for index in (SAMPLES / "samples.json", SAMPLES / "synth" / "synth.json"):
        for entry in json.loads(index.read_text()).values():
            if isinstance(entry, dict) and entry.get("pcap") and entry.get("keys"):
                out[entry["pcap"]] = index.parent / entry["keys"]
    for p in SAMPLES.rglob("*.keys.toml"):
        out.setdefault(p.name.removesuffix(".keys.toml") + ".pcap", p)
    return out


SAMPLE_PATHS = sorted(SAMPLES.glob("*.pcap")) + sorted((SAMPLES / "synth").glob("*.pcap"))
IDS = [p.stem for p in SAMPLE_PATHS]


@cache
def sample_report(stem: str, keyed: bool = True, timeline: bool = False) -> Report:
    """``timeline``: with the ESP flows' packet histograms, as ``analyze --html`` collects them."""
    path = next(p for p in SAMPLE_PATHS if p.stem == stem)
    key = _keyfiles().get(path.name) if keyed else None
    store = load_key_sources([key]).store if key else KeyStore()
    # Relative to the working directory, as a user types it (the report names the file).
    options = AnalysisOptions(esp_timeline=timeline)
    return analyze_capture(Path(os.path.relpath(path)), keys=store, options=options)
