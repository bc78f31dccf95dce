"""Plots drawn from a run's Parquet results (``raynas report RUN_DIR``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from raynas.results import RunDir, pareto_front  # noqa: E402


def _save(fig, out: Path, dpi: int = 120) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def _numeric(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce") if col in df else pd.Series(dtype=float)


def draw_training_curves(df: pd.DataFrame, out: Path) -> Path | None:
    """Losses and IS/FID against epoch, one line per trial."""
    if "epoch" not in df or df["epoch"].isna().all():
        return None
    panels = [c for c in ("d_loss", "g_loss", "is_mean", "fid", "kid_mean", "train_loss", "train_acc", "val_acc",
                          "test_acc") if c in df and _numeric(df, c).notna().any()]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    groups = list(df.groupby("candidate_id")) if "candidate_id" in df else [("run", df)]
    for ax, col in zip(axes[0], panels):
        for name, g in groups:
            g = g.assign(_v=_numeric(g, col)).dropna(subset=["_v"]).sort_values("epoch")
            ax.plot(g["epoch"], g["_v"], marker="o", ms=3, label=str(name)[:12])
        ax.set_xlabel("epoch")
        ax.set_title(col)
        ax.grid(alpha=0.3)
    if len(groups) > 1:
        axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, out)


def draw_pareto(df: pd.DataFrame, out: Path, x: str = "fid", y: str = "is_mean") -> Path | None:
    """All evaluated candidates (colour = round), each round's (x, y) Pareto front, the final one highlighted.

    The searcher ranks on all its objectives (e.g. IS, FID and params), so its final-round front
    (``rank == 0``) is ringed separately: a small network can be on it while off the 2-D front."""
    if x not in df or y not in df or "round" not in df:
        return None
    d = df.assign(_x=_numeric(df, x), _y=_numeric(df, y), _r=_numeric(df, "round")).dropna(subset=["_x", "_y"])
    if d.empty:
        return None
    stages = list(dict.fromkeys(d["stage"].dropna())) if "stage" in d else [None]  # search order: g, then d
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
            ranked = s[(s["_r"] == rounds[-1]) & (_numeric(s, "rank") == 0)]
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
    return _save(fig, out)


def round_bests(df: pd.DataFrame) -> pd.DataFrame:
    """Best IS and FID of every (stage, round) in search order, with ``step``: the round counted across
    stages (EAGAN's g then d), the x axis of the paper's learning curves (Figs. 6 and 7)."""
    d = df.assign(_r=_numeric(df, "round"), _is=_numeric(df, "is_mean"), _fid=_numeric(df, "fid")).dropna(subset=["_r"])
    if "stage" not in d:
        d = d.assign(stage="search")
    order = list(dict.fromkeys(d["stage"]))
    best = (d.groupby(["stage", "_r"]).agg(best_is=("_is", "max"), best_fid=("_fid", "min")).reset_index()
            .rename(columns={"_r": "round"}))
    best["_o"] = best["stage"].map(order.index)
    best = best.sort_values(["_o", "round"]).drop(columns="_o").reset_index(drop=True)
    best["step"] = range(len(best))
    return best


def draw_round_curves(df: pd.DataFrame, out: Path) -> Path | None:
    """Best IS and FID per round (per stage): the search's learning curve."""
    if "round" not in df or _numeric(df, "round").isna().all():
        return None
    return draw_learning_curves({"": df}, out, title_suffix=" per round")


def draw_learning_curves(runs: dict[str, pd.DataFrame], out: Path, title_suffix: str = "") -> Path | None:
    """Best IS and FID per round of one or more searches, rounds counted across stages; dashed lines mark
    where a run's next stage starts (compare decoupled vs coupled, or with vs without weight resetting)."""
    curves = {label: round_bests(df) for label, df in runs.items()}
    curves = {k: v for k, v in curves.items() if not v.empty}
    if not curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    for i, (label, c) in enumerate(curves.items()):
        color = f"C{i}"
        for stage, s in c.groupby("stage", sort=False):
            name = f"{label} {stage}".strip() if len(curves) > 1 or c["stage"].nunique() > 1 else label or None
            for ax, col in zip(axes, ("best_is", "best_fid")):
                ax.plot(s["step"], s[col], marker="o", ms=3, color=color if len(curves) > 1 else None, label=name)
        for boundary in c.loc[c["stage"] != c["stage"].shift(), "step"].iloc[1:]:
            for ax in axes:
                ax.axvline(boundary - 0.5, color=color, ls="--", lw=0.8, alpha=0.6)
    for ax, title in zip(axes, ("best IS", "best FID")):
        ax.set_xlabel("round (across stages)")
        ax.set_title(title + title_suffix)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)


