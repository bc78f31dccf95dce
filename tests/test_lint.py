"""The tree stays ruff-clean (the config lives in pyproject.toml)."""

import subprocess
import sys

from conftest import ROOT


def test_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_science_core_and_searcher_never_import_ray():
    """DESIGN: spaces, ops, supernets, losses, metrics, data and the NSGA-II core are plain PyTorch/pymoo;
    only searchers' Tune adapter, trainables/ and raynas.actors touch Ray."""
    import pkgutil

    import raynas

    skip = {"raynas.actors", "raynas.cli", "raynas.commands", "raynas.commands_damgan", "raynas.__main__"}
    modules = sorted(m.name for m in pkgutil.walk_packages(raynas.__path__, "raynas.") if m.name not in skip)
    modules.append("searchers.nsga2")
    code = ("import sys, importlib\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "    assert 'ray' not in sys.modules, f'{name} imported ray'\n"
            "print(len(sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(modules) > 40
