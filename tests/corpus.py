"""Where the shared capture corpus lives, and a marker for tests that need it.

The corpus (real captures with their key files) sits beside the repository, never inside it:
``../shared/corpus`` by default, or wherever ``IPSECDIAG_CORPUS`` points.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("IPSECDIAG_CORPUS") or REPO_ROOT.parent / "shared" / "corpus").expanduser()

needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"shared corpus folder {CORPUS} not present (set IPSECDIAG_CORPUS)"
)