def draw_run_plots(run: RunDir, df: pd.DataFrame | None = None) -> list[Path]:
    """Every plot that the run's results support, written to RUN_DIR/plots (``df``: its results, when the
    caller has read them already)."""
    df = run.read() if df is None else df
    plots = run.path / "plots"
    plots.mkdir(exist_ok=True)
    made = []
    if df.empty:
        return made
    has_rounds = "round" in df and _numeric(df, "round").notna().any()
    if has_rounds:
        made += [draw_pareto(df, plots / "pareto.png"), draw_round_curves(df, plots / "rounds.png")]
    else:
        made.append(draw_training_curves(df, plots / "curves.png"))
    if "alpha_table" in df and df["alpha_table"].notna().any():
        made.append(draw_alpha_evolution(df, plots / "alpha.png"))
    if "masks" in df and df["masks"].notna().any():  # DARTS-GAL's node masks while pruning
        threshold = (run.config.get("dartsgal") or {}).get("threshold", 0.0)
        made.append(draw_mask_evolution(df, plots / "masks.png", float(threshold)))
    if "regan_phase" in df and df["regan_phase"].notna().any():
        made.append(draw_regan_curves(df, plots / "regan.png"))
    for name in ("best_G.json", "best_D.json", "best.json"):
        if (run.path / name).is_file():
            from raynas.spaces import Genotype
            from raynas.spaces.draw import draw_genotype

            made.append(draw_genotype(Genotype.load(run.path / name), plots / name.replace(".json", ".png")))
    return [Path(p) for p in made if p is not None]


# ============================================================================ ablation grids
def _log2_axis(values) -> bool:
    vals = [float(v) for v in values]
    return len(vals) > 2 and all(v > 0 and float(v).is_integer() and (int(v) & (int(v) - 1)) == 0 for v in vals)


def draw_grid(means: pd.DataFrame, axes: list[str], metrics: list[tuple[str, str]], out: Path,
              xlabel: str | None = None) -> Path | None:
    """One panel per metric: the mean (± std over seeds) against the first grid axis, one line per value
    of the other axes; two numeric axes and one seed per point also fit a heatmap (see ``draw_heatmap``)."""
    metrics = [(m, d) for m, d in metrics if f"{m}_mean" in means]
    if means.empty or not metrics:
        return None
    x, others = axes[0], axes[1:]
    fig, panels = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    groups = means.groupby(others) if others else [((), means)]
    for ax, (metric, direction) in zip(panels[0], metrics):
        for key, g in groups:
            g = g.sort_values(x)
            label = ", ".join(f"{o}={v}" for o, v in zip(others, key if isinstance(key, tuple) else (key,)))
            std = g[f"{metric}_std"].fillna(0.0) if f"{metric}_std" in g else None
            xs = g[x] if pd.api.types.is_numeric_dtype(g[x]) else g[x].astype(str)
            ax.errorbar(xs, g[f"{metric}_mean"], yerr=std, marker="o", capsize=3, label=label or None)
        if pd.api.types.is_numeric_dtype(means[x]) and _log2_axis(means[x].unique()):
            ax.set_xscale("log", base=2)
            ticks = sorted(means[x].unique())
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.set_xlabel(xlabel or x)
        ax.set_title(f"{metric} ({'higher' if direction == 'max' else 'lower'} is better)", fontsize=9)
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)


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
    return _save(fig, out)


def draw_edge_ablation(table: pd.DataFrame, corr: dict, out: Path) -> Path | None:
    """Retrained IS against one edge's α weight, one labelled point per op (DAMGAN's Figs. 9–10)."""
    import math

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
    return _save(fig, out)


