"""Architecture weights: every op's α on every edge over a differentiable search (``alpha.png``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from raynas.plots.common import integer_ticks, plt, save, trial_labels
from raynas.plots.registry import WEIGHTS, alpha_ops, register_run_figure


def _op_names(genotype_json: str, edges: list[str]) -> dict[str, list[str]]:
    """Candidate op names per edge of the space a search's genotypes belong to (index labels otherwise)."""
    import json

    space = json.loads(genotype_json).get("space") if isinstance(genotype_json, str) else None
    ops = alpha_ops(space) if space else None
    if ops is not None:  # a format whose every edge chooses among the same ops
        return {e: list(ops) for e in edges}
    if space:  # a cell-group space: its candidates per edge name
        from raynas.spaces import get_space

        try:
            sp = get_space(space)
        except Exception:  # a space this process does not know: index labels
            return {}
        by_name = {name: list(cands) for name, (*_, cands) in zip(sp.edge_names(), sp.edges())}
        return {e: by_name[e] for e in edges if e in by_name}
    return {}


_SEED_STYLES = ("-", "--", ":", "-.")
NEAR_UNIFORM_MARGIN = 0.05  # an edge whose top two normalised weights are closer than this has not decided


def _normalised_margin(values: Sequence[float]) -> float:
    """Top1 − top2 of the weights normalised to sum 1 (0: uniform, undecided)."""
    v = [max(0.0, float(x)) for x in values]
    total = sum(v)
    p = sorted((x / total for x in v) if total > 0 else [1.0 / len(v)] * len(v), reverse=True)
    return p[0] - p[1] if len(p) > 1 else p[0]


def _alpha_ylim(values: list[float], softmax: bool) -> tuple[float, float]:
    """[0, 1] for softmax weights; otherwise the data's range widened to a minimum span (a quarter of the largest
    magnitude, at least 0.1), so noise of a few thousandths never fills a panel."""
    if softmax:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    span = max(hi - lo, 0.25 * max(abs(lo), abs(hi)), 0.1) * 1.1
    mid = (lo + hi) / 2
    return mid - span / 2, mid + span / 2


def draw_alpha_evolution(df: pd.DataFrame, out: Path, max_seeds: int = len(_SEED_STYLES)) -> Path | None:
    """The architecture weight of every op on every edge (all of them, every cell) against the search epoch, one
    panel per edge, one colour per op name across panels and one line style per seed (trial): how the search made
    up its mind. The title says when α is still near uniform (nothing decided yet)."""
    import json

    rows = df[df["alpha_table"].notna()]
    if "stage" in rows:
        rows = rows[rows["stage"] == "search"] if (rows["stage"] == "search").any() else rows
    if rows.empty:
        return None
    groups = list(rows.groupby("candidate_id", sort=False)) if "candidate_id" in rows else [("run", rows)]
    if "seed" in rows and all(g["seed"].nunique() == 1 for _, g in groups):
        groups.sort(key=lambda kv: kv[1]["seed"].iloc[0])
    shown = groups[:max_seeds]
    labels = trial_labels(shown)
    runs = []
    for _, g in shown:
        g = g.sort_values("epoch")
        runs.append((g["epoch"].tolist(), [json.loads(t) for t in g["alpha_table"]], g))
    last = runs[0][1][-1]
    edges = list(last)
    names = _op_names(runs[0][2]["genotype"].iloc[-1] if "genotype" in runs[0][2] else "", edges)
    op_names = {e: [names[e][i] if i < len(names.get(e, [])) else f"op {i}" for i in range(len(last[e]))]
                for e in edges}
    colours = list(dict.fromkeys(n for e in edges for n in op_names[e]))
    cmap = plt.get_cmap("tab10" if len(colours) <= 10 else "tab20")
    colour = {n: cmap(i % cmap.N) for i, n in enumerate(colours)}
    values = [v for _, tables, _ in runs for t in tables for e in edges for v in t.get(e, [])]
    softmax = all(0.0 <= v <= 1.0 for v in values) and all(
        abs(sum(t[e]) - 1.0) < 1e-3 for _, tables, _ in runs for t in tables for e in t)
    ylim = _alpha_ylim(values, softmax)
    cols = min(7, len(edges))
    nrows = -(-len(edges) // cols)
    legend_count = len(colours) + (len(runs) if len(runs) > 1 else 0)
    legend_h = 0.22 * -(-legend_count // 8) + 0.15  # inches: the legend's rows, under the x label
    height = 1.9 * nrows + 0.7 + legend_h + 0.3
    fig, axes = plt.subplots(nrows, cols, figsize=(2.3 * cols, height), squeeze=False, sharex=True, sharey=True)
    for ax, edge in zip(axes.flat, edges):
        for (epochs, tables, _), style in zip(runs, _SEED_STYLES):
            if any(edge not in t for t in tables):  # a trial of another space (raynas compare) has other edges
                continue
            for i, name in enumerate(op_names[edge]):
                ax.plot(epochs, [t[edge][i] for t in tables], ls=style, color=colour[name],
                        marker="o" if len(epochs) < 3 else None, ms=3, label=name)
        ax.set_title(edge, fontsize=7)
        ax.set_ylim(*ylim)
        integer_ticks(ax)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(edges):]:
        ax.axis("off")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colour[n], lw=2) for n in colours]
    legend = list(colours)
    if len(runs) > 1:
        handles += [Line2D([], [], color="black", ls=style) for _, style in zip(runs, _SEED_STYLES)]
        legend += [f"{label} ({style})" for label, style in zip(labels, _SEED_STYLES)]
    fig.legend(handles, legend, loc="lower center", ncol=min(8, len(legend)), fontsize=7)
    fig.supxlabel("search epoch", fontsize=8, y=(legend_h + 0.05) / height, va="bottom")
    fig.supylabel("softmax(α): the op's weight on the edge" if softmax else "α (architecture weight)", fontsize=8)
    margin = max(_normalised_margin(t[e]) for _, tables, _ in runs for t in tables[-1:] for e in edges if e in t)
    title = "α per edge over the search"
    if len(runs) == 1:
        title += f" ({labels[0]})" if labels[0] else ""
    else:
        title += ": " + ", ".join(labels) + (f" (first {len(runs)} of {len(groups)} trials)"
                                            if len(groups) > len(runs) else "")
    if margin < NEAR_UNIFORM_MARGIN:
        title += (f"\nα is still near uniform (largest top1 − top2 margin {margin:.3g} < {NEAR_UNIFORM_MARGIN}): "
                  "the search has not decided yet")
    fig.suptitle(title, fontsize=9)
    top = 1 - (0.22 * (title.count("\n") + 1) + 0.1) / height  # room for the title
    fig.tight_layout(rect=(0.01, (legend_h + 0.05) / height, 1, top))  # and the legend; the x label fits itself
    return save(fig, out, dpi=110)


register_run_figure("alpha", lambda run, df: draw_alpha_evolution(df, run.plots_dir / "alpha.png"),
                    lambda run, df: "alpha_table" in df and df["alpha_table"].notna().any(), order=WEIGHTS)
