"""Which result columns a method's tables show: a registry that each method fills from its own package.

A method writes its own columns into the run's results (``RunDir.append``); the shared code that prints its
outcome table (the search table of a differentiable method, DARTS-GAL's before/after table, DAMGAN's edge
ablation) asks here which of them to show, in which order. So a new method brings new columns without an edit
to the trainables or the CLI: one ``register_columns`` call beside its ``Method`` spec. Keys are method names,
or the name of a method's own command (``damgan-edge``) where that prints a table of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raynas.errors import ConfigError

_COLUMNS: dict[str, tuple[str, ...]] = {}


def register_columns(name: str, columns: Sequence[str]) -> tuple[str, ...]:
    """Record the result columns ``name`` writes and wants shown, in display order (a method's package calls
    this once at import; registering again replaces the list)."""
    cols = tuple(columns)
    if isinstance(columns, str) or not cols or not all(isinstance(c, str) and c for c in cols):
        raise ValueError(f"{name}: result columns must be a non-empty sequence of column names, got {columns!r}")
    if len(set(cols)) != len(cols):
        raise ValueError(f"{name}: result columns name a column twice: {cols!r}")
    _COLUMNS[name] = cols
    return cols


def result_columns(name: str) -> tuple[str, ...]:
    """The columns ``name`` registered. A name nobody registered yet loads the plugins once (a method
    registers when its package is imported); still unknown, it is a ConfigError naming the registered ones."""
    if name not in _COLUMNS:
        from raynas.plugins import load_plugins

        load_plugins()
    if name not in _COLUMNS:
        raise ConfigError(f"no result columns registered for {name!r} (its package calls "
                          f"raynas.results.schema.register_columns); registered: {', '.join(sorted(_COLUMNS))}")
    return _COLUMNS[name]


def shown_columns(df: Any, name: str) -> tuple[str, ...]:
    """The registered columns of ``name`` that the table ``df`` holds a value in (a column that is missing or
    empty throughout is left out), in registered order."""
    return tuple(c for c in result_columns(name) if c in df and df[c].notna().any())
