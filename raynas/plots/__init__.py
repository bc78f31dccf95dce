"""Plots drawn from a run's Parquet results (``raynas report RUN_DIR``), by concern:

- ``registry``: what a report draws, filled by the modules that bring a figure (light: no matplotlib);
- ``run``: ``draw_run_plots``, every registered figure that applies to a run;
- ``curves``: per-epoch curves, best per round; ``compare``: ``--compare``, any runs on the score they share;
- ``pareto``: candidates and fronts by round;
- ``grids``: ablation grids (means, heatmaps, best of seeds); ``alpha``: α per edge over a search;
- ``genotypes``: diagrams of the genotype files a run saved; ``common``: saving, labels, numbers.

A method's own figures live in its package (``raynas/methods/<name>/figures.py``) and register themselves.
The drawing names below load matplotlib only when first asked for, so registering stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from raynas.plots.registry import (
    RunFigure,
    alpha_ops,
    register_alpha_ops,
    register_run_figure,
    register_stage_order,
    run_figures,
    run_stages,
    unregister_run_figure,
)

_LAZY = {
    "draw_run_plots": "run",
    "draw_training_curves": "curves", "draw_round_curves": "curves", "draw_learning_curves": "curves",
    "round_bests": "curves", "stage_order": "curves", "draw_comparison": "compare",
    "draw_pareto": "pareto",
    "ablation_axes": "grids", "ablation_tables": "grids", "draw_ablation_plots": "grids", "draw_grid": "grids",
    "draw_heatmap": "grids", "draw_best_of_seeds": "grids",
    "draw_alpha_evolution": "alpha", "NEAR_UNIFORM_MARGIN": "alpha",
    "draw_genotype_files": "genotypes", "genotype_figure": "genotypes",
    "trial_labels": "common", "run_method": "common",
}


def __getattr__(name: str) -> Any:
    """``from raynas.plots import draw_grid`` imports the module that draws it (and matplotlib) on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"raynas.plots.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'raynas.plots' has no attribute {name!r}")


__all__ = ["RunFigure", "alpha_ops", "register_alpha_ops", "register_run_figure", "register_stage_order",
           "run_figures", "run_stages", "unregister_run_figure", *_LAZY]
