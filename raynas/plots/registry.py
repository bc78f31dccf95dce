"""What a run's report draws, filled by the modules that define it: figures, stage orders, α column names.

A module that brings a figure registers it when it is imported (the core's own in ``raynas.plots``, a method's in
``raynas/methods/<name>/figures.py``), so ``draw_run_plots`` and ``raynas report`` draw every registered figure
that applies to a run without the shared plot code learning a method's name, config section or columns.

Light on purpose (no matplotlib, no pandas): a method package imports this at start-up to register, and the
drawers import what they draw with only when they draw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd


class Run(Protocol):
    """What a figure reads of a run (a ``raynas.results.RunDir``): typed by use, so that registering a figure
    never imports the results layer."""

    path: Path
    config: dict[str, Any]

    @property
    def plots_dir(self) -> Path: ...

    def read(self) -> pd.DataFrame: ...


#: ``draw(run, df)``: the figure(s) drawn into ``run.plots_dir`` from the run's files and results ``df``: a path,
#: several, or None (nothing to draw after all).
RunFigureDrawer = Callable[["Run", "pd.DataFrame"], "Path | Iterable[Path | None] | None"]
#: ``applies(run, df)``: whether the figure belongs to this run at all (its columns or files are there).
RunFigureTest = Callable[["Run", "pd.DataFrame"], bool]

# Where a figure comes in a report's list (lower first; ties: the order they registered), so that the list
# reads the same whichever module was imported first: a search's curves, then its weights, then architectures.
CURVES = 10
WEIGHTS = 20
METHOD_CURVES = 30
ARCHITECTURES = 40
ABLATIONS = 50


def _always(run: Run, df: pd.DataFrame) -> bool:
    return True


@dataclass(frozen=True)
class RunFigure:
    """One figure a run's report can draw (``name`` identifies it: registering a name again replaces it)."""

    name: str
    draw: RunFigureDrawer
    applies: RunFigureTest = _always
    order: int = ABLATIONS + 10


_FIGURES: dict[str, RunFigure] = {}


def register_run_figure(name: str, draw: RunFigureDrawer, applies: RunFigureTest | None = None, *,
                        order: int = ABLATIONS + 10) -> RunFigure:
    """Register a figure that ``draw_run_plots`` (a finished run, ``raynas report``) draws for every run it
    ``applies`` to (default: every run with results; ``draw`` may still return None)."""
    figure = RunFigure(name, draw, applies or _always, order)
    _FIGURES[name] = figure
    return figure


def unregister_run_figure(name: str) -> None:
    """Forget a figure (a test's own, once the test is done)."""
    _FIGURES.pop(name, None)


#: The core's own figure modules (each registers its figures on import), loaded with the plug-ins.
CORE_FIGURE_MODULES = ("raynas.plots.pareto", "raynas.plots.curves", "raynas.plots.alpha", "raynas.plots.genotypes")


def run_figures() -> list[RunFigure]:
    """Every registered figure in the order a report lists them (``order``, then registration)."""
    import importlib

    _load()
    for module in CORE_FIGURE_MODULES:
        importlib.import_module(module)
    position = {name: i for i, name in enumerate(_FIGURES)}
    return sorted(_FIGURES.values(), key=lambda f: (f.order, position[f.name]))


# ============================================================================ stage order
#: ``stages(run)``: the order a run's stages ran in, from its config (empty or None: this provider has no say).
StageOrder = Callable[["Run"], "Sequence[str] | None"]
_STAGE_ORDERS: dict[str, StageOrder] = {}


def register_stage_order(name: str, stages: StageOrder) -> None:
    """Let a method say in which order its stages ran (a run's result parts are read in file-name order, not
    the order they were written); the curves and Pareto panels follow it."""
    _STAGE_ORDERS[name] = stages


def run_stages(run: Run) -> list[str]:
    """The order a run's stages ran in: the first registered provider that knows ([] when none does)."""
    _load()
    for stages in _STAGE_ORDERS.values():
        found = stages(run)
        if found:
            return list(found) if isinstance(found, (list, tuple)) else [str(found)]
    return []


# ============================================================================ α column names
_ALPHA_OPS: dict[str, tuple[str, ...]] = {}


def register_alpha_ops(space: str, ops: Sequence[str]) -> None:
    """Name the columns of α for a genotype format whose every edge chooses among the same ``ops`` (in α's
    column order); a cell-group space needs none, its edges name their own candidates."""
    _ALPHA_OPS[space] = tuple(ops)


def alpha_ops(space: str) -> tuple[str, ...] | None:
    """The op names of every edge's α in ``space``, None when no module registered them."""
    _load()
    return _ALPHA_OPS.get(space)


def _load() -> None:
    from raynas.plugins import load_plugins

    load_plugins()


__all__ = ["ABLATIONS", "ARCHITECTURES", "CORE_FIGURE_MODULES", "CURVES", "METHOD_CURVES", "WEIGHTS", "Run",
           "RunFigure", "RunFigureDrawer", "RunFigureTest", "StageOrder", "alpha_ops", "register_alpha_ops",
           "register_run_figure", "register_stage_order", "run_figures", "run_stages", "unregister_run_figure"]
