"""DARTS-GAL's report: the ablation's accuracy against parameters with the baseline marked (drawn by
``figures``, like the mask plot), and the warning for unreduced cells."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def unreduced_warning(unreduced: list[int], flops: float, baseline_flops: float) -> str | None:
    """Fewer parameters can cost more compute: say so when pruning emptied a reduction cell."""
    if not unreduced:
        return None
    return (f"warning: reduction cell(s) {unreduced} lost every node and pass their input through unreduced, so "
            f"later cells run on larger maps: {int(flops):,} FLOPs/image against the baseline's "
            f"{int(baseline_flops):,}. Lower dartsgal.lam to keep a node there")



def ablation_plots(cells: pd.DataFrame, means: pd.DataFrame, axes: list[str], plots_dir: Path) -> list[Path | None]:
    """``Method.ablation_plots``: retrained test accuracy against parameters per grid cell, the baseline marked."""
    from raynas.methods.dartsgal.figures import draw_pruning_tradeoff
    from raynas.results.ablation import summary_name

    return [draw_pruning_tradeoff(cells, axes, plots_dir / f"{summary_name(axes)}_tradeoff.png")]
