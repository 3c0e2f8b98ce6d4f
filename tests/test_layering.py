"""The package layering, checked from the import graph of the source (not from running it).

Every ``import``/``from ... import`` in every module counts, including those inside functions;
only imports under ``if TYPE_CHECKING:`` are left out (they never run). The rules are those of
docs/architecture.md ("Layers"); a new import that breaks one fails here with the line that
made it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ipsecdiag"

# Top-level package -> the packages of ipsecdiag it may import (itself always allowed).
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    "keys": {"wire"},
    "crypto": {"wire", "keys"},
    "esp": {"wire", "keys", "crypto"},
    "capture": {"wire"},
    "protocol": {"wire", "keys", "crypto"},
    "engine": {"wire", "keys", "crypto", "esp", "protocol"},
    # The data flow of the analyser: each stage sees only the ones before it.
    "reconstruction": {"wire", "keys", "crypto", "esp", "capture", "protocol"},
    "decryption": {"wire", "keys", "crypto", "esp", "capture", "protocol", "reconstruction"},
    "diagnosis": {"wire", "keys", "crypto", "capture", "protocol", "reconstruction"},
}
SANS_IO = ("wire", "crypto", "esp", "engine", "protocol")
IO_MODULES = {"socket", "select", "asyncio", "time", "random", "secrets", "subprocess", "threading"}
# Renderers read the report only: no key material, no cryptography, no capture code.
RENDERERS = ("report/render.py", "report/tables.py", "report/json.py", "report/view.py", "report/live_view.py")
RENDERER_FORBIDDEN = {"crypto", "esp", "keys", "capture"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(mod: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import that can run, absolute names."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for c in child.orelse:
                    visit(c)
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    pkg = base[: len(base) - (child.level - 1)]
                    target = ".".join(pkg + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                out.append((target, child.lineno))
                for a in child.names:  # "from pkg import module"
                    sub = f"{target}.{a.name}"
                    if sub in MODULES:
                        out.append((sub, child.lineno))
            visit(child)

    visit(tree)
    return out


GRAPH: dict[str, list[tuple[str, int]]] = {m: _imports(m, p) for m, p in MODULES.items()}


def _top(mod: str) -> str | None:
    parts = mod.split(".")
    if parts[0] != "ipsecdiag" or len(parts) < 2:
        return None
    sub = parts[1]
    return sub if (PKG / sub).is_dir() else None


def _internal(name: str) -> str | None:
    """The ipsecdiag module an import name refers to (longest known prefix)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in MODULES:
            return cand
    return None


def test_graph_is_not_empty() -> None:
    assert len(MODULES) > 80
    assert any(t == "ipsecdiag.wire.registry" for t, _ in GRAPH["ipsecdiag.wire.ikev2"])


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package: str) -> None:
    bad = []
    for mod, imports in GRAPH.items():
        if _top(mod) != package:
            continue
        for name, line in imports:
            target = _internal(name)
            top = _top(target) if target else None
            if target is None or top == package:
                continue
            if top is None or top not in ALLOWED[package]:
                bad.append(f"{MODULES[mod].relative_to(PKG.parent)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", SANS_IO)
def test_sans_io_packages_do_no_io(package: str) -> None:
    bad = []
    for mod, imports in GRAPH.items():
        if _top(mod) != package:
            continue
        for name, line in imports:
            if name.split(".")[0] in IO_MODULES:
                bad.append(f"{MODULES[mod].relative_to(PKG.parent)}:{line} imports {name}")
        for node in ast.walk(ast.parse(MODULES[mod].read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
            if name == "urandom":
                bad.append(f"{MODULES[mod].relative_to(PKG.parent)}:{node.lineno} uses os.urandom")
    assert not bad, "\n".join(bad)


def test_renderers_read_the_report_only() -> None:
    bad = []
    for rel in RENDERERS:
        path = PKG / rel
        if not path.exists():
            continue
        mod = "ipsecdiag." + rel[:-3].replace("/", ".")
        for name, line in GRAPH[mod]:
            target = _internal(name)
            if target and _top(target) in RENDERER_FORBIDDEN:
                bad.append(f"{rel}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative enough)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


# Known cycles in code this test does not own, each to be removed by its owner; listed so that
# any new cycle still fails.
KNOWN_MODULE_CYCLES = [
]


def test_no_module_import_cycles() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for mod, imports in GRAPH.items():
        for name, _ in imports:
            target = _internal(name)
            # A package's __init__ importing its own modules is not a cycle through them.
            if target and target != mod and not target.startswith(mod + "."):
                edges[mod].add(target)
    assert [c for c in _cycles(edges) if c not in KNOWN_MODULE_CYCLES] == []


def test_no_package_import_cycles() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for mod, imports in GRAPH.items():
        src = _top(mod)
        for name, _ in imports:
            target = _internal(name)
            dst = _top(target) if target else None
            if src and dst and src != dst:
                edges[src].add(dst)
    assert _cycles(edges) == []


def test_checks_import_no_other_check() -> None:
    checks = "ipsecdiag.diagnosis.checks."
    bad = []
    for mod, imports in GRAPH.items():
        if not mod.startswith(checks):
            continue
        for name, line in imports:
            target = _internal(name)
            if target and target.startswith(checks) and target != mod:
                bad.append(f"{MODULES[mod].relative_to(PKG.parent)}:{line} imports {name}")
    assert not bad, "\n".join(bad)