# ============================================================================ architecture weights
def _op_names(genotype_json: str, edges: list[str]) -> dict[str, list[str]]:
    """Candidate op names per edge of the space a search's genotypes belong to (index labels otherwise)."""
    import json

    space = json.loads(genotype_json).get("space") if isinstance(genotype_json, str) else None
    if space in ("darts", "swd-nas"):  # every edge chooses among the DARTS primitives
        from raynas.spaces.darts import PRIMITIVES

        return {e: list(PRIMITIVES) for e in edges}
    if space:  # a cell-group space: its candidates per edge name
        from raynas.spaces import get_space

        try:
            sp = get_space(space)
        except Exception:  # a space this process does not know: index labels
            return {}
        by_name = {name: list(cands) for name, (*_, cands) in zip(sp.edge_names(), sp.edges())}
        return {e: by_name[e] for e in edges if e in by_name}
    return {}


def draw_alpha_evolution(df: pd.DataFrame, out: Path, max_edges: int = 28) -> Path | None:
    """The architecture weight of every op on every edge against the search epoch (first trial), one panel
    per edge: how the search made up its mind."""
    import json

    rows = df[df["alpha_table"].notna()]
    if "stage" in rows:
        rows = rows[rows["stage"] == "search"] if (rows["stage"] == "search").any() else rows
    if rows.empty:
        return None
    first = rows["candidate_id"].iloc[0] if "candidate_id" in rows else None
    if first is not None:
        rows = rows[rows["candidate_id"] == first]
    rows = rows.sort_values("epoch")
    tables = [json.loads(t) for t in rows["alpha_table"]]
    edges = list(tables[-1])[:max_edges]
    names = _op_names(rows["genotype"].iloc[-1] if "genotype" in rows else "", edges)
    cols = min(7, len(edges))
    nrows = -(-len(edges) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.3 * cols, 1.9 * nrows + 0.6), squeeze=False, sharex=True)
    epochs = rows["epoch"].tolist()
    lines = {}
    for ax, edge in zip(axes.flat, edges):
        series = list(zip(*(t[edge] for t in tables)))
        for i, values in enumerate(series):
            label = names.get(edge, [])[i] if i < len(names.get(edge, [])) else f"op {i}"
            (line,) = ax.plot(epochs, values, marker="o" if len(epochs) < 3 else None, ms=3, label=label)
            lines[label] = line
        ax.set_title(edge, fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(edges):]:
        ax.axis("off")
    fig.legend(list(lines.values()), list(lines), loc="lower center", ncol=min(8, len(lines)), fontsize=7)
    fig.supxlabel("search epoch", fontsize=8, y=0.06)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return _save(fig, out, dpi=110)


