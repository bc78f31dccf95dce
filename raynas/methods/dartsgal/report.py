"""DARTS-GAL's plots: the masks of every cell over the pruning epochs, and the ablation's accuracy against
parameters with the baseline marked (drawn by ``raynas.plots``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def draw_masks(df: pd.DataFrame, out: Path, threshold: float = 0.0) -> Path | None:
    from raynas.plots import draw_mask_evolution

    return draw_mask_evolution(df, out, threshold)


def ablation_plots(cells: pd.DataFrame, means: pd.DataFrame, axes: list[str], plots_dir: Path) -> list[Path | None]:
    """``Method.ablation_plots``: retrained test accuracy against parameters per grid cell, the baseline marked."""
    from raynas.plots import draw_pruning_tradeoff
    from raynas.results.ablation import summary_name

    return [draw_pruning_tradeoff(cells, axes, plots_dir / f"{summary_name(axes)}_tradeoff.png")]
