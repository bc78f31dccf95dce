"""What every figure shares: the headless backend, saving, reading a column as numbers, readable trial labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from raynas.plots.registry import Run  # noqa: E402


def save(fig: Any, out: Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``out`` (its folder made) and free it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def numeric(df: pd.DataFrame, col: str) -> pd.Series:
    """``df[col]`` as numbers (NaN where not one; empty when the column is missing)."""
    return pd.to_numeric(df[col], errors="coerce") if col in df else pd.Series(dtype=float)


def has_rounds(df: pd.DataFrame) -> bool:
    """Whether ``df`` holds a population search's rounds (its figures are per round, not per epoch)."""
    return "round" in df and numeric(df, "round").notna().any()


def integer_ticks(ax: Any, axis: str = "x") -> None:
    """Only whole-number ticks (epochs and rounds are counted)."""
    from matplotlib.ticker import MaxNLocator

    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))


def category(v: Any) -> str:
    """A grid value as a tick label (``0.5``, not ``0.5000``)."""
    return f"{v:g}" if isinstance(v, float) else str(v)


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


def run_method(run: Run, df: pd.DataFrame | None = None) -> str | None:
    """The method a run ran (its config's ``method``, else its results' ``method`` column)."""
    method = run.config.get("method")
    if method:
        return str(method)
    df = run.read() if df is None else df
    values = list(dict.fromkeys(df["method"].dropna())) if "method" in df else []
    return str(values[0]) if len(values) == 1 else None
