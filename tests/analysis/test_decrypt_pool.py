"""Worker-process ESP decryption gives exactly what in-process decryption gives: counters,
inner protocol mix, nested ESP and the decrypted output, in capture order."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import CORPUS, needs_corpus

from ipsecdiag.decryption import pool as decrypt_pool
from ipsecdiag.decryption.ikev2 import DecryptionSetup
from ipsecdiag.keys.load import load_keys
from ipsecdiag.keys.model import KeyStore
from ipsecdiag.pipeline import analyze_capture
from ipsecdiag.report.json import report_dict
from ipsecdiag.report.pcap import export_decrypted

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"

CASES = [
    (SAMPLES / "ikev2-psk-ok.pcap", SAMPLES / "ikev2-psk-ok.charon.log"),
    (SAMPLES / "ikev2-cbc-sha256-ok.pcap", SAMPLES / "ikev2-cbc-sha256-ok.charon.log"),
]
if CORPUS.is_dir():  # nested ESP: tunnel SA carrying a transport SA
    CASES.append(
        (
            CORPUS / "external/wireshark-wiki/ipsec_esp_capture_2/capture.pcap",
            CORPUS / "external/wireshark-wiki/ipsec_esp_capture_2/esp_sa",
        )
    )


def _flows(rep) -> list[tuple]:
    return [
        (f["spi"], f["src"], f["packets"], f["decrypted"], f["integrity_failed"], f["inner_protocols"])
        for f in report_dict(rep)["esp_flows"]
    ]


@pytest.mark.parametrize("suffix", [".pcap", ".pcapng"])
@pytest.mark.parametrize("cap,keys", CASES, ids=[c.name for c, _ in CASES])
def test_pool_matches_in_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cap: Path, keys: Path, suffix: str
) -> None:
    store = KeyStore(load_keys(keys))
    inproc = analyze_capture(cap, keys=store, decryption=DecryptionSetup())
    out1 = tmp_path / f"inproc{suffix}"
    export_decrypted(cap, store, out1)
    monkeypatch.setattr(decrypt_pool, "MIN_CAPTURE_BYTES", 0)
    monkeypatch.setattr(decrypt_pool, "BATCH", 3)  # many batches even on a small capture
    pooled = analyze_capture(cap, keys=store, decryption=DecryptionSetup())
    out2 = tmp_path / f"pooled{suffix}"
    summary = export_decrypted(cap, store, out2)
    assert _flows(pooled) == _flows(inproc)
    assert any(f[3] for f in _flows(pooled))
    assert out2.read_bytes() == out1.read_bytes()
    assert summary.written == sum(f.decrypted for f in inproc.esp_flows)


@needs_corpus
def test_pool_is_used_for_large_captures_only() -> None:
    assert decrypt_pool.use_pool(1000) == 0
