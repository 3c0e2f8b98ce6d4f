"""Where the shared capture corpus lives, and a marker for tests that need it.

The corpus (real captures with their key files) sits beside the repository, never inside it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = REPO_ROOT.parent / "shared" / "corpus"

needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason="shared corpus folder ../shared/corpus not present"
)
