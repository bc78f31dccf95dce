"""The toy's own run figure: its ``toy_score`` per search epoch, drawn by ``raynas report`` (and at the end of a
search) for runs whose rows carry that column; registered on import like any method's figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from raynas.plots.registry import Run, register_run_figure


def applies(run: Run, df: pd.DataFrame) -> bool:
    """The toy's runs only (another run may carry a column of that name)."""
    return run.config.get("method") == "toy" and "toy_score" in df and df["toy_score"].notna().any()


def draw_toy_score(run: Run, df: pd.DataFrame) -> Path:
    import matplotlib.pyplot as plt

    from raynas.plots.common import save

    rows = df[df["toy_score"].notna()].sort_values("epoch")
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(rows["epoch"], rows["toy_score"], marker="o")
    ax.set(xlabel="epoch", ylabel="toy_score", title="toy: the chosen ops' α share")
    return save(fig, Path(run.plots_dir) / "toy_score.png")


register_run_figure("toy-score", draw_toy_score, applies)
