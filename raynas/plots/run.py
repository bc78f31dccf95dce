"""Every figure a run supports, drawn into ``RUN_DIR/plots``: the one place a finished run and ``raynas report``
both draw through, so a report redraws everything the run drew."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from raynas.plots.registry import run_figures
from raynas.results import RunDir


def draw_run_plots(run: RunDir, df: pd.DataFrame | None = None) -> list[Path]:
    """Draw every registered figure (``registry.register_run_figure``) that applies to the run, in the registry's
    order, to RUN_DIR/plots (``df``: its results, when the caller has read them already); the paths drawn."""
    df = run.read() if df is None else df
    (run.path / "plots").mkdir(exist_ok=True)
    if df.empty:
        return []
    made: list[Path | str | None] = []
    for figure in run_figures():
        if not figure.applies(run, df):
            continue
        drawn = figure.draw(run, df)
        made += [drawn] if drawn is None or isinstance(drawn, (str, Path)) else list(drawn)
    return [Path(p) for p in made if p is not None]
