"""Re-GAN's figures: the sparsity of G and the FID per epoch with each epoch's phase shaded (``regan.png``, for
every run with a ``regan_phase`` column), and ``raynas ablate regan``'s FID heatmaps (sparsity × interval,
augmentation × Re-GAN) and FID against training FLOPs (``Method.ablation_plots``). They register themselves
on import; drawing loads matplotlib."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from raynas.plots.registry import METHOD_CURVES, Run, register_run_figure

if TYPE_CHECKING:
    import pandas as pd

_PHASE_COLORS = {"warmup": "0.85", "sparse": "tab:orange", "dense": "tab:blue"}
AUGMENT_ORDER = ("none", "apa", "ada", "diffaugment")  # the rows of the paper's few-shot table (ADA: not in it)


def draw_regan_curves(df: pd.DataFrame, out: Path, max_runs: int = 12, label_by: Sequence[str] = ()) -> Path | None:
    """Re-GAN runs: the measured sparsity of G (overall, min–max over tensors shaded) and FID against the epoch,
    with each epoch's phase (warm-up, sparse, dense) shaded behind; one row of panels per trial, titled by its
    seed or grid values (``label_by``)."""
    from raynas.plots.common import integer_ticks, numeric, plt, save, trial_labels

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
        epochs = numeric(g, "epoch").tolist()
        for ax in (ax_s, ax_f):
            for e, phase in zip(epochs, g["regan_phase"]):
                ax.axvspan(e - 1, e, color=_PHASE_COLORS.get(str(phase), "white"), alpha=0.25, lw=0)
            ax.set_xlim(min(epochs) - 1, max(epochs))
            ax.set_xlabel("epoch (shaded: the epoch's phase)")
            integer_ticks(ax)
            ax.grid(alpha=0.3)
        ax_s.plot(epochs, numeric(g, "regan_sparsity"), marker="o", ms=3, color="black", label="overall")
        if "regan_sparsity_min" in g and "regan_sparsity_max" in g:
            ax_s.fill_between(epochs, numeric(g, "regan_sparsity_min"), numeric(g, "regan_sparsity_max"),
                              color="black", alpha=0.12, label="min–max over G's weight tensors")
        ax_s.set_ylim(-0.02, 1.0)
        ax_s.set_ylabel("fraction of weights zero", fontsize=8)
        ax_s.legend(fontsize=7, loc="upper left")
        ax_s.set_title("sparsity of G at the epoch's end" + (f" ({label})" if label else ""), fontsize=9)
        fid = g.assign(_v=numeric(g, "fid")).dropna(subset=["_v"])
        if not fid.empty:
            ax_f.plot(fid["epoch"], fid["_v"], marker="o", ms=3, color="tab:red")
        ax_f.set_title("FID of the EMA generator (lower is better)", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.35) for c in _PHASE_COLORS.values()]
    fig.legend(handles, list(_PHASE_COLORS), loc="upper center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (2.9 * len(groups))))
    return save(fig, out)


def draw_regan_ablation(cells: pd.DataFrame, means: pd.DataFrame, axes: list[str], plots_dir: Path) -> list[Path]:
    """``raynas ablate regan``: an FID heatmap over sparsity × interval (per data fraction when that is an axis;
    the Re-GAN-off baseline's FID in the title), one over augmentation × Re-GAN off/on when ``train.augment`` is
    an axis (the paper's few-shot table), and FID against the training FLOPs of every cell."""
    import pandas as pd

    from raynas.plots.common import numeric, plt, save
    from raynas.plots.grids import draw_heatmap

    out: list[Path] = []
    if cells.empty or "fid" not in cells:
        return out
    cells = cells.assign(_fid=numeric(cells, "fid"), _flops=numeric(cells, "train_flops"))
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
    if "augment" in cells and cells["augment"].notna().any():
        out.append(draw_heatmap(augment_grid(cells, enabled), "augment", "Re-GAN", "fid",
                                plots_dir / "regan_fid_augment.png",
                                title="FID per augmentation × Re-GAN (mean over seeds; lower is better)"))
    if cells["_flops"].notna().any():
        fig, ax = plt.subplots(figsize=(5.6, 4.0))
        markers = "osD^v<>p*h"
        for i, (value, part, on) in enumerate(parts):
            label = "" if value is None else f"fraction {value:g}: "
            color = {"c": numeric(part[on], "sparsity"), "cmap": "viridis", "vmin": 0, "vmax": 1} \
                if "sparsity" in part else {}  # by sparsity when that varies (not in an augment x Re-GAN grid)
            sc = ax.scatter(part.loc[on, "_flops"], part.loc[on, "_fid"], marker=markers[i % len(markers)], s=36,
                            label=f"{label}Re-GAN", **color)
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
        out.append(save(fig, plots_dir / "regan_fid_vs_flops.png"))
    return [p for p in out if p is not None]


def augment_grid(cells: pd.DataFrame, enabled: pd.Series) -> pd.DataFrame:
    """The paper's few-shot table as a grid: the mean FID over seeds (``fid_mean``) per ``augment`` (rows in the
    table's order: none, APA, ADA, DiffAugment) and ``Re-GAN`` (off / on)."""
    import pandas as pd

    from raynas.plots.common import numeric

    df = cells.assign(_fid=numeric(cells, "fid"), **{"Re-GAN": enabled.map({False: "off", True: "on"})})
    grid = df.groupby(["augment", "Re-GAN"])["_fid"].mean().rename("fid_mean").reset_index()
    present = set(grid["augment"])
    order = [a for a in AUGMENT_ORDER if a in present] + sorted(present - set(AUGMENT_ORDER))
    grid["augment"] = pd.Categorical(grid["augment"], categories=order, ordered=True)
    return grid


def _curves(run: Run, df: pd.DataFrame) -> Path | None:
    from raynas.plots.grids import ablation_axes

    return draw_regan_curves(df, run.plots_dir / "regan.png", label_by=ablation_axes(run) or ())


register_run_figure("regan curves", _curves,
                    lambda run, df: "regan_phase" in df and df["regan_phase"].notna().any(), order=METHOD_CURVES)
