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
        names = reaches_up(path)
        if names:
            bad[rel] = sorted(names)
    assert not bad, f"the core reaches up (register it from its own package instead): {bad}"


def test_a_core_module_takes_no_names_from_the_package_init():
    """``raynas/__init__`` configures the process (thread waits, numerics); a core module imports what it needs
    from the module that defines it, so importing the core never depends on the package's side effects."""
    modules = {p.relative_to(ROOT).with_suffix("").as_posix().replace("/", "."): p for p in CORE.rglob("*.py")}
    offenders = []
    for path in core_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "raynas" and not node.level:
                offenders += [f"{path.relative_to(ROOT)} takes {a.name}" for a in node.names
                              if f"raynas.{a.name}" not in modules and f"raynas.{a.name}.__init__" not in modules]
    assert offenders == []


def test_the_scan_sees_imports_and_import_path_strings(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('"""Docs may mention raynas.methods."""\n'
                     "import searchers.nsga2\n"
                     "from raynas.methods import get_method\n"
                     "from raynas import methods\n"
                     'MODS = ("trainables.fixed_trial:train_fixed", "raynas/methods/x")\n')
    assert reaches_up(probe) == {"searchers.nsga2", "raynas.methods", "trainables.fixed_trial", "raynas.methods.x"}
