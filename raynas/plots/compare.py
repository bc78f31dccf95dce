"""``raynas report A --compare B [C ...]``: the score every run measured, of each run, against its epochs or rounds.

Searches of one population method (EAGAN) keep their per-round learning curves, every stage its own colour
(``curves.draw_learning_curves``). Any other set of runs is drawn on the metric they share: IS and FID for GAN
methods and fixed GAN runs (EAGAN, DAMGAN, random-gan, Re-GAN, train), test accuracy for classifiers (DARTS,
SWD-NAS, random, DARTS-GAL, fixed training) when every run has it, else their validation accuracy. Runs without a
shared metric (a classifier and a GAN) are refused with one message, never drawn without the run that did not fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from raynas.plots.common import has_rounds, integer_ticks, numeric, plt, run_method, save
from raynas.plots.curves import draw_learning_curves, round_bests
from raynas.plots.registry import run_stages
from raynas.results import RunDir

# what runs can share, in order of preference: one group is drawn, one panel per column every run has
SHARED_METRICS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("is_mean", "max"), ("fid", "min")),
    (("test_acc", "max"),),
    (("val_acc", "max"),),
)
TITLES = {"is_mean": "IS", "fid": "FID", "test_acc": "test accuracy", "val_acc": "validation accuracy"}
_MARKERS = "os^Dv<>ph*"


def measured(df: pd.DataFrame) -> list[str]:
    """The comparable scores a run's rows hold."""
    return [col for group in SHARED_METRICS for col, _ in group if numeric(df, col).notna().any()]


def shared_metrics(runs: dict[str, pd.DataFrame]) -> list[tuple[str, str]]:
    """The first group of ``SHARED_METRICS`` of which every run measured some column: those columns."""
    for group in SHARED_METRICS:
        common = [(col, d) for col, d in group if all(col in measured(df) for df in runs.values())]
        if common:
            return common
    return []


def best_per_step(df: pd.DataFrame, col: str, direction: str) -> pd.DataFrame:
    """``x`` (the round counted across stages for a population search, else the epoch) and the best ``col`` of
    every trial or candidate there (``y``)."""
    if has_rounds(df):
        best = round_bests(df)
        if col in ("is_mean", "fid"):
            return pd.DataFrame({"x": best["step"], "y": best["best_is" if col == "is_mean" else "best_fid"]})
        d = df.assign(_r=numeric(df, "round"), _y=numeric(df, col)).dropna(subset=["_r", "_y"])
        agg = d.groupby(["stage", "_r"], sort=False)["_y"].agg(direction).reset_index(drop=True)
        return pd.DataFrame({"x": range(len(agg)), "y": agg.to_numpy()})
    d = df.assign(x=numeric(df, "epoch"), y=numeric(df, col)).dropna(subset=["x", "y"])
    return d.groupby("x")["y"].agg(direction).reset_index().sort_values("x")


def draw_shared_metric(runs: dict[str, pd.DataFrame], metrics: Sequence[tuple[str, str]], out: Path,
                       methods: dict[str, str | None]) -> Path:
    """One panel per shared metric, one line per run (its own colour and marker) against epochs, or rounds for a
    population search (said in its legend entry and the axis label)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 3.6), squeeze=False)
    per_round = {label for label, df in runs.items() if has_rounds(df)}
    for ax, (col, direction) in zip(axes[0], metrics):
        for i, (label, df) in enumerate(runs.items()):
            s = best_per_step(df, col, direction)
            name = f"{label} ({methods.get(label) or 'unknown method'}" + (", per round)" if label in per_round
                                                                           else ")")
            ax.plot(s["x"], s["y"], marker=_MARKERS[i % len(_MARKERS)], ms=4, color=f"C{i % 10}", label=name)
        ax.set_xlabel("epoch" if not per_round else "epoch, or round (across stages) of a population search"
                      if len(per_round) < len(runs) else "round (across stages)")
        ax.set_ylabel(col)
        ax.set_title(f"best {TITLES.get(col, col)}")
        integer_ticks(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out)


def draw_comparison(run: RunDir, others: Sequence[RunDir], out: Path) -> Path | None:
    """``raynas report A --compare B ...``: searches of one population method by their best IS/FID per round
    (stages in the order they ran); any other runs on the metric they share. What cannot be compared (no shared
    metric; a search of one method without rounds beside ones with) is a ConfigError, never a figure without it."""
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
    one_method = len(set(methods.values())) == 1
    with_rounds = [label for label, df in runs.items() if has_rounds(df)]
    if one_method and len(with_rounds) == len(runs):
        return draw_learning_curves(runs, out, stages=stages)
    if one_method and with_rounds:  # never a comparison that silently leaves a run out
        without = [label for label in runs if label not in with_rounds]
        raise ConfigError(f"{', '.join(without)} has no per-round search results to compare (EAGAN runs do); "
                          "compare only runs that finished at least one round")
    metrics = shared_metrics(runs)
    if not metrics:
        listed = "; ".join(f"{label} ({methods[label] or 'unknown method'}) measured "
                           f"{', '.join(measured(df)) or 'no score yet'}" for label, df in runs.items())
        what = "these runs ran different methods and" if not one_method else "these runs"
        raise ConfigError(f"--compare draws a score every run measured; {what} share none: {listed}. Compare GAN "
                          "runs by IS/FID, classifier runs by accuracy")
    return draw_shared_metric(runs, metrics, out, methods)
