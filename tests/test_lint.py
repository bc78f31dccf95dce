"""The tree stays ruff-clean (config in pyproject.toml), has no import cycles, and keeps Ray out of the core."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PACKAGES = ("raynas", "searchers", "trainables")


def test_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports, at module level or inside functions (``from a import b`` counts
    as ``a.b`` when that is a module)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(name, path, modules) if m in modules and m != name}
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_anywhere():
    graph = import_graph()
    assert len(graph) > 60
    assert _cycles(graph) == []


def test_cycle_detector_finds_a_planted_cycle():
    graph = import_graph()
    graph["raynas.config"] = {*graph["raynas.config"], "raynas.cli"}  # the CLI imports config already
    assert any("raynas.config" in c for c in _cycles(graph))


def test_nothing_in_raynas_outside_cli_imports_ray_or_trainables():
    """The science core (and the method registry) is plain PyTorch: only raynas/cli/ reaches Ray."""
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        if not name.startswith("raynas.") or name.startswith("raynas.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{name} imports {n}" for n in names if n.split(".")[0] in ("ray", "trainables")]
    assert offenders == []


def test_importing_the_core_in_a_fresh_process_loads_no_ray():
    core = sorted(n for n in _modules() if n.startswith("raynas.") and not n.startswith("raynas.cli"))
    code = ("import sys, importlib\n"
            f"for name in {core!r}:\n"
            "    importlib.import_module(name)\n"
            "    assert 'ray' not in sys.modules, f'{name} imported ray'\n"
            "import searchers.nsga2\n"
            "assert 'ray' not in sys.modules, 'searchers.nsga2 imported ray'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(core) > 40
