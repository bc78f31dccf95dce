"""Ablation grids as tables: one row per grid cell (and seed), and the means over seeds per grid point."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

ABLATION_FILE = "ablation.json"  # an ablation run's grid spec (its axes and values, seeds, scheduler)
EDGE_SUMMARY = "ablation_edge.parquet"  # DAMGAN's edge ablation: its table and its α–IS correlation
EDGE_CORRELATION = "edge_correlation.json"
_NOT_AVERAGED = {"seed", "epoch", "round", "rank", "retrain_epochs", "search_epochs"}


def grid_summary(df: pd.DataFrame, axes: Sequence[str], stage: str | None = "retrain"
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(cells, means)``: the rows of ``stage`` (every row when None) and the rows of cells an early-stopping
    scheduler ended before it (``stopped`` true), sorted by the grid ``axes`` and seed; and per grid point the
    mean and standard deviation (over seeds) of every numeric column, plus ``seeds``, the number of rows
    averaged."""
    if stage is None:
        rows = df
    elif "stage" not in df:
        rows = df.iloc[0:0]
    else:
        keep = df["stage"] == stage
        if "stopped" in df:
            keep |= df["stopped"].astype("boolean").fillna(False).astype(bool)
        rows = df[keep]
    axes = [a for a in axes if a in rows]
    keep = [c for c in rows.columns if c in axes or c == "seed" or rows[c].notna().any()]
    cells = rows[keep].sort_values([*axes, *(["seed"] if "seed" in rows else [])]).reset_index(drop=True)
    if cells.empty or not axes:
        return cells, cells.iloc[0:0]
    numeric = []
    for c in cells.columns:
        if c in axes or c in _NOT_AVERAGED:
            continue
        values = pd.to_numeric(cells[c], errors="coerce")
        if values.notna().any() and not pd.api.types.is_bool_dtype(cells[c]):
            cells[c] = values
            numeric.append(c)
    grouped = cells.groupby(list(axes), sort=True, dropna=False)  # an axis a cell has no value of (NaN) is a group
    means = grouped[numeric].agg(["mean", "std"])
    means.columns = [f"{a}_{b}" for a, b in means.columns]
    means = means.reset_index()
    means["seeds"] = grouped.size().values
    return cells, means


def summary_name(axes: Sequence[str]) -> str:
    """``ablation_<axis>[_<axis>...]``: where a grid's tables and plot go."""
    return "ablation_" + "_".join(a.rsplit(".", 1)[-1] for a in axes)
