"""A population search's candidates by round and each round's Pareto front (``pareto.png``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from raynas.plots.common import has_rounds, numeric, plt, save
from raynas.plots.curves import stage_order
from raynas.plots.registry import CURVES, register_run_figure, run_stages
from raynas.results import pareto_front


def draw_pareto(df: pd.DataFrame, out: Path, x: str = "fid", y: str = "is_mean",
                stages: Sequence[str] | None = None) -> Path | None:
    """All evaluated candidates (colour = round), each round's (x, y) Pareto front, the final one highlighted;
    one panel per stage in the order they ran (``stages``, see ``registry.run_stages``).

    The searcher ranks on all its objectives (e.g. IS, FID and params), so its final-round front
    (``rank == 0``) is ringed separately: a small network can be on it while off the 2-D front."""
    if x not in df or y not in df or "round" not in df:
        return None
    d = df.assign(_x=numeric(df, x), _y=numeric(df, y), _r=numeric(df, "round")).dropna(subset=["_x", "_y"])
    if d.empty:
        return None
    stages = stage_order(d, stages) or [None]  # the order they ran in, e.g. g, then d
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 4.2), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        s = d if stage is None else d[d["stage"] == stage]
        sc = ax.scatter(s["_x"], s["_y"], c=s["_r"], cmap="viridis", s=14, alpha=0.7)
        rounds = sorted(s["_r"].unique())
        cmap = plt.get_cmap("viridis")
        for r in rounds:  # every round's (IS, FID) front, faint; the last one bold
            front = pareto_front(s[s["_r"] == r], [(x, "min"), (y, "max")]).sort_values(x)
            last = r == rounds[-1]
            shade = cmap(0.0 if len(rounds) == 1 else (r - rounds[0]) / (rounds[-1] - rounds[0]))
            ax.plot(pd.to_numeric(front[x]), pd.to_numeric(front[y]), "-o" if last else "-",
                    color="red" if last else shade, ms=5, lw=1.4 if last else 0.8, alpha=1.0 if last else 0.5,
                    label="final round's front" if last else None)
        if "rank" in s:
            ranked = s[(s["_r"] == rounds[-1]) & (numeric(s, "rank") == 0)]
            ax.scatter(ranked["_x"], ranked["_y"], s=80, facecolors="none", edgecolors="black", linewidths=1.2,
                       label="final round, searcher rank 0 (all objectives)")
        ax.set_xlabel(f"{x} (lower is better)")
        ax.set_ylabel(f"{y} (higher is better)")
        ax.set_title(f"{stage or 'search'}: candidates by round")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        cbar = fig.colorbar(sc, ax=ax, label="round")
        cbar.set_ticks(rounds[:: max(1, len(rounds) // 10)])  # rounds are integers
    fig.tight_layout()
    return save(fig, out)


register_run_figure("pareto", lambda run, df: draw_pareto(df, run.plots_dir / "pareto.png", stages=run_stages(run)),
                    lambda run, df: has_rounds(df), order=CURVES)

