"""Ablation grids: the mean per grid point, heatmaps over two axes and the best of seeds, drawn from a grid's
tables (``raynas ablate`` draws them; ``raynas report`` redraws them from the tables the grid saved)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from raynas.plots.common import category, numeric, plt, save
from raynas.plots.registry import Run

#: ``extra(cells, means, axes, plots_dir)``: a method's own grid figures (its spec's ``ablation_plots``).
GridFigures = Callable[[pd.DataFrame, pd.DataFrame, list[str], Path], Sequence[Path | None]]


def ablation_axes(run: Run) -> list[str] | None:
    """The grid axes of an ablation run (its ``ablation.json``), None for any other run."""
    from raynas.results.ablation import ABLATION_FILE

    path = run.path / ABLATION_FILE
    if not path.is_file():
        return None
    try:
        grid = json.loads(path.read_text()).get("grid") or {}
    except ValueError:
        return None
    return [k.rsplit(".", 1)[-1] for k in grid]


def ablation_tables(run: Run, df: pd.DataFrame, axes: list[str],
                    stage: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An ablation run's (cells, means over seeds): the tables it saved (``ablation_<axes>[_mean].parquet``), or
    its results' rows of ``stage`` summarised when it has not summarised yet."""
    from raynas.results.ablation import grid_summary, summary_name

    name = summary_name(axes)
    cells_file, means_file = run.path / f"{name}.parquet", run.path / f"{name}_mean.parquet"
    if cells_file.is_file():
        cells = pd.read_parquet(cells_file)
        means = pd.read_parquet(means_file) if means_file.is_file() else grid_summary(cells, axes, stage=None)[1]
        return cells, means
    return grid_summary(df, axes, stage=stage)


def draw_ablation_plots(cells: pd.DataFrame, means: pd.DataFrame, axes: list[str], plots_dir: Path,
                        metrics: Sequence[tuple[str, str]], extra: GridFigures | None = None) -> list[Path]:
    """An ablation grid's plots: the mean of every ``(metric, direction)`` per grid point
    (``ablation_<axes>.png``), then ``extra``'s (a method's own, e.g. the best of seeds)."""
    from raynas.results.ablation import summary_name

    made = [draw_grid(means, axes, list(metrics), Path(plots_dir) / f"{summary_name(axes)}.png")]
    if extra is not None:
        made += extra(cells, means, axes, Path(plots_dir))
    return [Path(p) for p in made if p is not None]


def draw_grid(means: pd.DataFrame, axes: list[str], metrics: list[tuple[str, str]], out: Path,
              xlabel: str | None = None) -> Path | None:
    """One panel per metric: the mean (± std over seeds) per value of the first grid axis, one colour per value
    of the other axes; two numeric axes and one seed per point also fit a heatmap (see ``draw_heatmap``).
    A grid axis is a set of chosen values, so it is drawn as evenly spaced categories, points with error bars
    and no line between them (a line would claim values in between were measured)."""
    metrics = [(m, d) for m, d in metrics if f"{m}_mean" in means]
    if means.empty or not metrics:
        return None
    x, others = axes[0], axes[1:]
    categories = sorted(means[x].dropna().unique(), key=lambda v: (not isinstance(v, (int, float)), v))
    position = {category(v): i for i, v in enumerate(categories)}
    fig, panels = plt.subplots(1, len(metrics), figsize=(max(4.0, 1.0 + 0.9 * len(categories)) * len(metrics), 3.4),
                               squeeze=False)
    groups = list(means.groupby(others)) if others else [((), means)]
    for ax, (metric, direction) in zip(panels[0], metrics):
        for k, (key, g) in enumerate(groups):
            g = g[g[x].notna()]
            label = ", ".join(f"{o}={v}" for o, v in zip(others, key if isinstance(key, tuple) else (key,)))
            std = g[f"{metric}_std"].fillna(0.0) if f"{metric}_std" in g else None
            dodge = (k - (len(groups) - 1) / 2) * min(0.12, 0.6 / max(1, len(groups)))  # groups side by side
            xs = [position[category(v)] + dodge for v in g[x]]
            ax.errorbar(xs, g[f"{metric}_mean"], yerr=std, marker="o", ls="none", capsize=3, label=label or None)
        ax.set_xticks(range(len(categories)), [category(v) for v in categories])
        ax.set_xlim(-0.5, len(categories) - 0.5)
        ax.set_xlabel(xlabel or x)
        ax.set_ylabel(f"{metric} (mean ± std over seeds)", fontsize=8)
        ax.set_title(f"{metric} ({'higher' if direction == 'max' else 'lower'} is better)", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        if others:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out)


