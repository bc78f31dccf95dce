"""Learning curves: losses and scores per epoch, and a population search's best per round (``compare`` draws
them for ``--compare``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from raynas.plots.common import has_rounds, integer_ticks, numeric, plt, save, trial_labels
from raynas.plots.registry import CURVES, register_run_figure, run_stages
from raynas.results import RunDir

_STAGE_ORDER = ("g", "d", "gd", "search", "prune", "retrain", "train")  # the order stages run in, when unrecorded


def stage_order(df: pd.DataFrame, stages: Sequence[str] | None = None) -> list:
    """The stages present in ``df`` in the order they ran: ``stages`` first, then the usual order, then the rest."""
    present = list(dict.fromkeys(df["stage"].dropna())) if "stage" in df else []
    known = [s for s in (*(stages or ()), *_STAGE_ORDER) if s in present]
    return list(dict.fromkeys([*known, *present]))


def draw_training_curves(df: pd.DataFrame, out: Path, label_by: Sequence[str] = ()) -> Path | None:
    """Losses and IS/FID against epoch, one line per trial, labelled by its seed or grid values (``label_by``)."""
    if "epoch" not in df or df["epoch"].isna().all():
        return None
    panels = [c for c in ("d_loss", "g_loss", "is_mean", "fid", "kid_mean", "train_loss", "train_acc", "val_acc",
                          "test_acc") if c in df and numeric(df, c).notna().any()]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    groups = list(df.groupby("candidate_id", sort=False)) if "candidate_id" in df else [("run", df)]
    labels = trial_labels(groups, label_by)
    for ax, col in zip(axes[0], panels):
        for (_, g), label in zip(groups, labels):
            g = g.assign(_v=numeric(g, col)).dropna(subset=["_v"]).sort_values("epoch")
            ax.plot(g["epoch"], g["_v"], marker="o", ms=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(col)
        integer_ticks(ax)
        ax.grid(alpha=0.3)
    if len(groups) > 1:
        axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    return save(fig, out)


def round_bests(df: pd.DataFrame, stages: Sequence[str] | None = None) -> pd.DataFrame:
    """Best IS and FID of every (stage, round) in the order the stages ran (``stages``, see ``stage_order``), with
    ``step``: the round counted across stages (e.g. a G stage then a D stage), the x axis of a two-stage
    search's learning curves."""
    d = df.assign(_r=numeric(df, "round"), _is=numeric(df, "is_mean"), _fid=numeric(df, "fid")).dropna(subset=["_r"])
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
    if "round" not in df or numeric(df, "round").isna().all():
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
        integer_ticks(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out)


def _rounds(run: RunDir, df: pd.DataFrame) -> Path | None:
    return draw_round_curves(df, run.plots_dir / "rounds.png", stages=run_stages(run))


def _curves(run: RunDir, df: pd.DataFrame) -> Path | None:
    from raynas.plots.grids import ablation_axes

    return draw_training_curves(df, run.plots_dir / "curves.png", label_by=ablation_axes(run) or ())


register_run_figure("rounds", _rounds, lambda run, df: has_rounds(df), order=CURVES + 1)
register_run_figure("curves", _curves, lambda run, df: not has_rounds(df), order=CURVES + 2)
