"""Analyse a real capture with its keys, for end-to-end check tests.

Decryption is being assembled by other modules; these tests run as soon as the IKEv2 pieces
(``keys.load`` and ``crypto.sk``) import, with the full decryption stage (``DecryptionSetup``) when it is
importable (IKEv1 and ESP hooks too) and the IKEv2 SK decryptor alone otherwise.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from corpus import CORPUS, REPO_ROOT

SAMPLES = REPO_ROOT / "sample_pcaps"
LAB = CORPUS / "lab"
EXTERNAL = CORPUS / "external"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


IKEV2_DECRYPTION = _importable("ipsecdiag.keys.load") and _importable("ipsecdiag.crypto.sk")
FULL_DECRYPTION = (
    IKEV2_DECRYPTION
    and _importable("ipsecdiag.decryption.ikev1")
    and _importable("ipsecdiag.decryption.esp")
)
needs_decryption = pytest.mark.skipif(
    not IKEV2_DECRYPTION, reason="IKE decryption (ipsecdiag.keys.load, ipsecdiag.crypto.sk) not available yet"
)
needs_v1_decryption = pytest.mark.skipif(
    not FULL_DECRYPTION, reason="IKEv1 decryption (ipsecdiag.decryption.ikev1) not available yet"
)


def analyze(pcap: Path, *keys: Path, **options: Any) -> Any:
    """The Report of ``pcap`` with the key files loaded (checks run)."""
    from ipsecdiag.keys.load import load_keys
    from ipsecdiag.keys.model import KeyStore
    from ipsecdiag.pipeline import AnalysisOptions, analyze_capture

    store = KeyStore()
    for k in keys:
        store.extend(load_keys(k))
    return analyze_capture(pcap, keys=store, options=AnalysisOptions(**options))


def first_error(report: Any) -> Any:
    return next((f for f in report.findings if f.severity.label == "error"), None)