def draw_heatmap(means: pd.DataFrame, rows: str, cols: str, metric: str, out: Path, title: str = "") -> Path | None:
    """The mean of ``metric`` over a two-axis grid, annotated cell by cell."""
    if means.empty or f"{metric}_mean" not in means:
        return None
    table = means.pivot_table(index=rows, columns=cols, values=f"{metric}_mean")
    fig, ax = plt.subplots(figsize=(1.2 * len(table.columns) + 2, 0.8 * len(table.index) + 1.6))
    im = ax.imshow(table.values, cmap="viridis_r" if metric in ("fid", "kid_mean") else "viridis", aspect="auto")
    ax.set_xticks(range(len(table.columns)), [f"{c:g}" if isinstance(c, float) else str(c) for c in table.columns])
    ax.set_yticks(range(len(table.index)), [f"{r:g}" if isinstance(r, float) else str(r) for r in table.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            v = table.values[i, j]
            if v == v:
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(title or f"{metric} over {rows} × {cols}", fontsize=9)
    fig.tight_layout()
    return save(fig, out)


def draw_best_of_seeds(cells: pd.DataFrame, axes: list[str], out: Path, metric: str = "test_acc",
                       direction: str = "max", cost: tuple[str, ...] = ("search_gpu_seconds", "search_seconds"),
                       title: str = "") -> Path | None:
    """Per grid point (every combination of ``axes``, evenly spaced categories): the best ``metric`` over its
    seeds (every seed as a grey dot) in one panel, and the search cost (the first column of ``cost`` with a
    non-zero value; mean, min–max over the seeds) in the other, as a paper shows accuracy and search time per
    grid point, best of 3. No line joins the grid points: nothing was measured between them."""
    if cells.empty or metric not in cells or not axes or any(a not in cells for a in axes):
        return None
    values = numeric(cells, metric)
    if not values.notna().any():
        return None
    cost_col = next((c for c in cost if c in cells and (numeric(cells, c).fillna(0) > 0).any()), None)
    data = cells.assign(_metric=values, _cost=numeric(cells, cost_col) if cost_col else float("nan"))
    groups = sorted(data.groupby(list(axes), sort=True), key=lambda kv: kv[0])
    xs, labels, best, costs, spans = [], [], [], [], []
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(9.0, 1.6 * len(groups) + 3), 3.6))
    for pos, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        xs.append(float(pos))
        labels.append(", ".join(f"{a}={category(v)}" for a, v in zip(axes, key)) if len(axes) > 1
                      else category(key[0]))
        best.append(g["_metric"].max() if direction == "max" else g["_metric"].min())
        left.scatter([float(pos)] * len(g), g["_metric"], color="#999999", s=12, zorder=2,
                     label="every seed" if pos == 0 else None)
        c = g["_cost"].dropna()
        costs.append(c.mean() if len(c) else float("nan"))
        spans.append((costs[-1] - c.min(), c.max() - costs[-1]) if len(c) else (0.0, 0.0))
    left.plot(xs, best, marker="D", ls="none", color="C0", ms=7, zorder=3, label=f"best of seeds ({direction})")
    left.set_ylabel(metric)
    left.legend(fontsize=7)
    scale, unit = (86400.0, "GPU-days") if cost_col == "search_gpu_seconds" else (1.0, "seconds")
    if cost_col:
        yerr = [[s[0] / scale for s in spans], [s[1] / scale for s in spans]]
        right.errorbar(xs, [c / scale for c in costs], yerr=yerr, marker="s", ls="none", color="C1", capsize=3)
    right.set_ylabel(f"search cost ({unit}, mean, min-max)" if cost_col else "search cost (not recorded)")
    for ax in (left, right):
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, fontsize=7, rotation=0 if len(axes) == 1 else 20)
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_xlabel(axes[0] if len(axes) == 1 else " × ".join(axes))
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, out)
