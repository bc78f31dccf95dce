"""DAMGAN's edge ablation figure (``ablation_edge.png``: retrained IS against one edge's α weight, one labelled
point per op, the paper's Figs. 9–10), drawn when the ablation finishes and redrawn by ``raynas report`` from the
table and correlation it saved. It registers itself on import; drawing loads matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from raynas.plots.registry import ABLATIONS, Run, register_run_figure

if TYPE_CHECKING:
    import pandas as pd

def draw_edge_ablation(table: pd.DataFrame, corr: dict, out: Path) -> Path | None:
    """Retrained IS against one edge's α weight, one labelled point per op (DAMGAN's Figs. 9–10)."""
    import math

    from raynas.plots.common import plt, save

    if table.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.scatter(table["alpha_weight"], table["is_mean"], s=30)
    for _, r in table.iterrows():
        ax.annotate(str(r["op"]), (r["alpha_weight"], r["is_mean"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    c = corr.get("is", {})

    def fmt(v) -> str:
        return "n/a" if v is None or not math.isfinite(v) else f"{v:.2f}"

    ax.set_title(f"{corr['edge']} ({corr.get('selector')}): Pearson {fmt(c.get('pearson'))}, "
                 f"Spearman {fmt(c.get('spearman'))}", fontsize=9)
    ax.set_xlabel("architecture weight of the op (α)")
    ax.set_ylabel("IS of the retrained subnet")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, out)


def _saved(run: Run, df: pd.DataFrame) -> bool:
    from raynas.results.ablation import EDGE_CORRELATION, EDGE_SUMMARY

    return (run.path / EDGE_SUMMARY).is_file() and (run.path / EDGE_CORRELATION).is_file()


def _redraw(run: Run, df: pd.DataFrame) -> Path | None:
    import json

    import pandas as pd

    from raynas.results.ablation import EDGE_CORRELATION, EDGE_SUMMARY

    corr = json.loads((run.path / EDGE_CORRELATION).read_text())
    return draw_edge_ablation(pd.read_parquet(run.path / EDGE_SUMMARY), corr, run.plots_dir / "ablation_edge.png")


register_run_figure("damgan edge ablation", _redraw, _saved, order=ABLATIONS + 1)
