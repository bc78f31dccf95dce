"""The figures every method gets from its spec: an ablation grid's mean per grid point over the spec's
``ablation_metrics``, then the spec's own ``ablation_plots`` (a ``"module:function"`` path, loaded when drawn).
``raynas ablate`` draws them through ``draw_method_ablation``; ``raynas report`` redraws them through the run
figure registered here, from the tables the grid saved. Lives beside the method registry because the core's
plots never import it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from raynas.errors import ConfigError
from raynas.methods.spec import Method, get_method, load_object
from raynas.plots.registry import ABLATIONS, Run, register_run_figure

if TYPE_CHECKING:
    import pandas as pd

def draw_method_ablation(method: Method, cells: pd.DataFrame, means: pd.DataFrame, axes: list[str],
                         plots_dir: Path) -> list[Path]:
    """``method``'s ablation grid plots (``ablation_<axes>.png``, then its ``ablation_plots``)."""
    from raynas.plots.grids import draw_ablation_plots

    extra = load_object(method.ablation_plots) if method.ablation_plots else None
    return draw_ablation_plots(cells, means, axes, plots_dir, method.ablation_metrics, extra)


def _is_ablation(run: Run, df: pd.DataFrame) -> bool:
    from raynas.plots.grids import ablation_axes

    return ablation_axes(run) is not None


def _redraw(run: Run, df: pd.DataFrame) -> list[Path]:
    """An ablation run's grid plots from the tables it saved, or from its results when it has not summarised."""
    from raynas.plots.common import run_method
    from raynas.plots.grids import ablation_axes, ablation_tables

    axes, name = ablation_axes(run), run_method(run, df)
    if axes is None or name is None:
        return []
    try:
        method = get_method(name)
    except ConfigError:  # a method this version does not know: nothing to draw with
        return []
    cells, means = ablation_tables(run, df, axes, method.ablation_stage)
    return draw_method_ablation(method, cells, means, axes, run.plots_dir)


register_run_figure("ablation grid", _redraw, _is_ablation, order=ABLATIONS)
