"""Plain-text and CSV views of a results table (``raynas results RUN_DIR``)."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from raynas.errors import RunDirError
from raynas.results.rundir import RESULT_COLUMNS

_MAX_CELL = 40
#: Which row a line is: never shortened (a cut run id cannot be pasted back into a command).
IDENTITY = ("run_id", "method", "stage", "round", "epoch", "candidate_id")
#: What every method's table shows besides its registered columns, when the run has them: the usual scores.
COMMON_METRICS = ("train_loss", "train_acc", "val_acc", "test_acc", "d_loss", "g_loss", "is_mean", "fid",
                  "kid_mean", "params", "stopped", "wall_seconds")


def _fmt(value: Any, limit: int | None = _MAX_CELL) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    try:
        if pd.isna(value):
            return "-"
    except (TypeError, ValueError):
        pass
    text = " ".join(str(value).split())
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def _default_columns(df: pd.DataFrame) -> list[str]:
    ordered = [c for c in RESULT_COLUMNS if c in df.columns]
    ordered += [c for c in df.columns if c not in RESULT_COLUMNS]
    return [c for c in ordered if df[c].notna().any()]


def readable_columns(df: pd.DataFrame) -> list[str]:
    """The columns ``raynas results`` shows by default: which row it is (``IDENTITY``; the run id only where the
    rows come from several runs), then each method's registered columns (``raynas.results.schema``) and the
    usual scores, in that order; columns empty throughout are left out. ``--all`` shows every column."""
    from raynas.errors import ConfigError
    from raynas.results.schema import result_columns

    ids = [c for c in IDENTITY if c in df and (c != "run_id" or df[c].nunique() > 1)]
    if "method" in ids and df["method"].nunique() <= 1:
        ids.remove("method")  # said once above the table
    metrics: list[str] = []
    for method in df["method"].dropna().unique() if "method" in df else ():
        with contextlib.suppress(ConfigError):  # fixed training ("train"), methods without registered columns
            metrics += result_columns(str(method))
    wanted = list(dict.fromkeys([*ids, *metrics, *COMMON_METRICS]))
    wanted = [c for c in wanted if c != "wall_seconds"] + ["wall_seconds"]  # the cost closes the row
    return [c for c in wanted if c in df and df[c].notna().any()]


def in_run_order(df: pd.DataFrame, stages: Sequence[str]) -> pd.DataFrame:
    """Rows by stage in the order the stages ran (``stages``: every stage of the table, e.g. from
    ``raynas.plots.stage_order``), then by round, trial or candidate, and epoch. Result parts are read in file
    name order, which is not the order they were written."""
    d = df.copy()
    keys = []
    if "stage" in d:
        rank = {s: i for i, s in enumerate(stages)}
        d["_stage"] = d["stage"].map(lambda s: rank.get(s, len(rank)))
        keys.append("_stage")
    for col in ("round", "candidate_id", "epoch"):
        if col in d and d[col].notna().any():
            d[f"_{col}"] = d[col].astype(str) if col == "candidate_id" else pd.to_numeric(d[col], errors="coerce")
            d.loc[d[col].isna(), f"_{col}"] = None
            keys.append(f"_{col}")
    if not keys:
        return df
    return d.sort_values(keys, kind="stable", na_position="last").drop(columns=keys)


def format_table(df: pd.DataFrame, columns: Sequence[str] | None = None, max_rows: int = 50) -> str:
    """Fixed-width table; all-empty columns are hidden, long cells (genotypes) shortened (never the ``IDENTITY``
    columns)."""
    if columns is None:
        columns = _default_columns(df)
    else:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"Unknown column(s) {missing}; available: {list(df.columns)}")
        columns = list(dict.fromkeys(columns))  # a column asked for twice is shown once
    if df.empty or not columns:
        return "(no results)"
    shown = df.head(max_rows) if max_rows > 0 else df
    limits = [None if c in IDENTITY else _MAX_CELL for c in columns]
    cells = [[_fmt(v, lim) for v, lim in zip(row, limits)]
             for row in shown[columns].itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in columns]
    widths = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    if len(df) > len(shown):
        out.append(f"... {len(df) - len(shown)} more rows (of {len(df)}); export them with --csv")
    return "\n".join(out)


def export_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` to CSV atomically (parent folders are created)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except OSError as e:
        raise RunDirError(f"Cannot write CSV {path}: {e.strerror or e}. Choose a writable path.") from e
    finally:
        if tmp.exists():
            tmp.unlink()
