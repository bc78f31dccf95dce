"""Plots drawn from a run's Parquet results (``raynas report RUN_DIR``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


_STAGE_ORDER = ("g", "d", "gd", "search", "prune", "retrain", "train")  # the order stages run in, when unrecorded


def run_stages(run: RunDir) -> list[str]:
    """The order a run's stages ran in: EAGAN's ``eagan.stages`` from its config (its result parts are read in
    file-name order, so ``d-round000`` comes before ``g-round000`` though g ran first)."""
    stages = (run.config.get("eagan") or {}).get("stages") or []
    return list(stages) if isinstance(stages, (list, tuple)) else [str(stages)]


def stage_order(df: pd.DataFrame, stages: Sequence[str] | None = None) -> list:
    """The stages present in ``df`` in the order they ran: ``stages`` first, then the usual order, then the rest."""
    present = list(dict.fromkeys(df["stage"].dropna())) if "stage" in df else []
    known = [s for s in (*(stages or ()), *_STAGE_ORDER) if s in present]
    return list(dict.fromkeys([*known, *present]))


def trial_labels(groups: Sequence[tuple[Any, pd.DataFrame]], prefer: Sequence[str] = ()) -> list[str]:
    """A readable label per trial (group of rows): the grid values and seed that tell the trials apart (the
    ``prefer`` columns first, e.g. an ablation's axes, then ``seed``), never the Tune trial id; ``trial N`` when
    nothing in the rows tells them apart."""
    def constant(col: str) -> bool:
        return all(col in g and g[col].nunique(dropna=False) == 1 for _, g in groups)

    def value(g: pd.DataFrame, col: str) -> str:
        v = g[col].iloc[0]
        return f"{v:g}" if isinstance(v, float) else str(v)

    cols = [c for c in dict.fromkeys([*prefer, "seed"]) if constant(c)]
    cols = [c for c in cols if len({value(g, c) for _, g in groups}) > 1 or c == "seed"]
    labels = [", ".join(f"{c}={value(g, c)}" for c in cols) for _, g in groups]
    if len(groups) > 1 and len(set(labels)) < len(groups):
        labels = [f"{lab}, trial {i + 1}" if lab else f"trial {i + 1}" for i, lab in enumerate(labels)]
    return labels


def _integer_ticks(ax: Any, axis: str = "x") -> None:
    from matplotlib.ticker import MaxNLocator

    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))


def draw_training_curves(df: pd.DataFrame, out: Path, label_by: Sequence[str] = ()) -> Path | None:
    """Losses and IS/FID against epoch, one line per trial, labelled by its seed or grid values (``label_by``)."""
    if "epoch" not in df or df["epoch"].isna().all():
        return None
    panels = [c for c in ("d_loss", "g_loss", "is_mean", "fid", "kid_mean", "train_loss", "train_acc", "val_acc",
                          "test_acc") if c in df and _numeric(df, c).notna().any()]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    groups = list(df.groupby("candidate_id", sort=False)) if "candidate_id" in df else [("run", df)]
    labels = trial_labels(groups, label_by)
    for ax, col in zip(axes[0], panels):
        for (_, g), label in zip(groups, labels):
            g = g.assign(_v=_numeric(g, col)).dropna(subset=["_v"]).sort_values("epoch")
            ax.plot(g["epoch"], g["_v"], marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(col)
        _integer_ticks(ax)
        ax.grid(alpha=0.3)
    if len(groups) > 1:
        axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, out)


def draw_pareto(df: pd.DataFrame, out: Path, x: str = "fid", y: str = "is_mean",
                stages: Sequence[str] | None = None) -> Path | None:
    """All evaluated candidates (colour = round), each round's (x, y) Pareto front, the final one highlighted;
    one panel per stage in the order they ran (``stages``, e.g. the run's ``eagan.stages``).

    The searcher ranks on all its objectives (e.g. IS, FID and params), so its final-round front
    (``rank == 0``) is ringed separately: a small network can be on it while off the 2-D front."""
    if x not in df or y not in df or "round" not in df:
        return None
    d = df.assign(_x=_numeric(df, x), _y=_numeric(df, y), _r=_numeric(df, "round")).dropna(subset=["_x", "_y"])
    if d.empty:
        return None
    stages = stage_order(d, stages) or [None]  # the order they ran in: g, then d
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


def round_bests(df: pd.DataFrame, stages: Sequence[str] | None = None) -> pd.DataFrame:
    """Best IS and FID of every (stage, round) in the order the stages ran (``stages``, see ``stage_order``), with
    ``step``: the round counted across stages (EAGAN's g then d), the x axis of the paper's learning curves
    (Figs. 6 and 7)."""
    d = df.assign(_r=_numeric(df, "round"), _is=_numeric(df, "is_mean"), _fid=_numeric(df, "fid")).dropna(subset=["_r"])
    if "stage" not in d:
        d = d.assign(stage="search")
    order = stage_order(d, stages)
    best = (d.groupby(["stage", "_r"]).agg(best_is=("_is", "max"), best_fid=("_fid", "min")).reset_index()
            .rename(columns={"_r": "round"}))
    best["_o"] = best["stage"].map(order.index)
    best = best.sort_values(["_o", "round"]).drop(columns="_o").reset_index(drop=True)
    best["step"] = range(len(best))
    return best


def draw_round_curves(df: pd.DataFrame, out: Path, stages: Sequence[str] | None = None) -> Path | None:
    """Best IS and FID per round (per stage): the search's learning curve."""
    if "round" not in df or _numeric(df, "round").isna().all():
        return None
    return draw_learning_curves({"": df}, out, title_suffix=" per round", stages={"": stages or ()})


_MARKERS = "os^Dv<>ph*"


def draw_learning_curves(runs: dict[str, pd.DataFrame], out: Path, title_suffix: str = "",
                         stages: dict[str, Sequence[str]] | None = None) -> Path | None:
    """Best IS and FID per round of one or more searches, rounds counted across stages in the order they ran
    (``stages``: per run label); every stage of every run its own colour (every run its own marker), dashed
    lines where a run's next stage starts (compare decoupled vs coupled, or with vs without weight resetting)."""
    curves = {label: round_bests(df, (stages or {}).get(label)) for label, df in runs.items()}
    curves = {k: v for k, v in curves.items() if not v.empty}
    if not curves:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    k = 0
    for i, (label, c) in enumerate(curves.items()):
        for stage, s in c.groupby("stage", sort=False):
            name = f"{label} {stage}" if len(curves) > 1 else f"stage {stage}"
            for ax, col in zip(axes, ("best_is", "best_fid")):
                ax.plot(s["step"], s[col], marker=_MARKERS[i % len(_MARKERS)], ms=4, color=f"C{k % 10}", label=name)
            k += 1
        for boundary in c.loc[c["stage"] != c["stage"].shift(), "step"].iloc[1:]:
            for ax in axes:
                ax.axvline(boundary - 0.5, color="#777777", ls="--", lw=0.8, alpha=0.7)
    for ax, title in zip(axes, ("best IS", "best FID")):
        ax.set_xlabel("round (across stages)")
        ax.set_title(title + title_suffix)
        _integer_ticks(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)


def run_method(run: RunDir, df: pd.DataFrame | None = None) -> str | None:
    """The method a run ran (its config's ``method``, else its results' ``method`` column)."""
    method = run.config.get("method")
    if method:
        return str(method)
    df = run.read() if df is None else df
    values = list(dict.fromkeys(df["method"].dropna())) if "method" in df else []
    return str(values[0]) if len(values) == 1 else None


def draw_comparison(run: RunDir, others: Sequence[RunDir], out: Path) -> Path | None:
    """``raynas report A --compare B ...``: the best IS/FID per round of every run, each run's stages in the order
    they ran. Runs of different methods are refused (ConfigError) rather than silently drawn without B."""
    from raynas.errors import ConfigError

    runs: dict[str, pd.DataFrame] = {}
    stages: dict[str, Sequence[str]] = {}
    methods: dict[str, str | None] = {}
    for i, r in enumerate([run, *others]):
        label = r.path.name
        label = label if label not in runs else str(r.path) if str(r.path) not in runs else f"{label} ({i + 1})"
        runs[label] = r.read()
        stages[label] = run_stages(r)
        methods[label] = run_method(r, runs[label])
    if len({m for m in methods.values()}) > 1:
        listed = ", ".join(f"{label} ({m or 'unknown method'})" for label, m in methods.items())
        raise ConfigError(f"--compare draws the best IS/FID per round of searches of one method; these runs ran "
                          f"different methods: {listed}. Compare runs of the same method (e.g. two eagan searches)")
    without = [label for label, df in runs.items() if round_bests(df).empty]
    if without:  # never a comparison that silently leaves a run out
        raise ConfigError("none of these runs has per-round search results to compare (EAGAN runs do)"
                          if len(without) == len(runs) else
                          f"{', '.join(without)} has no per-round search results to compare (EAGAN runs do); "
                          "compare only runs that finished at least one round")
    return draw_learning_curves(runs, out, stages=stages)  # every run has rounds: always drawn


def draw_run_plots(run: RunDir, df: pd.DataFrame | None = None) -> list[Path]:
    """Every plot that the run's results and files support, written to RUN_DIR/plots (``df``: its results, when
    the caller has read them already). The one place that knows a run's plots: a finished run and
    ``raynas report`` both draw through it, so the report redraws everything the run drew."""
    df = run.read() if df is None else df
    plots = run.path / "plots"
    plots.mkdir(exist_ok=True)
    made: list[Path | None] = []
    if df.empty:
        return []
    ablation = ablation_axes(run)
    has_rounds = "round" in df and _numeric(df, "round").notna().any()
    if has_rounds:
        stages = run_stages(run)
        made += [draw_pareto(df, plots / "pareto.png", stages=stages),
                 draw_round_curves(df, plots / "rounds.png", stages=stages)]
    else:
        made.append(draw_training_curves(df, plots / "curves.png", label_by=ablation or ()))
    if "alpha_table" in df and df["alpha_table"].notna().any():
        made.append(draw_alpha_evolution(df, plots / "alpha.png"))
    if "masks" in df and df["masks"].notna().any():  # DARTS-GAL's node masks while pruning
        threshold = (run.config.get("dartsgal") or {}).get("threshold", 0.0)
        made.append(draw_mask_evolution(df, plots / "masks.png", float(threshold)))
    if "regan_phase" in df and df["regan_phase"].notna().any():
        made.append(draw_regan_curves(df, plots / "regan.png", label_by=ablation or ()))
    for name in ("best_G.json", "best_D.json", "best.json", "pruned.json"):  # pruned.json: DARTS-GAL's result
        if (run.path / name).is_file():
            from raynas.spaces import Genotype
            from raynas.spaces.draw import draw_genotype

            made.append(draw_genotype(Genotype.load(run.path / name), plots / name.replace(".json", ".png")))
    if ablation is not None:
        made += redraw_ablation(run, df, ablation)
    made += _redraw_edge_ablation(run)
    return [Path(p) for p in made if p is not None]


def ablation_axes(run: RunDir) -> list[str] | None:
    """The grid axes of an ablation run (its ``ablation.json``), None for any other run."""
    import json

    from raynas.results.ablation import ABLATION_FILE

    path = run.path / ABLATION_FILE
    if not path.is_file():
        return None
    try:
        grid = json.loads(path.read_text()).get("grid") or {}
    except ValueError:
        return None
    return [k.rsplit(".", 1)[-1] for k in grid]


def draw_ablation_plots(method: str, cells: pd.DataFrame, means: pd.DataFrame, axes: list[str],
                        plots_dir: Path) -> list[Path]:
    """An ablation grid's plots: the mean per grid point (``ablation_<axes>.png``) and the method's own
    (``Method.ablation_plots``, e.g. SWD-NAS's best of seeds). ``raynas ablate`` and ``raynas report`` both call
    this, so a report redraws what the ablation drew."""
    from raynas.methods import get_method, load_object
    from raynas.results.ablation import summary_name

    spec = get_method(method)
    made = [draw_grid(means, axes, list(spec.ablation_metrics), Path(plots_dir) / f"{summary_name(axes)}.png")]
    if spec.ablation_plots:
        made += load_object(spec.ablation_plots)(cells, means, axes, Path(plots_dir))
    return [Path(p) for p in made if p is not None]


def redraw_ablation(run: RunDir, df: pd.DataFrame, axes: list[str]) -> list[Path]:
    """An ablation run's grid plots from the tables it saved (``ablation_<axes>[_mean].parquet``), or from its
    results when it has not summarised yet."""
    from raynas.methods import get_method
    from raynas.results.ablation import grid_summary, summary_name

    method = run_method(run, df)
    if method is None:
        return []
    try:
        spec = get_method(method)
    except Exception:  # a method this version does not know: nothing to draw with
        return []
    name = summary_name(axes)
    cells_file, means_file = run.path / f"{name}.parquet", run.path / f"{name}_mean.parquet"
    if cells_file.is_file():
        cells = pd.read_parquet(cells_file)
        means = pd.read_parquet(means_file) if means_file.is_file() else grid_summary(cells, axes, stage=None)[1]
    else:
        cells, means = grid_summary(df, axes, stage=spec.ablation_stage)
    return draw_ablation_plots(method, cells, means, axes, run.plots_dir)


def _redraw_edge_ablation(run: RunDir) -> list[Path | None]:
    """DAMGAN's edge ablation (``ablation_edge.png``) from the table and correlation it saved."""
    import json

    from raynas.results.ablation import EDGE_CORRELATION, EDGE_SUMMARY

    table, corr = run.path / EDGE_SUMMARY, run.path / EDGE_CORRELATION
    if not (table.is_file() and corr.is_file()):
        return []
    return [draw_edge_ablation(pd.read_parquet(table), json.loads(corr.read_text()),
                               run.plots_dir / "ablation_edge.png")]


# ============================================================================ ablation grids
def _category(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


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
    position = {_category(v): i for i, v in enumerate(categories)}
    fig, panels = plt.subplots(1, len(metrics), figsize=(max(4.0, 1.0 + 0.9 * len(categories)) * len(metrics), 3.4),
                               squeeze=False)
    groups = list(means.groupby(others)) if others else [((), means)]
    for ax, (metric, direction) in zip(panels[0], metrics):
        for k, (key, g) in enumerate(groups):
            g = g[g[x].notna()]
            label = ", ".join(f"{o}={v}" for o, v in zip(others, key if isinstance(key, tuple) else (key,)))
            std = g[f"{metric}_std"].fillna(0.0) if f"{metric}_std" in g else None
            dodge = (k - (len(groups) - 1) / 2) * min(0.12, 0.6 / max(1, len(groups)))  # groups side by side
            xs = [position[_category(v)] + dodge for v in g[x]]
            ax.errorbar(xs, g[f"{metric}_mean"], yerr=std, marker="o", ls="none", capsize=3, label=label or None)
        ax.set_xticks(range(len(categories)), [_category(v) for v in categories])
        ax.set_xlim(-0.5, len(categories) - 0.5)
        ax.set_xlabel(xlabel or x)
        ax.set_ylabel(f"{metric} (mean ± std over seeds)", fontsize=8)
        ax.set_title(f"{metric} ({'higher' if direction == 'max' else 'lower'} is better)", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
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
            for i, name in enumerate(op_names[edge]):
                ax.plot(epochs, [t[edge][i] for t in tables], ls=style, color=colour[name],
                        marker="o" if len(epochs) < 3 else None, ms=3, label=name)
        ax.set_title(edge, fontsize=7)
        ax.set_ylim(*ylim)
        _integer_ticks(ax)
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
    margin = max(_normalised_margin(t[e]) for _, tables, _ in runs for t in tables[-1:] for e in edges)
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
    return _save(fig, out, dpi=110)


# ============================================================================ best of seeds (SWD-NAS Fig. 4)
def draw_best_of_seeds(cells: pd.DataFrame, axes: list[str], out: Path, metric: str = "test_acc",
                       direction: str = "max", cost: tuple[str, ...] = ("search_gpu_seconds", "search_seconds"),
                       title: str = "") -> Path | None:
    """Per grid point (every combination of ``axes``, evenly spaced categories): the best ``metric`` over its
    seeds (every seed as a grey dot) in one panel, and the search cost (the first column of ``cost`` with a
    non-zero value; mean, min–max over the seeds) in the other, as the paper's Fig. 4 shows accuracy and search
    time per k, best of 3. No line joins the grid points: nothing was measured between them."""
    if cells.empty or metric not in cells or not axes or any(a not in cells for a in axes):
        return None
    values = _numeric(cells, metric)
    if not values.notna().any():
        return None
    cost_col = next((c for c in cost if c in cells and (_numeric(cells, c).fillna(0) > 0).any()), None)
    data = cells.assign(_metric=values, _cost=_numeric(cells, cost_col) if cost_col else float("nan"))
    groups = sorted(data.groupby(list(axes), sort=True), key=lambda kv: kv[0])
    xs, labels, best, costs, spans = [], [], [], [], []
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(9.0, 1.6 * len(groups) + 3), 3.6))
    for pos, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        xs.append(float(pos))
        labels.append(", ".join(f"{a}={_category(v)}" for a, v in zip(axes, key)) if len(axes) > 1
                      else _category(key[0]))
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


def draw_regan_curves(df: pd.DataFrame, out: Path, max_runs: int = 12, label_by: Sequence[str] = ()) -> Path | None:
    """Re-GAN runs: the measured sparsity of G (overall, min–max over tensors shaded) and FID against the epoch,
    with each epoch's phase (warm-up, sparse, dense) shaded behind; one row of panels per trial, titled by its
    seed or grid values (``label_by``)."""
    if "regan_phase" not in df:
        return None
    rows = df[df["regan_phase"].notna() & (df["regan_phase"].astype(str) != "")]
    if "stage" in rows:
        rows = rows[rows["stage"] == "train"]
    if rows.empty:
        return None
    groups = list(rows.groupby("candidate_id", sort=False))[:max_runs] if "candidate_id" in rows else [("run", rows)]
    fig, axes = plt.subplots(len(groups), 2, figsize=(9.5, 2.9 * len(groups)), squeeze=False)
    for (_, g), label, (ax_s, ax_f) in zip(groups, trial_labels(groups, label_by), axes):
        g = g.sort_values("epoch")
        epochs = _numeric(g, "epoch").tolist()
        for ax in (ax_s, ax_f):
            for e, phase in zip(epochs, g["regan_phase"]):
                ax.axvspan(e - 1, e, color=_PHASE_COLORS.get(str(phase), "white"), alpha=0.25, lw=0)
            ax.set_xlim(min(epochs) - 1, max(epochs))
            ax.set_xlabel("epoch (shaded: the epoch's phase)")
            _integer_ticks(ax)
            ax.grid(alpha=0.3)
        ax_s.plot(epochs, _numeric(g, "regan_sparsity"), marker="o", ms=3, color="black", label="overall")
        if "regan_sparsity_min" in g and "regan_sparsity_max" in g:
            ax_s.fill_between(epochs, _numeric(g, "regan_sparsity_min"), _numeric(g, "regan_sparsity_max"),
                              color="black", alpha=0.12, label="min–max over G's weight tensors")
        ax_s.set_ylim(-0.02, 1.0)
        ax_s.set_ylabel("fraction of weights zero", fontsize=8)
        ax_s.legend(fontsize=7, loc="upper left")
        ax_s.set_title("sparsity of G at the epoch's end" + (f" ({label})" if label else ""), fontsize=9)
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
