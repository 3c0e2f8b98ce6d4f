"""The report modules added for issue 13 read the Report only, like the other renderers
(tests/test_layering.py holds render/json/view/live_view to the same rule)."""

from __future__ import annotations

import ast

import pytest
from corpus import REPO_ROOT

FORBIDDEN = {"crypto", "esp", "keys", "capture", "decryption", "diagnosis", "engine", "probe", "live"}
MODULES = ("verdict", "html", "svg", "childsa", "filters", "tables")


@pytest.mark.parametrize("name", MODULES)
def test_reads_the_report_only(name: str) -> None:
    path = REPO_ROOT / "ipsecdiag" / "report" / f"{name}.py"
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            top = (node.module or "").split(".")[0]
            if node.level == 2 and top in FORBIDDEN:
                bad.append(f"{path.name}:{node.lineno} imports ..{node.module}")
        elif isinstance(node, ast.ImportFrom | ast.Import):
            mods = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for m in mods:
                parts = m.split(".")
                if parts[0] == "ipsecdiag" and len(parts) > 1 and parts[1] in FORBIDDEN:
                    bad.append(f"{path.name}:{node.lineno} imports {m}")
                if parts[0] in ("subprocess", "socket", "urllib", "http"):
                    bad.append(f"{path.name}:{node.lineno} imports {m} (a renderer does no I/O)")
    assert not bad, "\n".join(bad)
