"""DARTS-GAL's figures: every node's soft mask while pruning (``masks.png``, the pruned nodes marked at
``dartsgal.threshold``), the pruned genotype's diagram (``pruned.png``) and the ablation's accuracy against
parameters. They register themselves on import; drawing loads matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from raynas.plots.genotypes import genotype_figure
from raynas.plots.registry import ARCHITECTURES, WEIGHTS, Run, register_run_figure

if TYPE_CHECKING:
    import pandas as pd

def draw_mask_evolution(df: pd.DataFrame, out: Path, threshold: float = 0.0) -> Path | None:
    """Every node's soft mask against the pruning epoch, one panel per cell (first trial). A node whose last mask
    is at or below ``threshold`` (pruned) is dashed and ends in a red ×; the threshold is the grey line."""
    import json

    from matplotlib.ticker import MaxNLocator

    from raynas.plots.common import plt, save

    if "masks" not in df or "stage" not in df:
        return None
    rows = df[(df["stage"] == "prune") & df["masks"].notna()]
    if rows.empty:
        return None
    if "candidate_id" in rows:
        rows = rows[rows["candidate_id"] == rows["candidate_id"].iloc[0]]
    rows = rows.sort_values("epoch")
    tables = [json.loads(t) for t in rows["masks"]]
    xs = (rows["phase_epoch"] if "phase_epoch" in rows else rows["epoch"]).tolist()
    n = len(tables[-1])
    cols = min(5, n)
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.9 * cols, 2.3 * nrows + 0.4), squeeze=False, sharey=True)
    for c, ax in enumerate(axes.flat):
        if c >= n:
            ax.axis("off")
            continue
        pruned = 0
        for i in range(len(tables[-1][c])):
            values = [t[c][i] for t in tables]
            dead = values[-1] <= threshold
            pruned += dead
            ax.plot(xs, values, ls="--" if dead else "-", marker="o" if len(xs) < 4 else None, ms=3,
                    label=f"node {i}")
            if dead:
                ax.plot(xs[-1], values[-1], marker="x", color="red", ms=8, mew=2)
        ax.axhline(threshold, color="#999999", lw=0.8)
        ax.set_title(f"cell {c}: {pruned} of {len(tables[-1][c])} pruned", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.supxlabel("pruning epoch (dashed, red x: pruned at the end)", fontsize=8, y=0.1)
    fig.supylabel("soft mask", fontsize=8)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return save(fig, out, dpi=110)


def draw_pruning_tradeoff(cells: pd.DataFrame, axes: list[str], out: Path, x: str = "params",
                          y: str = "test_acc") -> Path | None:
    """Retrained test accuracy against parameters, one point per grid cell (labelled with its grid values), the
    unpruned baseline(s) as black stars (``baseline_params``, ``baseline_test_acc``): the pruning trade-off."""
    from raynas.plots.common import numeric, plt, save

    if cells.empty or x not in cells or y not in cells:
        return None
    d = cells.assign(_x=numeric(cells, x), _y=numeric(cells, y))
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    first = axes[0] if axes else None
    groups = d.groupby(first) if first and first in d else [("", d)]
    for key, g in groups:
        g = g.dropna(subset=["_x", "_y"])
        if g.empty:
            continue
        ax.scatter(g["_x"], g["_y"], s=30, label=f"{first}={key}" if first else None, zorder=3)
        for _, r in g.iterrows():
            label = ", ".join(f"{a}={r[a]}" for a in axes[1:] if a in r)
            if label:
                ax.annotate(label, (r["_x"], r["_y"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if "baseline_params" in d and "baseline_test_acc" in d:
        base = d.assign(_bx=numeric(d, "baseline_params"), _by=numeric(d, "baseline_test_acc")).dropna(
            subset=["_bx", "_by"])
        if not base.empty:
            ax.scatter(base["_bx"], base["_by"], marker="*", s=160, color="black", label="baseline (unpruned)",
                       zorder=4)
            ax.axvline(base["_bx"].mean(), color="black", lw=0.6, ls=":")
    if "all_pruned" in d:
        dead = d[d["all_pruned"].fillna(False).astype(bool)]
        if not dead.empty:
            names = sorted({", ".join(f"{a}={r[a]}" for a in axes if a in r) for _, r in dead.iterrows()})
            ax.text(0.01, 0.01, "every node pruned (nothing to retrain): " + "; ".join(names), transform=ax.transAxes,
                    fontsize=7, va="bottom")
    ax.set_xlabel(f"{x} (retrained pruned network)")
    ax.set_ylabel(f"{y} (retrained; reported, never selected on)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out)


def _masks(run: Run, df: pd.DataFrame) -> Path | None:
    threshold = (run.config.get("dartsgal") or {}).get("threshold", 0.0)
    return draw_mask_evolution(df, run.plots_dir / "masks.png", float(threshold))


register_run_figure("darts-gal masks", _masks, lambda run, df: "masks" in df and df["masks"].notna().any(),
                    order=WEIGHTS + 1)
genotype_figure("darts-gal pruned genotype", ("pruned.json",), order=ARCHITECTURES + 1)
