"""The science core (``raynas/`` outside ``methods/`` and ``cli/``) never reaches up: it imports neither
``raynas.methods``, nor ``searchers``, nor ``trainables``, and names none of them in a string (an import path to
load later). Methods, spaces, networks and figures register themselves; the core looks them up by key."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

UPPER = ("raynas.methods", "searchers", "trainables")
CORE = ROOT / "raynas"
OUTSIDE_CORE = (CORE / "methods", CORE / "cli")

# Known reaches up that the layer moves of issue 19 remove (file -> the module it names); removed by the layer
# moves: empty this once they are merged.
ALLOWED = {
    "raynas/classify/search.py": {"searchers.differentiable"},
    "raynas/results/pareto.py": {"searchers.nsga2"},
    "raynas/gan/regan.py": {"raynas.methods.regan"},
    "raynas/plots.py": {"raynas.methods"},
}


def _upper(name: str) -> str | None:
    """``name`` when it is (or is inside) an upper layer's module path."""
    name = name.split(":", 1)[0].strip()
    return name if any(name == u or name.startswith(u + ".") for u in UPPER) else None


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def reaches_up(path: Path) -> set[str]:
    """Every upper-layer module ``path`` imports or names in a string (docstrings and comments aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"raynas.{a.name}" for a in node.names if node.module == "raynas")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            names = [node.value, node.value.replace("/", ".")]
        for name in names:
            hit = _upper(name)
            if hit:
                found.add(hit)
    return found


def core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if not any(p.is_relative_to(d) for d in OUTSIDE_CORE))


def test_the_core_never_imports_or_names_methods_searchers_or_trainables():
    bad = {}
    for path in core_files():
        rel = path.relative_to(ROOT).as_posix()
        names = {n for n in reaches_up(path) if not any(n == a or n.startswith(a + ".") for a in ALLOWED.get(rel, ()))}
        if names:
            bad[rel] = sorted(names)
    assert not bad, f"the core reaches up (register it from its own package instead): {bad}"


def test_the_allow_list_holds_only_reaches_that_still_exist():
    for rel, names in ALLOWED.items():
        path = ROOT / rel
        found = reaches_up(path) if path.is_file() else set()
        assert {n for n in names if any(f == n or f.startswith(n + ".") for f in found)} == names, \
            f"{rel} no longer reaches {names - found}: remove it from ALLOWED"


def test_the_scan_sees_imports_and_import_path_strings(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('"""Docs may mention raynas.methods."""\n'
                     "import searchers.nsga2\n"
                     "from raynas.methods import get_method\n"
                     "from raynas import methods\n"
                     'MODS = ("trainables.train:train_fixed", "raynas/methods/x")\n')
    assert reaches_up(probe) == {"searchers.nsga2", "raynas.methods", "trainables.train", "raynas.methods.x"}
