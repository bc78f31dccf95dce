"""Plugins: the packages that bring methods, spaces, networks and figures, found without naming them.

The core registries (config sections, methods, genotype spaces and formats, networks, drawers) are filled by the
modules that define what they hold, when those modules are imported. ``load_plugins()`` imports them: every module
named by an entry point of the group ``raynas.plugins`` (raynas's own methods are one, declared in its
``pyproject.toml``; an installed package adds its own) and every module listed in the environment variable
``RAYNAS_PLUGINS`` (comma-separated, for code that is not installed). A registry lookup that misses calls it
first, so the core never imports a method, and ``import raynas`` stays light.

A checkout run from its source folder without a fresh install (an editable install made before an entry point was
added) still finds raynas's own entry points: they are read from the ``pyproject.toml`` beside the package too.
"""

from __future__ import annotations

import importlib
import os
import threading
from importlib import metadata
from pathlib import Path

from raynas.errors import ConfigError

GROUP = "raynas.plugins"
ENV = "RAYNAS_PLUGINS"

_LOADED: set[str] = set()  # plugin modules imported (or being imported) by this process
_LOCK = threading.RLock()
_DONE = False
_LOADING = False


def plugin_modules() -> list[str]:
    """The module names ``load_plugins`` imports, in order: entry points, then ``RAYNAS_PLUGINS``."""
    names = [ep.value.partition(":")[0].strip() for ep in metadata.entry_points(group=GROUP)]
    names += _source_entry_points()
    names += [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    return list(dict.fromkeys(names))


def _source_entry_points() -> list[str]:
    """The ``raynas.plugins`` entry points of the ``pyproject.toml`` beside this package, when raynas runs from a
    source checkout (the installed metadata may predate them)."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if not pyproject.is_file():
        return []
    try:
        import tomllib
    except ImportError:  # Python 3.10: an installed raynas has its entry points in its metadata
        return []
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project") or {}
    except (OSError, tomllib.TOMLDecodeError):
        return []
    if project.get("name") != "raynas":
        return []
    points = (project.get("entry-points") or {}).get(GROUP) or {}
    return [str(v).partition(":")[0].strip() for v in points.values()]


def load_plugins() -> None:
    """Import every plugin module once per process (later calls return at once). A plugin that is named but not
    importable is a ConfigError naming it; an error raised inside a plugin's own code propagates unchanged."""
    global _DONE, _LOADING
    if _DONE:
        return
    with _LOCK:
        if _DONE or _LOADING:  # a plugin's own import looked something up: it sees what is registered so far
            return
        _LOADING = True
        try:
            for name in plugin_modules():
                import_plugin(name)
            _DONE = True
        finally:
            _LOADING = False


def import_plugin(name: str) -> None:
    """Import one plugin module (idempotent). A re-entrant call while that module is still importing (its own
    registrations look something up) returns at once: what it registered so far is there."""
    with _LOCK:
        if name in _LOADED:
            return
        _LOADED.add(name)
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            _LOADED.discard(name)
            if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
                raise ConfigError(f"raynas plugin {name!r} cannot be imported: no module named {exc.name!r}. "
                                  f"Install the package that provides it, put it on PYTHONPATH, or remove it "
                                  f"from {ENV} (plugins come from the {GROUP!r} entry points and {ENV})") from None
            raise
        except BaseException:
            _LOADED.discard(name)
            raise