# ============================================================================ best of seeds (SWD-NAS Fig. 4)
def draw_best_of_seeds(cells: pd.DataFrame, axes: list[str], out: Path, metric: str = "test_acc",
                       direction: str = "max", cost: tuple[str, ...] = ("search_gpu_seconds", "search_seconds"),
                       title: str = "") -> Path | None:
    """Per grid point (every combination of ``axes``): the best ``metric`` over its seeds (every seed as a grey
    dot) in one panel, and the search cost (the first column of ``cost`` with a non-zero value; mean, min–max
    over the seeds) in the other, as the paper's Fig. 4 shows accuracy and search time per k, best of 3."""
    if cells.empty or metric not in cells or not axes or any(a not in cells for a in axes):
        return None
    values = _numeric(cells, metric)
    if not values.notna().any():
        return None
    cost_col = next((c for c in cost if c in cells and (_numeric(cells, c).fillna(0) > 0).any()), None)
    data = cells.assign(_metric=values, _cost=_numeric(cells, cost_col) if cost_col else float("nan"))
    groups = sorted(data.groupby(list(axes), sort=True), key=lambda kv: kv[0])
    numeric_x = len(axes) == 1 and pd.api.types.is_numeric_dtype(cells[axes[0]]) \
        and not pd.api.types.is_bool_dtype(cells[axes[0]])
    xs, labels, best, costs, spans = [], [], [], [], []
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for pos, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        x = float(key[0]) if numeric_x else float(pos)
        xs.append(x)
        labels.append(", ".join(f"{a}={v}" for a, v in zip(axes, key)) if len(axes) > 1 else str(key[0]))
        best.append(g["_metric"].max() if direction == "max" else g["_metric"].min())
        left.scatter([x] * len(g), g["_metric"], color="#999999", s=12, zorder=2)
        c = g["_cost"].dropna()
        costs.append(c.mean() if len(c) else float("nan"))
        spans.append((costs[-1] - c.min(), c.max() - costs[-1]) if len(c) else (0.0, 0.0))
    left.plot(xs, best, marker="o", color="C0", zorder=3, label=f"best of seeds ({direction})")
    left.set_ylabel(metric)
    left.legend(fontsize=7)
    scale, unit = (86400.0, "GPU-days") if cost_col == "search_gpu_seconds" else (1.0, "seconds")
    if cost_col:
        yerr = [[s[0] / scale for s in spans], [s[1] / scale for s in spans]]
        right.errorbar(xs, [c / scale for c in costs], yerr=yerr, marker="s", color="C1", capsize=3)
    right.set_ylabel(f"search cost ({unit}, mean, min-max)" if cost_col else "search cost (not recorded)")
    for ax in (left, right):
        if numeric_x and _log2_axis(xs):
            ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{x:g}" for x in xs] if numeric_x else labels, fontsize=7,
                           rotation=0 if numeric_x or len(axes) == 1 else 20)
        ax.set_xlabel(axes[0] if len(axes) == 1 else " × ".join(axes))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


# ============================================================================ node pruning (DARTS-GAL)
def draw_mask_evolution(df: pd.DataFrame, out: Path, threshold: float = 0.0) -> Path | None:
    """Every node's soft mask against the pruning epoch, one panel per cell (first trial). A node whose last mask
    is at or below ``threshold`` (pruned) is dashed and ends in a red ×; the threshold is the grey line."""
    import json

    from matplotlib.ticker import MaxNLocator

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
    return _save(fig, out, dpi=110)


def draw_pruning_tradeoff(cells: pd.DataFrame, axes: list[str], out: Path, x: str = "params",
                          y: str = "test_acc") -> Path | None:
    """Retrained test accuracy against parameters, one point per grid cell (labelled with its grid values), the
    unpruned baseline(s) as black stars (``baseline_params``, ``baseline_test_acc``): the pruning trade-off."""
    if cells.empty or x not in cells or y not in cells:
        return None
    d = cells.assign(_x=_numeric(cells, x), _y=_numeric(cells, y))
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
        base = d.assign(_bx=_numeric(d, "baseline_params"), _by=_numeric(d, "baseline_test_acc")).dropna(
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
    return _save(fig, out)


# ============================================================================ Re-GAN
_PHASE_COLORS = {"warmup": "0.85", "sparse": "tab:orange", "dense": "tab:blue"}


def draw_regan_curves(df: pd.DataFrame, out: Path, max_runs: int = 12) -> Path | None:
    """Re-GAN runs: the measured sparsity of G (overall, min–max over tensors shaded) and FID against the epoch,
    with each epoch's phase (warm-up, sparse, dense) shaded behind; one row of panels per trial."""
    if "regan_phase" not in df:
        return None
    rows = df[df["regan_phase"].notna() & (df["regan_phase"].astype(str) != "")]
    if "stage" in rows:
        rows = rows[rows["stage"] == "train"]
    if rows.empty:
        return None
    groups = list(rows.groupby("candidate_id", sort=False))[:max_runs] if "candidate_id" in rows else [("run", rows)]
    fig, axes = plt.subplots(len(groups), 2, figsize=(9.5, 2.9 * len(groups)), squeeze=False)
    for (name, g), (ax_s, ax_f) in zip(groups, axes):
        g = g.sort_values("epoch")
        epochs = _numeric(g, "epoch").tolist()
        for ax in (ax_s, ax_f):
            for e, phase in zip(epochs, g["regan_phase"]):
                ax.axvspan(e - 1, e, color=_PHASE_COLORS.get(str(phase), "white"), alpha=0.25, lw=0)
            ax.set_xlim(min(epochs) - 1, max(epochs))
            ax.set_xlabel("epoch (shaded: the epoch's phase)")
            ax.grid(alpha=0.3)
        ax_s.plot(epochs, _numeric(g, "regan_sparsity"), marker="o", ms=3, color="black", label="overall")
        if "regan_sparsity_min" in g and "regan_sparsity_max" in g:
            ax_s.fill_between(epochs, _numeric(g, "regan_sparsity_min"), _numeric(g, "regan_sparsity_max"),
                              color="black", alpha=0.12, label="min–max over tensors")
        ax_s.set_ylim(-0.02, 1.0)
        ax_s.set_title(f"sparsity of G at the epoch's end ({str(name)[:16]})", fontsize=9)
        fid = g.assign(_v=_numeric(g, "fid")).dropna(subset=["_v"])
        if not fid.empty:
            ax_f.plot(fid["epoch"], fid["_v"], marker="o", ms=3, color="tab:red")
        ax_f.set_title("FID of the EMA generator (lower is better)", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.35) for c in _PHASE_COLORS.values()]
    fig.legend(handles, list(_PHASE_COLORS), loc="upper center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (2.9 * len(groups))))
    return _save(fig, out)


def draw_regan_ablation(cells: pd.DataFrame, means: pd.DataFrame, axes: list[str], plots_dir: Path) -> list[Path]:
    """``raynas ablate regan``: an FID heatmap over sparsity × interval (per data fraction when that is an axis;
    the Re-GAN-off baseline's FID in the title), and FID against the training FLOPs of every cell."""
    out: list[Path] = []
    if cells.empty or "fid" not in cells:
        return out
    cells = cells.assign(_fid=_numeric(cells, "fid"), _flops=_numeric(cells, "train_flops"))
    enabled = cells["enabled"].astype(bool) if "enabled" in cells else pd.Series(True, index=cells.index)
    split = "fraction" if "fraction" in cells and cells["fraction"].nunique() > 1 else None
    parts = [(None, cells, enabled)] if split is None else [
        (v, cells[cells[split] == v], enabled[cells[split] == v]) for v in sorted(cells[split].dropna().unique())]
    for value, part, on in parts:
        tag = "" if value is None else f"_fraction{value:g}"
        base = part.loc[~on, "_fid"].dropna()
        note = f"; Re-GAN off: {base.mean():.3g}" if not base.empty else ""
        if {"sparsity", "interval"} <= set(part.columns) and on.any():
            grid = (part[on].groupby(["sparsity", "interval"])["_fid"].mean().rename("fid_mean").reset_index())
            title = f"FID over sparsity × interval{'' if value is None else f' (data.fraction={value:g})'}{note}"
            out.append(draw_heatmap(grid, "sparsity", "interval", "fid", plots_dir / f"regan_fid_heatmap{tag}.png",
                                    title=title))
    if cells["_flops"].notna().any():
        fig, ax = plt.subplots(figsize=(5.6, 4.0))
        markers = "osD^v<>p*h"
        for i, (value, part, on) in enumerate(parts):
            label = "" if value is None else f"fraction {value:g}: "
            sc = ax.scatter(part.loc[on, "_flops"], part.loc[on, "_fid"], marker=markers[i % len(markers)], s=36,
                            c=_numeric(part[on], "sparsity") if "sparsity" in part else None, cmap="viridis",
                            vmin=0, vmax=1, label=f"{label}Re-GAN")
            if "interval" in part:
                for _, r in part[on].iterrows():
                    ax.annotate(f"g={r['interval']:g}" if r["interval"] == r["interval"] else "",
                                (r["_flops"], r["_fid"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
            ax.scatter(part.loc[~on, "_flops"], part.loc[~on, "_fid"], marker="X", s=70, color="red",
                       label=f"{label}Re-GAN off")
        if "sparsity" in cells and enabled.any():
            fig.colorbar(sc, ax=ax, label="sparsity")
        ax.set_xlabel("training FLOPs (pruned weights skipped)")
        ax.set_ylabel("FID (lower is better)")
        ax.set_title("FID against training cost, one point per cell and seed", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        out.append(_save(fig, plots_dir / "regan_fid_vs_flops.png"))
    return [p for p in out if p is not None]
